# frozen_string_literal: true

require "json"
require "securerandom"

module MASTER
  module V52
    # MASTER v52's SessionRecovery API, for a session made without
    # `task_id:` (SessionRecovery#initialize extends it with this module).
    # Each v52 checkpoint — `{version: 1, task:, files: {...}, context: {...},
    # recovery_instructions:, timestamp: <Integer epoch>, session_id:}` — is
    # the data of a checkpoint of the task TASK_ID, written by this session's
    # own crash-safe store; the old checkpoint_<epoch>.json files in the
    # store's directory are read beside them.
    #
    # Where the names mean other things than in the task_id API: `progress`
    # is v52's Integer percentage of completed files, `restore` takes a file
    # name from `list` (or a path) rather than a number, and `timestamp` is
    # an Integer epoch rather than a Time.
    module Recovery
      UPDATE_KEYS = %i[files context instructions].freeze

      # The v52 checkpoint this session stands on (set by checkpoint,
      # restore, latest), or nil.
      attr_reader :current_checkpoint

      # Writes a new v52 checkpoint (a new timestamp) and returns it: Symbol
      # keys, Integer epoch `timestamp`.
      def checkpoint(task:, files: {}, context: {}, instructions: [])
        v52_hash!(files, "files")
        v52_hash!(context, "context")
        @current_checkpoint = {
          version: 1,
          task: task,
          files: %i[completed in_progress pending failed].to_h { |status| [status, v52_copy(files[status], [])] },
          context: {
            decisions: v52_copy(context[:decisions], []),
            patterns: v52_copy(context[:patterns], []),
            blockers: v52_copy(context[:blockers], []),
            variables: v52_copy(context[:variables], {})
          },
          recovery_instructions: instructions,
          timestamp: Time.now.to_i,
          session_id: session_id
        }
        v52_save
      end

      # The v52 checkpoint named `checkpoint_file` — a `file:` from `list`
      # (the gem's "checkpoint_003.json" or an old "checkpoint_<epoch>.json"),
      # or a path to an old file — or, with no argument, the latest. It
      # becomes the current checkpoint. Nil when there is no such checkpoint.
      # @raise [CorruptCheckpointError] the named checkpoint is damaged
      def restore(checkpoint_file = nil)
        return latest if checkpoint_file.nil?

        where = v52_locate(checkpoint_file)
        where && v52_adopt(*where)
      end

      # The newest v52 checkpoint (the gem's and the old files', by their
      # timestamp) as restored, or nil when there is none. Damaged ones are
      # skipped with a warning; it never raises because of one.
      def latest
        V52.entries(@v52_store, @v52_logger).each do |entry|
          found = v52_adopt(*(entry.gem? ? [:gem, entry.number] : [:old, entry.path]))
          return found if found
        rescue CorruptCheckpointError => e
          @v52_logger&.warn("skipped #{e.message}")
        end
        nil
      end

      # One row per v52 checkpoint, newest first: `{file:, task:, timestamp:,
      # age:, files_pending:}`; `file` is what `restore` takes.
      def list
        now = Time.now.to_i
        V52.entries(@v52_store, @v52_logger).map do |entry|
          files = entry.data[:files]
          pending = files.is_a?(Hash) ? files[:pending] : nil
          { file: entry.file, task: entry.data[:task], timestamp: entry.timestamp, age: now - entry.timestamp,
            files_pending: pending.is_a?(Array) ? pending.size : 0 }
        end
      end

      # Removes the old-format file named `checkpoint_file` from the store's
      # directory: [its path], or nil when there is none. The gem's own
      # checkpoints are the task's history, removed only all together
      # (clear_all): naming one raises MASTER::Error.
      def delete(checkpoint_file)
        name = checkpoint_file.respond_to?(:to_path) ? checkpoint_file.to_path : checkpoint_file
        Options.check_text!(name, "checkpoint_file")
        if name.empty? || name.include?("/") || name.include?("\0") || %w[. ..].include?(name)
          raise ArgumentError, "checkpoint_file must be a file name from list (checkpoint_<n>.json); " \
                               "got #{Options.shown(name)}"
        end
        dir = OldFiles.directory(@v52_store)
        if OldFiles.exist?(dir, name)
          path = File.join(dir, name)
          File.delete(path)
          return [path]
        end
        v52_refuse_delete(name)
        nil
      end

      # Forgets every v52 checkpoint: the task TASK_ID, the old files and
      # the record of their import.
      def clear_all
        reset
        dir = OldFiles.directory(@v52_store)
        OldFiles.names(dir).each do |name|
          File.delete(File.join(dir, name))
        rescue Errno::ENOENT
          nil
        end
        OldFiles.forget!(dir)
        @current_checkpoint = nil
      end

      # Changes the current checkpoint — files (status => list), context
      # (key => value), instructions — and writes it with a new timestamp.
      # Takes keywords or v52's Hash. Nil without a current checkpoint.
      def update(updates = {}, **more)
        v52_hash!(updates, "updates")
        updates = updates.merge(more)
        unknown = updates.keys - UPDATE_KEYS
        unless unknown.empty?
          raise ArgumentError, "update takes #{UPDATE_KEYS.join(', ')}; got #{unknown.map(&:inspect).join(', ')}"
        end
        return nil unless @current_checkpoint

        cp = @current_checkpoint
        updates[:files]&.each { |status, files| (cp[:files] ||= {})[status] = files }
        updates[:context]&.each { |key, value| (cp[:context] ||= {})[key] = value }
        cp[:recovery_instructions] = updates[:instructions] if updates[:instructions]
        cp[:timestamp] = Time.now.to_i
        v52_save
      end

      # Moves `file` to the completed list and writes the checkpoint (same
      # timestamp: the same v52 checkpoint, a newer version).
      def complete_file(file)
        files = v52_files or return nil
        v52_list(files, :pending).delete(file)
        v52_list(files, :in_progress).delete(file)
        completed = v52_list(files, :completed)
        completed << file unless completed.include?(file)
        v52_save
      end

      # Moves `file` to the failed list as `{file:, reason:, timestamp:}` and
      # writes the checkpoint (same timestamp).
      def fail_file(file, reason: nil)
        files = v52_files or return nil
        v52_list(files, :pending).delete(file)
        v52_list(files, :in_progress).delete(file)
        v52_list(files, :failed) << { file: file, reason: reason, timestamp: Time.now.to_i }
        v52_save
      end

      # Appends `{decision:, timestamp:}` to the context's decisions and writes.
      def add_decision(decision)
        v52_note(:decisions, decision: decision)
      end

      # Appends `{blocker:, timestamp:}` to the context's blockers and writes.
      def add_blocker(blocker)
        v52_note(:blockers, blocker: blocker)
      end

      def instructions
        @current_checkpoint&.[](:recovery_instructions) || []
      end

      def pending_files
        files = @current_checkpoint&.[](:files)
        (files.is_a?(Hash) && files[:pending]) || []
      end

      # v52's progress: the Integer percentage of completed files among all
      # lists (a failed entry counts one); 100 when there are none, 0 with no
      # current checkpoint.
      def progress
        files = @current_checkpoint&.[](:files)
        return 0 unless files.is_a?(Hash)

        total = files.values.flatten.size
        return 100 if total.zero?

        completed = files[:completed].is_a?(Array) ? files[:completed].size : 0
        (completed.to_f / total * 100).round
      end

      private

      # @private set up by SessionRecovery#initialize
      def v52_setup(store, logger)
        @v52_store = store
        @v52_logger = logger
        @current_checkpoint = nil
      end

      # This session's id, as v52 made it: stable for the instance.
      def session_id
        @session_id ||= "session_#{Time.now.to_i}_#{SecureRandom.hex(4)}"
      end

      # Writes the current checkpoint as the next checkpoint of TASK_ID, as
      # v52 wrote its file: through JSON, so what comes back is what v52's
      # restore gave (a Symbol or a Time value comes back a String).
      def v52_save
        data = @current_checkpoint
        done, total = V52.counts(data)
        task = data[:task]
        message = task.is_a?(String) && task.valid_encoding? ? task[0, 200] : nil
        _checkpoint(JSON.parse(JSON.generate(data), symbolize_names: true), message, done, total || 0)
        data
      end

      # [:gem, number] or [:old, path] for a name `list` gave (or a path), or nil.
      def v52_locate(file)
        name = file.respond_to?(:to_path) ? file.to_path : file
        Options.check_text!(name, "checkpoint_file")
        dir = OldFiles.directory(@v52_store)
        return v52_locate_path(File.expand_path(name), dir) if name.include?("/")
        return [:old, File.join(dir, name)] if OldFiles.exist?(dir, name)

        number = name[GEM_NAME, 1]
        # (A longer number than 18 digits is no checkpoint's.)
        return (number.length <= 18 ? [:gem, number.to_i] : nil) if number

        # v52 took a path relative to the current directory.
        File.file?(name) ? [:old, File.expand_path(name)] : nil
      end

      def v52_locate_path(path, dir)
        number = File.basename(path)[GEM_NAME, 1]
        return [:gem, number.to_i] if number && dir && File.dirname(path) == File.join(dir, TASK_ID)

        File.exist?(path) || File.symlink?(path) ? [:old, path] : nil
      end

      # Makes the checkpoint found there current; returns it (nil if gone).
      def v52_adopt(kind, where)
        data = if kind == :gem
                 state = SessionRecovery.instance_method(:restore).bind_call(self, where)
                 return nil unless state

                 state[:data]
               else
                 OldFiles.read(where)
               end
        @current_checkpoint = data
        if V52.checkpoint?(data) && @v52_logger.respond_to?(:info)
          @v52_logger.info("Restored checkpoint from #{Time.at(data[:timestamp])}")
        end
        data
      rescue CheckpointNotFoundError
        nil
      end

      def v52_refuse_delete(name)
        number = name[GEM_NAME, 1]&.to_i
        return unless number && SessionPersistence.checkpoints(TASK_ID, store: @v52_store).include?(number)

        raise Error, "#{name} is checkpoint #{number} of task #{TASK_ID}, which the store keeps as the task's " \
                     "history: no single one is deleted (the oldest go when there are more than max_checkpoints); " \
                     "clear_all forgets them all. Nothing was deleted"
      end

      def v52_files
        files = @current_checkpoint&.[](:files)
        files.is_a?(Hash) ? files : nil
      end

      def v52_list(files, status)
        files[status].is_a?(Array) ? files[status] : (files[status] = [])
      end

      def v52_note(kind, entry)
        context = @current_checkpoint&.[](:context)
        return nil unless context.is_a?(Hash)

        v52_list(context, kind) << entry.merge(timestamp: Time.now.to_i)
        v52_save
      end

      def v52_copy(value, default)
        value.nil? ? default : value.dup
      end

      def v52_hash!(value, name)
        raise TypeError, "#{name} must be a Hash; got #{Options.shown(value)}" unless value.is_a?(Hash)
      end
    end
  end
end
