# frozen_string_literal: true

# Session recovery for long-running Ruby work (see lib/master.rb).
module MASTER
  # The default logger: one line per warning on whatever $stderr is at the
  # time. It takes no lock, unlike ::Logger, so it also works inside a `trap`
  # handler (where locking a Mutex raises ThreadError) — a queue's
  # `checkpoint!` may log from there.
  class StderrLogger
    LEVELS = %i[debug info warn error fatal].freeze

    def initialize(level: :warn)
      @level = LEVELS.index(level) || 2
    end

    LEVELS.each_with_index do |name, index|
      define_method(name) do |message = nil, &block|
        return true if index < @level

        message = block.call if message.nil? && block
        $stderr.write("master: #{name}: #{message}\n")
        true
      end
    end
  end

  class << self
    # Where sessions and queues log warnings (damaged checkpoints skipped,
    # budget lines crossed) unless given their own `logger:`. Any object
    # with `warn` — a ::Logger, Rails.logger — or nil for silence.
    attr_writer :logger

    def logger
      defined?(@logger) ? @logger : (@logger = StderrLogger.new)
    end
  end
end
