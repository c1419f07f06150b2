# frozen_string_literal: true

require "yaml"

module MASTER
  class CLI
    # `migrate-config FILE`: renames the old `session:` section to
    # `session_recovery:`, every value unchanged. The new text is checked to
    # load as the same settings before anything is written; the old file is
    # copied to a backup that never overwrites one; the new file replaces the
    # old one atomically (temp file, fsync, rename).
    class ConfigMigration
      # The old section's key at the start of a line, quoted or not.
      LEGACY_KEY = /^(["']?)#{Config::LEGACY_SECTION}\1(?=[ \t]*:(?:\s|$))/
      MAX_BACKUPS = 1000

      def initialize(file)
        @file = file
      end

      # @return [Hash] file, migrated, and when migrated: backup,
      #   checkpoint_dir, comments_kept
      def run
        text = read
        document = load_yaml(text)
        legacy = document.is_a?(Hash) && document.key?(Config::LEGACY_SECTION)
        current = document.is_a?(Hash) && document.key?(Config::SECTION)
        return { file: @file, migrated: false } if current && !legacy

        check_sections!(legacy, current)
        migrated = document.transform_keys { |key| key == Config::LEGACY_SECTION ? Config::SECTION : key }
        new_text, comments_kept = rewrite(text, migrated)
        backup = write_backup(text)
        begin
          replace(new_text)
        rescue StandardError
          File.unlink(backup)
          raise
        end
        section = migrated[Config::SECTION]
        { file: @file, migrated: true, backup: backup, comments_kept: comments_kept,
          checkpoint_dir: section.is_a?(Hash) ? section["checkpoint_dir"] : nil }
      end

      private

      def read
        File.read(@file)
      rescue SystemCallError => e
        raise Failure, "cannot read #{@file}: #{e.message.sub(/ @ .*/, '')}"
      end

      def load_yaml(text)
        YAML.safe_load(text, aliases: false, filename: @file)
      rescue Psych::Exception => e
        raise UsageError, "#{@file} is not valid YAML: #{e.message}"
      end

      def check_sections!(legacy, current)
        if legacy && current
          raise Failure, "#{@file} has both `#{Config::LEGACY_SECTION}:` and `#{Config::SECTION}:`; MASTER reads only " \
                         "`#{Config::SECTION}:`, so merge the two by hand"
        end
        return if legacy

        raise Failure, "#{@file} has no `#{Config::LEGACY_SECTION}:` section to migrate (nor a `#{Config::SECTION}:` one)"
      end

      # The new text and whether it kept the comments: the key renamed in
      # place when that loads as `migrated`, else `migrated` dumped afresh.
      def rewrite(text, migrated)
        edited = text.gsub(LEGACY_KEY) { "#{Regexp.last_match(1)}#{Config::SECTION}#{Regexp.last_match(1)}" }
        return [edited, true] if loads_as?(edited, migrated)

        dumped = YAML.dump(migrated)
        return [dumped, false] if loads_as?(dumped, migrated)

        raise Failure, "cannot rewrite #{@file} safely; rename `#{Config::LEGACY_SECTION}:` to `#{Config::SECTION}:` by hand"
      end

      def loads_as?(text, expected)
        YAML.safe_load(text, aliases: false) == expected
      rescue Psych::Exception
        false
      end

      # FILE.bak, or the first of FILE.bak.1, .2 ... that does not exist yet.
      def write_backup(text)
        mode = File.stat(@file).mode & 0o7777
        names = ["#{@file}.bak"] + (1...MAX_BACKUPS).map { |n| "#{@file}.bak.#{n}" }
        names.each do |name|
          write_new_file(name, text, mode)
          return name
        rescue Errno::EEXIST
          next
        end
        raise Failure, "#{@file}.bak and #{@file}.bak.1 to .#{MAX_BACKUPS - 1} all exist; remove some and run again"
      end

      # Writes beside the real file (through a symlink) and renames over it.
      def replace(text)
        target = File.realpath(@file)
        temp = File.join(File.dirname(target), ".#{File.basename(target)}.#{Process.pid}.#{rand(1 << 32)}.tmp")
        write_new_file(temp, text, File.stat(target).mode & 0o7777)
        File.rename(temp, target)
        sync_directory(File.dirname(target))
      rescue StandardError
        File.unlink(temp) if temp && File.exist?(temp)
        raise
      end

      # Creates `path` (never an existing file or symlink), durably.
      def write_new_file(path, text, mode)
        File.open(path, File::WRONLY | File::CREAT | File::EXCL | File::BINARY, mode) do |file|
          file.chmod(mode)
          file.write(text)
          file.fsync
        end
      end

      def sync_directory(dir)
        File.open(dir, &:fsync)
      rescue SystemCallError
        nil # not every file system lets a directory be fsynced
      end
    end
  end
end
