# frozen_string_literal: true

module MASTER
  # The error classes are defined by the Rust core (src/ruby_api/errors.rs);
  # their fields are set there, so no caller parses a message.

  # A checkpoint failed its integrity check, or a task has none intact.
  class CorruptCheckpointError
    # @return [String, nil] the task, [Integer, nil] the checkpoint number,
    #   [String, nil] the file, [String, nil] what is wrong with it
    attr_reader :task_id, :number, :path, :reason
  end

  # `track_cost` passed a budget enforced with `enforce_budget: true`. The
  # amount is recorded; `increase_budget` lets the task go on.
  class BudgetExceededError
    # @return [String, nil] the task, [Float, nil] dollars spent, [Float, nil] the limit,
    #   [String, nil] the queue whose budget it was (nil: the task's own)
    attr_reader :task_id, :spent, :limit, :queue
  end

  # A queue found a saved run of its name whose tasks are not the ones
  # added: it is never adopted (see Queue#discard_saved_run).
  class QueueMismatchError < Error; end
end
