# frozen_string_literal: true

require "logger"

module MASTER
  # Writes to whatever $stderr is at the time, so redirecting $stderr (as
  # tests and daemons do) redirects the gem's warnings too.
  class StderrDevice
    def write(message)
      $stderr.write(message)
    end

    def close; end
  end

  class << self
    # Where sessions log warnings (damaged checkpoints skipped, budget lines
    # crossed) unless given their own `logger:`. Any object with `warn`.
    attr_writer :logger

    def logger
      @logger ||= Logger.new(StderrDevice.new, progname: "master", level: Logger::WARN).tap do |logger|
        logger.formatter = proc { |severity, _time, progname, message| "#{progname}: #{severity.downcase}: #{message}\n" }
      end
    end
  end
end
