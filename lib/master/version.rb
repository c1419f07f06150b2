# frozen_string_literal: true

module MASTER
  VERSION = "52.0.0"
  # What every checkpoint file says in "version".
  FORMAT_VERSION = "52.0"
end
