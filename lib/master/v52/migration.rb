# frozen_string_literal: true

module MASTER
  module V52
    # Imports the checkpoint_<epoch>.json files MASTER v52 left in a file
    # store's directory as checkpoints of TASK_ID, oldest first, keeping the
    # files (`bin/cli checkpoint migrate`), and records them as imported
    # (OldFiles::RECORD) so the v52 API reads them from the task only.
    # Running it again imports nothing twice: a file whose v52 checkpoint the
    # task already holds (same session_id and timestamp, or the same
    # content) is skipped.
    #
    # The store prunes a task's oldest-numbered checkpoints, so the task's
    # newest by time must be its newest by number: the task's own
    # checkpoints that are newer than an imported file are written again
    # after the imports (`rewritten`), and nothing is pruned while importing.
    class Migration
      # @param store [String] a file store's directory (Config.store)
      # @param progress [#call, nil] called with (written, to_write) after each write
      def initialize(store, logger: MASTER.logger, progress: nil)
        @store = store
        @dir = OldFiles.directory(store)
        raise ArgumentError, "the old MASTER v52 files are in a directory; #{store} is not one" unless @dir

        @logger = logger
        @progress = progress
      end

      # @return [Hash] store, task, and the old files imported, already
      #   imported and damaged (names), and the task's checkpoints rewritten
      def run
        old, damaged = read_old_files
        existing = V52.gem_entries(@store, @logger)
        fresh, already = old.partition { |entry| new?(entry, existing) }
        later = rewrites(fresh, existing)
        refused = write((fresh + later).sort_by(&:order))
        imported = fresh - refused
        done = (imported + already).to_h { |entry| [entry.file, @digests.fetch(entry.file)] }
        OldFiles.record!(@dir, done, @logger) unless done.empty?
        { store: @store, task: TASK_ID, imported: imported.map(&:file), already_imported: already.map(&:file),
          damaged: damaged + refused.map(&:file), rewritten: later.map(&:file), old_files: old.size + damaged.size,
          record: File.join(@dir, OldFiles::RECORD) }
      end

      private

      def read_old_files
        old = []
        damaged = []
        @digests = {}
        OldFiles.names(@dir).each do |name|
          path = File.join(@dir, name)
          bytes = OldFiles.read_bytes(path)
          old << Entry.new(name, OldFiles.parse(bytes, path), nil, path)
          @digests[name] = OldFiles.digest(bytes)
        rescue CorruptCheckpointError => e
          damaged << name
          @logger&.warn("skipped #{e.message}")
        end
        [old, damaged]
      end

      # Not yet in the task: no checkpoint of it is this one, in any version.
      def new?(entry, existing)
        existing.none? { |gem| gem.identity == entry.identity || gem.data == entry.data }
      end

      # The latest version of each of the task's checkpoints newer than the
      # oldest file imported.
      def rewrites(fresh, existing)
        return [] if fresh.empty?

        oldest = fresh.map(&:order).min
        V52.latest_versions(existing).select { |entry| (entry.order <=> oldest).positive? }
      end

      # Writes the entries in order; returns the old files the store refused
      # (data it cannot keep exactly, such as an Integer wider than 64 bits).
      def write(entries)
        return [] if entries.empty?

        session = SessionRecovery.new(task_id: TASK_ID, store: @store, auto_resume: false, max_checkpoints: 0,
                                      enabled: true, logger: @logger)
        entries.each_with_index.filter_map do |entry, index|
          done, total = V52.counts(entry.data)
          message = entry.gem? ? "#{entry.file} again, after the imported files" : "imported from #{entry.file}"
          session.checkpoint(data: entry.data, progress: done, items_total: total || 0, message: message)
          nil
        rescue TypeError, ArgumentError => e
          raise if entry.gem?

          @logger&.warn("could not import #{entry.path}: #{e.message}")
          entry
        ensure
          @progress&.call(index + 1, entries.size)
        end
      end
    end
  end
end
