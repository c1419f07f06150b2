# frozen_string_literal: true

module MASTER
  # Checkpoint, resume, retry and budget for one long-running task.
  # The methods without a body here are defined in Rust (src/ruby_api/session_recovery.rs).
  #
  #   session = MASTER::SessionRecovery.new(task_id: "refactor-users-module", budget: 5.0)
  #   session.checkpoint(progress: 10, data: { processed: results })
  #   session.complete!
  class SessionRecovery
    # @param task_id [String] names the task's directory in the store
    # @param budget [Numeric, nil] dollars this task may spend
    # @param options see Options::SESSION; defaults come from Config
    def initialize(task_id:, budget: nil, **options)
      Options.check_budget!(budget)
      settings, hooks = Options.session(options)
      _setup(task_id, budget, settings, hooks)
      SessionRecovery.flush_at_exit(self) if settings[:async]
    end

    # Sessions with `async: true` are flushed when the process exits, so a
    # checkpoint the caller was told about is not lost with the writer thread.
    def self.flush_at_exit(session)
      @async_sessions ||= begin
        at_exit { flush_all }
        ObjectSpace::WeakMap.new
      end
      @async_sessions[session] = true
    end

    # Flushes every async session; at exit, one that cannot write what it
    # captured makes the process exit non-zero, so a lost checkpoint is
    # never mistaken for a clean run.
    def self.flush_all
      failed = false
      (@async_sessions || {}).each_key do |session|
        session.flush
      rescue StandardError => e
        failed = true
        MASTER.logger&.warn("could not write the last checkpoints of #{session.task_id}: #{e.message}")
      end
      exit(1) if failed && (!$! || ($!.is_a?(SystemExit) && $!.success?)) # rubocop:disable Style/SpecialGlobalVars
    end

    # A session owns a task's progress, data and writer: a copy would be a
    # second owner of the same task, so `dup` and `clone` are refused.
    def initialize_copy(original)
      raise TypeError, "a SessionRecovery cannot be copied (dup/clone); create another with " \
                       "MASTER::SessionRecovery.new(task_id: #{original.task_id.inspect}), which resumes the same task"
    end

    # Writes the next checkpoint. Values not given carry over.
    # @return [Hash] the restored-state hash of the new checkpoint
    def checkpoint(data: nil, message: nil, progress: nil, items_total: nil)
      _checkpoint(data, message, progress, items_total)
    end

    # Writes a failed checkpoint holding the error, the item and the context,
    # keeping the last good data.
    def checkpoint_error(error, item = nil, context: nil)
      _checkpoint_error(error, item, context)
    end

    # Makes the latest good checkpoint before the current one (or number
    # `to_checkpoint`) current again, by writing it anew.
    def rollback(to_checkpoint: nil)
      _rollback(to_checkpoint)
    end

    # Removes tasks whose last checkpoint is older than `older_than`; with no
    # arguments, applies the configured retention (keep_successful, keep_failed).
    # @return [Array<String>] the removed task ids
    def self.cleanup(older_than: nil, keep_failed: nil, keep_completed: false, store: nil, checkpoint_dir: nil)
      SessionPersistence.cleanup(older_than: older_than, keep_failed: keep_failed,
                                 keep_completed: keep_completed, store: store, checkpoint_dir: checkpoint_dir)
    end
  end
end
