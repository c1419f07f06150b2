# frozen_string_literal: true

module MASTER
  # Keyword options of the public classes: unknown ones refused, every value
  # checked before Rust sees it, defaults taken from `Config`.
  module Options
    DEFAULT_MAX_RETRIES = 3

    SESSION = {
      store: :store,
      checkpoint_dir: :path,
      checkpoint_interval: :seconds,
      checkpoint_on_items: :count,
      max_checkpoints: :count,
      warn_threshold: :fraction,
      auto_resume: :boolean,
      resume_max_age: :age,
      max_retries: :positive_count,
      on_checkpoint: :callable,
      on_resume: :callable,
      on_complete: :callable,
      logger: :logger,
      enabled: :boolean,
      track_costs: :boolean,
      enforce_budget: :boolean,
      async: :boolean,
      delta_threshold: :count
    }.freeze

    module_function

    # A value as an error message shows it: its inspect, cut short, and
    # without inspecting all of a huge String.
    def shown(value)
      text = if value.is_a?(String) && value.bytesize > 200
               "#{value.byteslice(0, 60).inspect}… (#{value.bytesize} bytes)"
             else
               value.inspect
             end
      text.length > 100 ? "#{text[0, 99]}…" : text
    end

    # A String argument that is text: UTF-8 (or plain ASCII) and valid.
    def check_text!(value, name)
      raise TypeError, "#{name} must be a String; got #{shown(value)}" unless value.is_a?(String)
      return if value.valid_encoding? && (value.ascii_only? || value.encoding == Encoding::UTF_8)

      raise ArgumentError, "#{name} must be valid UTF-8 text; got #{shown(value)} (#{value.encoding})"
    end

    # Raises ArgumentError naming the first unknown or bad option.
    def check!(options, allowed, owner)
      unknown = options.keys - allowed.keys
      unless unknown.empty?
        raise ArgumentError, "unknown option#{'s' if unknown.size > 1} #{unknown.map(&:inspect).join(', ')} " \
                             "for #{owner}; known options: #{allowed.keys.join(', ')}"
      end
      options.each do |key, value|
        next if %i[checkpoint_dir store].include?(key) && value.nil? # nil: the configured store

        problem = Config.problem_with(allowed.fetch(key), value)
        raise ArgumentError, "option `#{key}` must be #{problem}; got #{shown(value)} (#{value.class})" if problem
      end
    end

    # Defaults of the options the configuration file does not set.
    # delta_threshold: states of 16 KiB and more may be saved as their change
    # since the checkpoint before (README "Delta checkpoints").
    DEFAULTS = { async: false, max_retries: DEFAULT_MAX_RETRIES, delta_threshold: 16_384 }.freeze

    # The options that are Ruby objects the session calls, not settings.
    HOOKS = %i[on_checkpoint on_resume on_complete logger].freeze

    # What `SessionRecovery#_setup` takes: the settings — every other option
    # of SESSION, given over configured over default, plain data, the store
    # they name — and the hooks.
    # @return [Array(Hash, Hash)]
    def session(options)
      check!(options, SESSION, "MASTER::SessionRecovery.new")
      config = Config.settings
      chosen = SESSION.each_key.to_h do |key|
        [key, options.fetch(key) { config.fetch(key) { DEFAULTS[key] } }]
      end
      chosen[:logger] = MASTER.logger unless options.key?(:logger)
      chosen[:store] = Config.store(options[:store], options[:checkpoint_dir])
      chosen[:checkpoint_interval] = chosen[:checkpoint_interval]&.to_f
      settings = chosen.reject { |key, _| HOOKS.include?(key) || key == :checkpoint_dir }
      [settings, chosen.slice(*HOOKS)]
    end

    # The most dollars a budget may be: well inside what a session keeps
    # exactly (Money holds 10^26), so no budget taken is refused later.
    MAX_BUDGET = 10**15

    # Raises ArgumentError unless `value` is a budget: a positive finite
    # number of dollars below MAX_BUDGET, or nil for none.
    def check_budget!(value, name = "budget")
      valid = value.nil? ||
              (value.is_a?(Numeric) && value.real? && value.finite? && value.positive? && value < MAX_BUDGET)
      return if valid

      raise ArgumentError, "#{name} must be a positive number of dollars below 10**15, or nil for no budget; " \
                           "got #{shown(value)}"
    end

    DURATION_UNITS = { "s" => 1, "m" => 60, "h" => 3600, "d" => 86_400, "w" => 604_800 }.freeze

    # The longest duration taken anywhere: a hundred years, in seconds.
    MAX_SECONDS = 100 * 365 * 86_400

    # Seconds from 3600, 7.days (anything with to_i) or "7d" / "12h" / "30m".
    def seconds(value, name)
      seconds = case value
                when Numeric then value
                when String
                  match = value.strip.match(/\A(\d+(?:\.\d+)?)\s*([smhdw])\z/i) if value.valid_encoding?
                  match && (match[1].to_f * DURATION_UNITS.fetch(match[2].downcase))
                else value.respond_to?(:to_i) && !value.nil? ? value.to_i : nil
                end
      if seconds.nil? || !seconds.real? || !seconds.finite? || seconds.negative? || seconds > MAX_SECONDS
        raise ArgumentError, "#{name} must be a duration of at most 100 years: seconds (604800), 7.days, " \
                             "or a String like \"7d\", \"12h\", \"30m\"; got #{shown(value)}"
      end
      seconds
    end
  end
end
