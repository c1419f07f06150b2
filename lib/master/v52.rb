# frozen_string_literal: true

module MASTER
  # Compatibility with MASTER v52.0's own SessionRecovery (lib/core/
  # session_recovery.rb of trymmika/pub4): `SessionRecovery.new` with no
  # `task_id:` answers its API on this gem's store, where everything the old
  # flat `checkpoint_<epoch>.json` directory held is one task, TASK_ID; the
  # files the old code left in the store's directory are read too, and
  # `bin/cli checkpoint migrate` imports them. README "Coming from MASTER v52".
  module V52
    # The task that holds what v52's flat directory held.
    TASK_ID = "master-v52"

    # A file the old code wrote: checkpoint_<epoch seconds>.json, directly in
    # the store's directory (the gem's own tasks are subdirectories).
    OLD_NAME = /\Acheckpoint_(\d+)\.json\z/

    # The file name of one of the gem's checkpoints (3 digits at least).
    GEM_NAME = /\Acheckpoint_(\d{3,})\.json\z/

    # The file name of the gem's checkpoint N of a task.
    def self.file_name(number)
      format("checkpoint_%03d.json", number)
    end

    # What the gem's session records as progress for a v52 checkpoint:
    # [completed files, files in all lists] (items_total nil when none).
    def self.counts(data)
      files = data.is_a?(Hash) ? data[:files] : nil
      return [0, nil] unless files.is_a?(Hash)

      total = files.values.sum { |list| list.is_a?(Array) ? list.size : 0 }
      done = files[:completed].is_a?(Array) ? files[:completed].size : 0
      [done, total.zero? ? nil : total]
    end

    # A v52 checkpoint is a Hash with an Integer epoch :timestamp (the old
    # code's own readers fail without one).
    def self.checkpoint?(data)
      data.is_a?(Hash) && data[:timestamp].is_a?(Integer)
    end

    # One v52 checkpoint, wherever it is: an old file (`path`) or one of the
    # gem's checkpoints of TASK_ID (`number`). `file` is what `list` shows and
    # `restore(file)` takes.
    Entry = Struct.new(:file, :data, :number, :path) do
      def gem?
        !number.nil?
      end

      def timestamp
        data[:timestamp]
      end

      # The same v52 checkpoint in another version: the old code overwrote
      # its file (same session, same timestamp) where the gem writes anew.
      def identity
        data[:session_id] ? [data[:session_id], timestamp] : [:file, file]
      end

      # Ascending: by timestamp; the gem's copy after an old file's; higher
      # numbers later.
      def order
        [timestamp, gem? ? 1 : 0, number || 0]
      end
    end

    class << self
      # The v52 checkpoints of the store, newest first: the gem's checkpoints
      # of TASK_ID and the old files, one entry per v52 checkpoint (the latest
      # version of each). Damaged ones are skipped with a warning.
      def entries(store, logger)
        latest_versions(gem_entries(store, logger) + OldFiles.entries(OldFiles.directory(store), logger)).reverse
      end

      # Every intact v52 checkpoint of TASK_ID in the store, oldest first.
      def gem_entries(store, logger)
        SessionPersistence.checkpoints(TASK_ID, store: store).filter_map do |number|
          data = SessionPersistence.read(TASK_ID, number, store: store)[:state]
          if checkpoint?(data)
            Entry.new(file_name(number), data, number, nil)
          else
            warn_once(logger, [store, number, :shape],
                      "checkpoint #{number} of task #{TASK_ID} is not a MASTER v52 checkpoint (a Hash with an " \
                      "Integer :timestamp); the v52 API skips it")
            nil
          end
        rescue CheckpointNotFoundError
          nil # pruned since it was listed
        rescue CorruptCheckpointError => e
          warn_once(logger, [store, number, :damaged], "skipped damaged checkpoint #{number} of task #{TASK_ID}: " \
                                                       "#{e.reason || e.message}")
          nil
        end
      end

      # One entry per identity, the latest version of each, oldest first.
      def latest_versions(entries)
        entries.sort_by(&:order).to_h { |entry| [entry.identity, entry] }.values.sort_by(&:order)
      end

      # Logs `message` once per process for `key`.
      def warn_once(logger, key, message)
        @warned ||= {}
        return if @warned[key]

        @warned[key] = true
        logger&.warn(message)
      end
    end
  end
end

require_relative "v52/old_files"
require_relative "v52/recovery"
require_relative "v52/config_file"
require_relative "v52/migration"
