# frozen_string_literal: true

module MASTER
  # The storage layer: checkpoint documents by id, in the configured store or
  # the one named by `store:` (a directory, "memory", a postgresql:// URL)
  # or `checkpoint_dir:`. The `_` methods are in Rust
  # (src/ruby_api/session_persistence.rs).
  module SessionPersistence
    class << self
      # Persists the Hash `data` as the next checkpoint of `checkpoint_id`,
      # adding the envelope members it lacks.
      # @return [Integer] the new checkpoint's number
      def save(checkpoint_id, data, store: nil, checkpoint_dir: nil)
        logged(_save(Config.store(store, checkpoint_dir), checkpoint_id, data, Config.settings[:max_checkpoints]))
      end

      # The latest intact checkpoint document (Symbol keys), or nil.
      def load(checkpoint_id, store: nil, checkpoint_dir: nil)
        logged(_load(Config.store(store, checkpoint_dir), checkpoint_id))
      end

      # One summary Hash per task, newest first.
      def list(store: nil, checkpoint_dir: nil)
        logged(_list(Config.store(store, checkpoint_dir)))
      end

      # The summary of one task, or nil.
      def summary(task_id, store: nil, checkpoint_dir: nil)
        logged(_summary(Config.store(store, checkpoint_dir), task_id))
      end

      # The task's checkpoint numbers, oldest first.
      def checkpoints(task_id, store: nil, checkpoint_dir: nil)
        _numbers(Config.store(store, checkpoint_dir), task_id)
      end

      # One Hash per checkpoint of the task, oldest first, read from each
      # checkpoint's envelope (its state, however large, is not decoded):
      # number, timestamp, status, progress, budget, message, error and
      # copy_of (the checkpoint a rollback or retry copied), or `damaged:
      # true` with the `problem`.
      def history(task_id, store: nil, checkpoint_dir: nil)
        _history(Config.store(store, checkpoint_dir), task_id)
      end

      # Checkpoint `number` of the task as a document Hash.
      def read(task_id, number, store: nil, checkpoint_dir: nil)
        _read(Config.store(store, checkpoint_dir), task_id, number)
      end

      # Removes a task and all its checkpoints. True if there was one.
      def remove(task_id, store: nil, checkpoint_dir: nil)
        _remove(Config.store(store, checkpoint_dir), task_id)
      end

      # Removes tasks whose last checkpoint is older than `older_than`
      # (keeping failed ones when `keep_failed`, completed ones when
      # `keep_completed`, running ones when `keep_running`). With no
      # `older_than`, applies the configured policy: completed tasks older
      # than `keep_successful` days go, failed ones too unless `keep_failed`,
      # running ones stay. Each task is decided under its lock. With
      # `dry_run: true`, removes nothing and says which it would.
      # @return [Array<String>] the removed task ids
      def cleanup(older_than: nil, keep_failed: nil, keep_completed: false, keep_running: nil, dry_run: false,
                  store: nil, checkpoint_dir: nil)
        config = Config.settings
        keep_failed = config[:keep_failed] if keep_failed.nil?
        keep_running = older_than.nil? if keep_running.nil?
        { keep_failed: keep_failed, keep_completed: keep_completed, keep_running: keep_running,
          dry_run: dry_run }.each do |name, flag|
          check_flag(name, flag)
        end
        age = older_than.nil? ? config[:keep_successful] * 86_400.0 : Options.seconds(older_than, "older_than").to_f
        _cleanup(Config.store(store, checkpoint_dir), age, keep_failed, keep_completed, keep_running, dry_run)
      end

      # Where the store is, for people: a directory, memory://NAME, a URL
      # without its password. With a task id, where that task's checkpoints are.
      def location(task_id = nil, store: nil, checkpoint_dir: nil)
        _location(Config.store(store, checkpoint_dir), task_id)
      end

      private

      # The Rust halves answer [result, warnings]: log these, return that.
      def logged((result, warnings))
        warnings.each { |message| MASTER.logger&.warn(message) }
        result
      end

      def check_flag(name, value)
        return if [true, false].include?(value)

        raise ArgumentError, "#{name} must be true or false; got #{Options.shown(value)}"
      end
    end
  end
end
