# frozen_string_literal: true

module MASTER
  module V52
    # MASTER v52's config file (lib/config/session_recovery.yml: `recovery:`,
    # `triggers:`, `cleanup:` ...) read as this gem's settings. Config reads
    # it from the same file as `session_recovery:`, which wins where both
    # set a key.
    module ConfigFile
      # The top-level sections of v52's file.
      SECTIONS = %w[version recovery checkpoint_format recovery_strategies triggers persistence notifications
                    cleanup].freeze

      # The v52 keys that have a meaning here, and the setting each one is.
      MAPPED = {
        "recovery.enabled" => :enabled,
        "recovery.checkpoint_dir" => :checkpoint_dir,
        "recovery.checkpoint_interval" => :checkpoint_interval,
        "recovery.max_checkpoints" => :max_checkpoints,
        "triggers.auto_restore.on_startup" => :auto_resume,
        "triggers.auto_restore.max_age" => :resume_max_age,
        "cleanup.retain_days" => :keep_successful
      }.freeze

      # The sections that hold mapped keys (the rest are ignored whole).
      CONTAINERS = MAPPED.keys.flat_map do |key|
        parts = key.split(".")
        (1...parts.size).map { |n| parts.first(n).join(".") }
      end.uniq.freeze

      # on_startup: a session cannot prompt, so `prompt` resumes as `auto` does.
      ON_STARTUP = { "auto" => true, "prompt" => true, "never" => false }.freeze

      module_function

      # The settings v52's sections of `document` give, and the key paths
      # that have no meaning here ("recovery.auto_checkpoint", "persistence").
      # @return [Array(Hash, Array<String>)]
      def read(document, path)
        settings = {}
        ignored = []
        walk(document.select { |key, _| SECTIONS.include?(key.to_s) }, nil, path, settings, ignored)
        [settings, ignored]
      end

      # The one warning naming every ignored key, or nil.
      def warning(path, ignored)
        return nil if ignored.empty?

        "#{path}: MASTER v52 settings with no meaning in this gem, ignored: #{ignored.join(', ')} " \
          "(read: #{MAPPED.map { |key, name| "#{key} as #{name}" }.join(', ')})"
      end

      def walk(hash, prefix, path, settings, ignored)
        hash.each do |key, value|
          name = [prefix, key.to_s].compact.join(".")
          if (setting = MAPPED[name])
            settings[setting] = value_of(name, setting, value, path)
          elsif CONTAINERS.include?(name) && !value.nil?
            unless value.is_a?(Hash)
              raise ConfigError, "#{path}: `#{name}:` must hold key: value pairs; got #{Options.shown(value)}"
            end

            walk(value, name, path, settings, ignored)
          elsif !CONTAINERS.include?(name)
            ignored << name
          end
        end
      end

      def value_of(name, setting, value, path)
        if setting == :auto_resume
          resume = ON_STARTUP[value.to_s] if value.is_a?(String) || value.is_a?(Symbol)
          return resume unless resume.nil?

          raise ConfigError, "#{path}: #{name} must be auto, prompt or never; got #{Options.shown(value)}"
        end
        problem = Config.problem_with(Config::KEYS.fetch(setting), value)
        raise ConfigError, "#{path}: #{name} (#{setting} here) must be #{problem}; got #{Options.shown(value)}" if problem

        value
      end
    end
  end
end
