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

  # A queue task's worker lost its claim (its lease expired while it was
  # paused, or another worker took the task over): its write was refused,
  # nothing was written. The queue does not count it as the task's failure.
  class LeaseLostError
    # @return [String, nil] the task
    attr_reader :task_id
  end

  # A queue task was cancelled (`Queue#cancel`, `bin/cli checkpoint cancel`):
  # raised at its next `tick`, `checkpoint` or `track_cost`.
  class CancelledError
    # @return [String, nil] the task
    attr_reader :task_id
  end

  # A queue found a saved run of its name whose tasks are not the ones
  # added: it is never adopted (see Queue#discard_saved_run).
  class QueueMismatchError < Error; end
end
