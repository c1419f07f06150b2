# frozen_string_literal: true

# MASTER session recovery: checkpoints written crash-safely, resume after a
# crash or Ctrl-C, rollback and retry, budget tracking in dollars.
require_relative "master/version"
require_relative "master/extension"
require_relative "master/errors"
require_relative "master/logger"
require_relative "master/options"
require_relative "master/config"
require_relative "master/session_recovery"
require_relative "master/session_persistence"
require_relative "master/v52"
require_relative "master/queue"
require_relative "master/core_ext/duration"
