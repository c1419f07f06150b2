# frozen_string_literal: true

module MASTER
  # Checkpoint, resume, retry and budget for one long-running task.
  # The methods without a body here are defined in Rust (src/ruby_api/session_recovery.rs).
  #
  #   session = MASTER::SessionRecovery.new(task_id: "refactor-users-module", budget: 5.0)
  #   session.checkpoint(progress: 10, data: { processed: results })
  #   session.complete!
  class SessionRecovery
    # `task_id:` left out (not given as nil): MASTER v52's API.
    NO_TASK_ID = Object.new.freeze
    private_constant :NO_TASK_ID

    # The options a session without `task_id:` (MASTER v52's API) takes.
    V52_OPTIONS = %i[store checkpoint_dir max_checkpoints enabled logger].freeze

    # @param task_id [String] names the task's directory in the store. Left
    #   out (with no budget), the session answers MASTER v52's API instead
    #   (V52::Recovery: checkpoint(task:, files:, ...), latest, list ...).
    # @param budget [Numeric, nil] dollars this task may spend
    # @param options see Options::SESSION; defaults come from Config
    def initialize(task_id: NO_TASK_ID, budget: nil, **options)
      if NO_TASK_ID.equal?(task_id)
        setup_v52(budget, options)
      else
        setup_task(task_id, budget, options)
      end
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

    # "45s", "12 min", "5.5 h", "3 days": an age for people.
    def self.age_text(seconds)
      if seconds < 120 then "#{seconds.round}s"
      elsif seconds < 7200 then "#{(seconds / 60).round} min"
      elsif seconds < 172_800 then "#{(seconds / 3600).round(1)} h"
      else
        "#{(seconds / 86_400).round} days"
      end
    end

    private

    # The documented API: the task `task_id`, resumed from its latest
    # checkpoint (auto_resume) unless that is older than resume_max_age.
    def setup_task(task_id, budget, options)
      Options.check_budget!(budget)
      settings, hooks = Options.session(options)
      max_age = settings.delete(:resume_max_age)
      settings[:auto_resume] = false if settings[:auto_resume] && too_old?(task_id, settings[:store], max_age, hooks)
      _setup(task_id, budget, settings, hooks)
      SessionRecovery.flush_at_exit(self) if settings[:async]
    end

    # MASTER v52's SessionRecovery.new: one task (V52::TASK_ID) holding what
    # its flat directory held, never resumed by itself (v52 resumed only
    # when asked: latest, restore).
    def setup_v52(budget, options)
      unless budget.nil?
        raise ArgumentError, "missing keyword: :task_id (SessionRecovery.new without task_id: is MASTER v52's API, " \
                             "which takes no budget)"
      end
      other = options.keys & (Options::SESSION.keys - V52_OPTIONS)
      unless other.empty?
        raise ArgumentError, "option#{'s' if other.size > 1} #{other.map(&:inspect).join(', ')} need#{'s' if other.size == 1} " \
                             "task_id:; SessionRecovery.new without task_id: (MASTER v52's API) takes only " \
                             "#{V52_OPTIONS.join(', ')}"
      end
      settings, hooks = Options.session(options)
      settings.delete(:resume_max_age)
      settings.merge!(auto_resume: false, async: false)
      _setup(V52::TASK_ID, nil, settings, hooks)
      extend V52::Recovery
      v52_setup(settings[:store], hooks[:logger])
    end

    # Whether the task's last checkpoint is older than `max_age` seconds, so
    # a new session starts fresh (saying so once) instead of resuming it.
    def too_old?(task_id, store, max_age, hooks)
      return false if max_age.nil?

      updated = SessionPersistence.summary(task_id.is_a?(Symbol) ? task_id.to_s : task_id, store: store)&.dig(:updated_at)
      age = updated && (Time.now - updated)
      return false unless age && age > max_age

      hooks[:logger]&.warn("task #{task_id}: its last checkpoint is #{SessionRecovery.age_text(age)} old, more than " \
                           "resume_max_age (#{max_age}s); starting fresh (what the task spent carries over)")
      true
    rescue ArgumentError, TypeError, Error
      false # a bad task id or store: _setup says what is wrong
    end
  end
end
