# frozen_string_literal: true

require "yaml"

module MASTER
  # Settings: the shipped lib/config/session_recovery.yml, overridden by the
  # project's file, overridden by the environment (SPEC "Configuration").
  # Files are re-read when they change; the environment is read on every call,
  # so a process may change it between sessions.
  module Config
    DEFAULTS_PATH = File.expand_path("../config/session_recovery.yml", __dir__)
    PROJECT_PATHS = %w[config/session_recovery.yml lib/config/session_recovery.yml].freeze
    SECTION = "session_recovery"
    LEGACY_SECTION = "session"

    # Every key of the seed's YAML and the kind of value it takes.
    KEYS = {
      enabled: :boolean,
      checkpoint_interval: :seconds,
      checkpoint_on_items: :count,
      checkpoint_dir: :path,
      store: :store,
      max_checkpoints: :count,
      auto_resume: :boolean,
      resume_max_age: :age,
      resume_on_start: :boolean,
      keep_failed: :boolean,
      keep_successful: :days,
      track_costs: :boolean,
      enforce_budget: :boolean,
      warn_threshold: :fraction,
      delta_threshold: :count
    }.freeze

    KINDS = {
      boolean: "true or false",
      seconds: "a number of seconds from 0 to 100 years (0 or nil turns the timer off)",
      count: "a whole number from 0 to 2**62 (0 or nil turns it off)",
      positive_count: "a whole number from 0 to 2**62",
      path: "a non-empty directory path (String)",
      store: "a directory path, \"memory\" (or memory://NAME), or a postgresql:// URL",
      days: "a number of days, from 0 to 36500",
      age: "a number of seconds from 0 to 100 years, or nil for no limit",
      fraction: "a fraction above 0 and at most 1 (0.8 means 80%)",
      callable: "something that responds to call (a lambda or proc), or nil",
      logger: "an object that responds to warn (a Logger), or nil",
      workers: "a whole number from 1 to 256",
      lease: "a number of seconds from 0.05 to 86400"
    }.freeze

    path = ->(v) { (v.is_a?(String) || v.respond_to?(:to_path)) && !v.to_s.empty? }
    # Whether a value is of each kind (the messages are KINDS).
    CHECKS = {
      boolean: ->(v) { [true, false].include?(v) },
      seconds: ->(v) { v.nil? || Config.non_negative?(v, integer: false) },
      count: ->(v) { v.nil? || Config.non_negative?(v, integer: true) },
      positive_count: ->(v) { Config.non_negative?(v, integer: true) },
      days: ->(v) { Config.non_negative?(v, integer: false) && v <= 36_500 },
      age: ->(v) { v.nil? || Config.non_negative?(v, integer: false) },
      path: path,
      store: ->(v) { v.nil? || path.call(v) },
      fraction: ->(v) { v.is_a?(Numeric) && v.real? && v.positive? && v <= 1 },
      workers: ->(v) { v.is_a?(Integer) && v.between?(1, 256) },
      lease: ->(v) { v.is_a?(Numeric) && v.real? && v.finite? && v.between?(0.05, 86_400) },
      callable: ->(v) { v.nil? || v.respond_to?(:call) },
      logger: ->(v) { v.nil? || v.respond_to?(:warn) }
    }.freeze

    ENV_KEYS = {
      "MASTER_CHECKPOINT_DIR" => :checkpoint_dir,
      "MASTER_STORE" => :store,
      "MASTER_AUTO_RESUME" => :auto_resume,
      "MASTER_CHECKPOINT_INTERVAL" => :checkpoint_interval
    }.freeze

    class << self
      # The merged settings, as a frozen Hash with Symbol keys.
      def settings
        file_settings.merge(from_env).freeze
      end

      # The shipped defaults with the project's file over them (no environment).
      def file_settings
        merged = load_file(DEFAULTS_PATH)
        project = project_file
        project ? merged.merge(load_file(project)) : merged
      end

      # The store to use, as the one string the Rust core opens: an absolute
      # directory (the file store), memory://NAME, or a database URL. What
      # code names wins (store:, then checkpoint_dir:), then the environment
      # (MASTER_STORE, then MASTER_CHECKPOINT_DIR), then the config file
      # (store, then checkpoint_dir).
      def store(store = nil, checkpoint_dir = nil)
        return store_spec(store, "store") unless store.nil?
        return checkpoint_dir(checkpoint_dir) unless checkpoint_dir.nil?

        env = from_env
        return store_spec(env[:store], "MASTER_STORE") if env[:store]
        return checkpoint_dir(env[:checkpoint_dir]) if env[:checkpoint_dir]

        file = file_settings
        file[:store] ? store_spec(file[:store], "store") : checkpoint_dir(file[:checkpoint_dir])
      end

      # A store named by URL or path, in the form `store` returns.
      def store_spec(value, name)
        value = value.to_path if value.respond_to?(:to_path)
        value = value.to_s if value.is_a?(Symbol)
        raise ArgumentError, "#{name} must be #{KINDS[:store]}; got #{Options.shown(value)}" unless value.is_a?(String)

        Options.check_text!(value, name)
        case value
        when "memory" then "memory://default"
        when %r{\Amemory://([^/]*)\z} then "memory://#{Regexp.last_match(1).empty? ? 'default' : Regexp.last_match(1)}"
        when %r{\Afile://(.+)\z} then checkpoint_dir(Regexp.last_match(1))
        when %r{\Apostgres(ql)?://}i then value
        when %r{\A[a-z][a-z0-9+.-]*://}i
          scheme = value[/\A[^:]*/]
          raise ArgumentError, "#{name} names a store the gem does not know (#{scheme}://…); " \
                               "give a directory, \"memory\" or a postgresql:// URL"
        else checkpoint_dir(value)
        end
      end

      # The project's override file, if any.
      def project_file
        named = ENV.fetch("MASTER_CONFIG", nil)
        if named && !named.empty?
          return named if File.file?(named)

          if File.directory?(named)
            raise ConfigError, "MASTER_CONFIG names #{named}, which is a directory; name the config file itself " \
                               "(for example #{File.join(named, 'session_recovery.yml')})"
          end

          raise ConfigError, "MASTER_CONFIG names #{named}, which does not exist; create it or unset MASTER_CONFIG"
        end
        PROJECT_PATHS.map { |path| File.expand_path(path) }.find do |path|
          File.file?(path) && path != DEFAULTS_PATH
        end
      end

      # The store to use: the explicit one, else the configured one, made
      # absolute against the current directory.
      def checkpoint_dir(explicit = nil)
        dir = explicit.nil? ? settings[:checkpoint_dir] : explicit
        problem = problem_with(:path, dir)
        raise ArgumentError, "checkpoint_dir must be #{problem}; got #{Options.shown(dir)}" if problem

        path = dir.to_s
        Options.check_text!(path, "checkpoint_dir")
        if path.bytesize > MAX_PATH_BYTES
          raise ArgumentError, "checkpoint_dir is #{path.bytesize} bytes long; the limit is #{MAX_PATH_BYTES} " \
                               "(PATH_MAX); got #{Options.shown(path)}"
        end
        File.expand_path(path)
      end

      # Linux's PATH_MAX: no longer path can be opened.
      MAX_PATH_BYTES = 4096

      # Why `value` is not of `kind`, or nil if it is.
      def problem_with(kind, value)
        CHECKS.fetch(kind).call(value) ? nil : KINDS.fetch(kind)
      end

      # Forget parsed files and given warnings (for tests).
      def reset!
        @files = nil
        @warned = nil
      end

      def warn_once(key, message)
        @warned ||= {}
        return if @warned[key]

        @warned[key] = true
        MASTER.logger&.warn(message)
      end

      # Counts stop well inside 64 bits; durations at a hundred years.
      LIMITS = { true => 2**62, false => Options::MAX_SECONDS }.freeze

      def non_negative?(value, integer:)
        return false unless value.is_a?(Numeric) && value.real?
        return false if integer && !value.is_a?(Integer)

        value.finite? && value >= 0 && value <= LIMITS.fetch(integer)
      end

      private

      def load_file(path)
        @files ||= {}
        stat = File.stat(path)
        cached = @files[path]
        return cached[:settings] if cached && cached[:mtime] == stat.mtime && cached[:size] == stat.size

        settings = parse(path)
        @files[path] = { mtime: stat.mtime, size: stat.size, settings: settings }
        settings
      rescue Errno::ENOENT, Errno::EACCES => e
        raise ConfigError, "cannot read #{path}: #{e.message}"
      end

      def parse(path)
        # Aliases (`<<: *defaults`) are plain YAML that config files use.
        document = YAML.safe_load(File.read(path), aliases: true) || {}
        raise ConfigError, "#{path}: expected a `#{SECTION}:` section at the top" unless document.is_a?(Hash)

        warn_unknown_sections(document, path)
        section = section_of(document, path)
        unless section.is_a?(Hash)
          raise ConfigError,
                "#{path}: `#{SECTION}:` must hold key: value pairs; got #{Options.shown(section)}"
        end

        # MASTER v52's shape (`recovery:`, `triggers:` ...); `session_recovery:` wins.
        v52, ignored = V52::ConfigFile.read(document, path)
        warn_once([path, :v52], V52::ConfigFile.warning(path, ignored)) unless ignored.empty?
        section.each_with_object(v52) do |(key, value), settings|
          name = key.to_s.to_sym
          kind = KEYS[name]
          unless kind
            near = closest(key.to_s, KEYS.keys.map(&:to_s))
            warn_once([path, name], "#{path}: unknown key `#{key}` in #{SECTION} (ignored)" \
                                    "#{"; did you mean `#{near}`?" if near}; known keys: #{KEYS.keys.join(', ')}")
            next
          end
          problem = problem_with(kind, value)
          raise ConfigError, "#{path}: #{SECTION}.#{key} must be #{problem}; got #{Options.shown(value)}" if problem

          settings[name] = value
        end
      rescue Psych::Exception => e
        raise ConfigError, "#{path} is not valid YAML: #{e.message}"
      end

      # Top-level sections a config file may hold.
      SECTIONS = [SECTION, LEGACY_SECTION].freeze

      # A misspelled section (`session_recovry:`) would otherwise be ignored
      # without a word, and its settings with it.
      def warn_unknown_sections(document, path)
        (document.keys.map(&:to_s) - SECTIONS - V52::ConfigFile::SECTIONS).each do |name|
          near = closest(name, SECTIONS + V52::ConfigFile::SECTIONS)
          warn_once([path, :section, name], "#{path}: unknown section `#{name}:` (ignored, with everything in it)" \
                                            "#{"; did you mean `#{near}:`?" if near}; known sections: #{SECTIONS.join(', ')}")
        end
      end

      # The known word `word` is most likely a misspelling of, if any.
      def closest(word, words)
        require "did_you_mean"
        DidYouMean::SpellChecker.new(dictionary: words).correct(word).first
      rescue LoadError
        nil
      end

      def section_of(document, path)
        if document.key?(SECTION) && document.key?(LEGACY_SECTION)
          warn_once([path, :shadowed], "#{path}: has both `#{SECTION}:` and the old `#{LEGACY_SECTION}:`; " \
                                       "only `#{SECTION}:` is read. Move what you need from `#{LEGACY_SECTION}:` and delete it")
        end
        return document[SECTION] || {} if document.key?(SECTION) || !document.key?(LEGACY_SECTION)

        warn_once([path, :legacy],
                  "#{path}: the `#{LEGACY_SECTION}:` section is deprecated; rename it to `#{SECTION}:` " \
                  "(bin/cli checkpoint migrate-config #{path} does it for you)")
        document[LEGACY_SECTION] || {}
      end

      def from_env
        ENV_KEYS.each_with_object({}) do |(variable, key), settings|
          text = ENV.fetch(variable, nil)
          next if text.nil? || text.strip.empty?

          settings[key] = env_value(variable, key, text.strip)
        end
      end

      def env_value(variable, key, text)
        case KEYS.fetch(key)
        when :boolean
          return true if %w[true 1 yes on].include?(text.downcase)
          return false if %w[false 0 no off].include?(text.downcase)

          raise ConfigError, "#{variable} must be true or false; got #{Options.shown(text)}"
        when :seconds
          seconds = Float(text, exception: false)
          unless seconds&.finite? && seconds&.between?(0, Options::MAX_SECONDS)
            raise ConfigError,
                  "#{variable} must be #{KINDS[:seconds]}; got #{Options.shown(text)}"
          end

          seconds == seconds.to_i ? seconds.to_i : seconds
        else
          text
        end
      end
    end
  end
end
