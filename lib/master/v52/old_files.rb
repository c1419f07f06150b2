# frozen_string_literal: true

require "digest"
require "json"

module MASTER
  module V52
    # The checkpoint_<epoch>.json files MASTER v52 wrote: pretty JSON read
    # with Symbol keys, as the old code read them. Only regular files
    # directly in the store's directory are read; a symlink or anything else
    # planted under such a name is refused, never followed.
    #
    # `bin/cli checkpoint migrate` records the files it imported (name and
    # SHA-256 of the bytes) in RECORD beside them: from then on the task
    # holds those checkpoints and the files are only a backup, so they are
    # not read again (a file changed since is).
    module OldFiles
      # More than any checkpoint the old code wrote; a bigger file is not one.
      MAX_BYTES = 64 * 1024 * 1024

      # The import record: a dot file, which v52's `Dir["*.json"]` never saw.
      RECORD = ".master-v52-imported.json"

      module_function

      # The directory old files may be in: the file store's own (nil for the
      # memory store or a database).
      def directory(store)
        store.start_with?("/") ? store : nil
      end

      # The old files' names in `dir`, oldest first.
      def names(dir)
        return [] unless dir && File.directory?(dir)

        Dir.children(dir).grep(OLD_NAME).sort_by { |name| [name[OLD_NAME, 1].to_i, name] }
      end

      # Whether `dir` holds an old file named `name`.
      def exist?(dir, name)
        return false unless dir && OLD_NAME.match?(name)

        path = File.join(dir, name)
        File.exist?(path) || File.symlink?(path)
      end

      # Every intact old file in `dir` not yet imported, as an Entry, oldest
      # first; a damaged one is skipped with a warning (once per process for
      # that file as it is).
      def entries(dir, logger)
        imported = record(dir, logger)
        names(dir).filter_map do |name|
          path = File.join(dir, name)
          bytes = read_bytes(path)
          next if imported[name] == digest(bytes)

          Entry.new(name, parse(bytes, path), nil, path)
        rescue CorruptCheckpointError => e
          V52.warn_once(logger, [path, *fingerprint(path)], "skipped #{e.message}")
          nil
        end
      end

      # The v52 checkpoint in the old file at `path`.
      # @raise [CorruptCheckpointError] it cannot be read, is not JSON, or is
      #   not a v52 checkpoint (a Hash with an Integer :timestamp)
      def read(path)
        parse(read_bytes(path), path)
      end

      def parse(bytes, path)
        data = begin
          JSON.parse(bytes, symbolize_names: true)
        rescue JSON::ParserError, EncodingError => e
          raise damaged(path, "not valid JSON (#{e.message.lines.first.to_s.strip.sub(/\A\d+: /, '')[0, 100]})")
        end
        return data if V52.checkpoint?(data)

        raise damaged(path, "not a v52 checkpoint (no Hash with an Integer :timestamp)")
      end

      # The file's bytes, as UTF-8.
      # @raise [CorruptCheckpointError] it is not a regular file, or too big, or unreadable
      def read_bytes(path)
        # NOFOLLOW: a planted symlink is refused; NONBLOCK: a FIFO never hangs us.
        File.open(path, File::RDONLY | File::NOFOLLOW | File::NONBLOCK) do |file|
          stat = file.stat
          raise IOError, "not a regular file" unless stat.file?
          raise IOError, "#{stat.size} bytes, more than any MASTER v52 checkpoint" if stat.size > MAX_BYTES

          file.read.force_encoding(Encoding::UTF_8)
        end
      rescue SystemCallError, IOError => e
        raise damaged(path, "cannot be read (#{e.message})")
      end

      def digest(bytes)
        "sha256:#{Digest::SHA256.hexdigest(bytes)}"
      end

      # The import record of `dir`: file name => digest of what was imported.
      def record(dir, logger)
        path = dir && File.join(dir, RECORD)
        return {} unless path && (File.exist?(path) || File.symlink?(path))

        imported = JSON.parse(read_bytes(path))["imported"]
        raise JSON::ParserError, "no \"imported\" object" unless imported.is_a?(Hash)

        imported
      rescue JSON::ParserError, EncodingError, CorruptCheckpointError => e
        V52.warn_once(logger, [path, *fingerprint(path)],
                      "ignored the damaged import record #{path} (#{e.message.lines.first.to_s.strip[0, 100]}); " \
                      "the old files are read again (bin/cli checkpoint migrate writes it anew)")
        {}
      end

      # Adds `names` (file name => digest) to the import record, crash-safely:
      # a temp file, fsync, rename, fsync of the directory.
      def record!(dir, names, logger)
        imported = record(dir, logger).merge(names)
        temp = File.join(dir, "#{RECORD}.#{Process.pid}.tmp")
        File.open(temp, File::WRONLY | File::CREAT | File::TRUNC | File::NOFOLLOW, 0o600) do |file|
          file.write(JSON.pretty_generate({ task: TASK_ID, imported: imported.sort.to_h }))
          file.fsync
        end
        File.rename(temp, File.join(dir, RECORD))
        File.open(dir, File::RDONLY, &:fsync)
      ensure
        File.unlink(temp) if temp && File.exist?(temp)
      end

      # Removes the import record (clear_all).
      def forget!(dir)
        File.unlink(File.join(dir, RECORD)) if dir
      rescue Errno::ENOENT
        nil
      end

      def damaged(path, reason)
        error = CorruptCheckpointError.new("MASTER v52 checkpoint file #{path}: #{reason}")
        { task_id: nil, number: nil, path: path, reason: reason }.each do |field, value|
          error.instance_variable_set(:"@#{field}", value)
        end
        error
      end

      def fingerprint(path)
        stat = File.lstat(path)
        [stat.mtime, stat.size]
      rescue SystemCallError, TypeError
        []
      end
    end
  end
end
