# frozen_string_literal: true

require "json"
require "optparse"
require "time"
require "yaml"
require_relative "../master"

begin
  require "did_you_mean" # "did you mean list?"; RubyGems loads it anyway
rescue LoadError
  nil
end

module MASTER
  # The command line: `bin/cli checkpoint SUBCOMMAND` (installed by the gem as
  # `master checkpoint SUBCOMMAND`). One method per subcommand, each reading
  # and writing through SessionRecovery and SessionPersistence.
  #
  # Exit status: 0 success; 1 the command could not be done (unknown task,
  # damaged checkpoint, store or config error); 2 the command line is wrong
  # (unknown subcommand or flag, missing or bad argument, bad JSON or
  # duration). A failed command prints exactly one line on stderr, nothing on
  # stdout, and writes nothing.
  #
  #   exit MASTER::CLI.start(ARGV)
  class CLI
    SUCCESS = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130

    # The command line is wrong: exit 2.
    class UsageError < StandardError; end
    # The command could not be done: exit 1.
    class Failure < StandardError; end

    # Collects the library's warnings during a command: printed after it
    # succeeds, dropped when it fails (a failure prints one line only).
    class WarningBuffer
      attr_reader :lines

      def initialize
        @lines = []
      end

      def warn(message)
        @lines << message.to_s
      end
      alias error warn

      def info(_message); end
      def debug(_message); end
    end

    BAR_WIDTH = 20
    TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
    COLORS = { bold: 1, red: 31, green: 32, cyan: 36 }.freeze

    # Usage, description and examples of each subcommand, for --help.
    SUBCOMMANDS = {
      "create" => {
        usage: "--task T [--data JSON] [--progress N] [--items-total N] [--message M]",
        about: <<~TEXT,
          Writes the next checkpoint of task T by hand. Whatever you leave out
          carries over from the task's last checkpoint (data, progress, budget).
          --data is the task's own data (what restore gives as state[:data]);
          --progress is the count of items done.
        TEXT
        examples: ["create --task \"current-task\" --data '{\"progress\": 50}'",
                   "create --task import-users --progress 45 --items-total 100 --message \"paused\""]
      },
      "list" => {
        usage: "",
        about: <<~TEXT,
          Lists every task in the store, newest first: when it was last
          checkpointed, how far it got, and what it spent.
        TEXT
        examples: ["list", "list --json | jq -r '.[].task_id'"]
      },
      "show" => {
        usage: "TASK",
        about: <<~TEXT,
          Shows one task and each of its checkpoints (number, time, status,
          progress, message). A damaged checkpoint file is shown as damaged.
        TEXT
        examples: ["show refactor-users-module"]
      },
      "resume" => {
        usage: "TASK | --latest [--checkpoint N]",
        about: <<~TEXT,
          Prints, as JSON, the state a session for TASK resumes from: its newest
          intact checkpoint (or checkpoint N). --latest takes the task that was
          checkpointed most recently. Nothing is written.
        TEXT
        examples: ["resume refactor-users-module", "resume --latest --json | jq .data"]
      },
      "clean" => {
        usage: "[--older-than AGE] [--completed] [--dry-run]",
        about: <<~TEXT,
          Removes whole tasks.
            --older-than AGE  tasks whose last checkpoint is older than AGE, running
                              or completed (failed ones too if keep_failed: false)
            --completed       completed tasks of any age (with --older-than: only
                              the completed ones older than AGE)
            neither           the configured retention: completed tasks older than
                              keep_successful days, failed ones too unless
                              keep_failed; running tasks are kept
          AGE is a number and a unit: 45s, 30m, 12h, 7d, 2w.
        TEXT
        examples: ["clean --older-than 7d", "clean --completed --dry-run", "clean"]
      },
      "remove" => {
        usage: "TASK",
        about: "Removes task TASK and all its checkpoints.\n",
        examples: ["remove refactor-users-module"]
      },
      "migrate-config" => {
        usage: "FILE",
        about: <<~TEXT,
          Rewrites a config file that still has the old `session:` section so it
          says `session_recovery:`, keeping every value and comment (checkpoint_dir
          too, so the checkpoints already written are still found). The old file
          is kept as FILE.bak (FILE.bak.1, .2 ... if that exists). A file already
          in the new form is left alone.
        TEXT
        examples: ["migrate-config config/session_recovery.yml"],
        store: false
      }
    }.freeze

    # Runs one command line; returns the exit status.
    def self.start(argv, out: $stdout, err: $stderr, program: default_program)
      new(out: out, err: err, program: program).run(argv)
    end

    # "bin/cli" in a checkout, "master" when installed as the gem's executable.
    def self.default_program
      name = File.basename($PROGRAM_NAME)
      name == "cli" ? "bin/cli" : name
    end

    def initialize(out:, err:, program:)
      @out = out
      @err = err
      @program = program
      # NO_COLOR turns colour off when set and not empty (no-color.org).
      @color = out.tty? && ENV.fetch("NO_COLOR", "").empty?
      @output = +""
      @warnings = WarningBuffer.new
      @context = nil # the subcommand, for "see ... --help"
    end

    def run(argv)
      previous_logger = MASTER.logger
      MASTER.logger = @warnings
      check_encoding!(argv)
      catch(:done) { dispatch(argv.dup) }
      finish
    rescue UsageError, OptionParser::ParseError, JSON::ParserError, ArgumentError, TypeError => e
      failed(USAGE, e)
    rescue Failure, MASTER::Error, SystemCallError, IOError => e
      return SUCCESS if e.is_a?(Errno::EPIPE) # the reader (| head) stopped reading

      failed(FAILURE, e)
    rescue Interrupt
      failed(INTERRUPTED, "interrupted")
    rescue StandardError => e
      failed(FAILURE, "internal error (#{e.class}: #{e.message}); please report this bug")
    ensure
      MASTER.logger = previous_logger
    end

    private

    # --- the command line --------------------------------------------------

    # Positional arguments by subcommand, to name one that is not text.
    POSITIONAL = { "show" => "task id", "remove" => "task id", "resume" => "task id", "migrate-config" => "FILE" }.freeze

    # Every argument must be UTF-8 text; say which one is not, by the flag
    # before it or its place on the command line.
    def check_encoding!(argv)
      argv.each_with_index do |arg, i|
        next if arg.dup.force_encoding(Encoding::UTF_8).valid_encoding?

        previous = argv[i - 1] if i.positive?
        what = if previous&.start_with?("--") && !previous.include?("=") then previous
               elsif arg.start_with?("--") then "option"
               elsif i == 1 && argv[0] == "checkpoint" then "subcommand"
               elsif i >= 2 && argv[0] == "checkpoint" then POSITIONAL.fetch(argv[1], "argument")
               else "argument"
               end
        raise UsageError, "#{what} #{Options.shown(arg.b)} is not valid UTF-8 text"
      end
    end

    def dispatch(argv)
      parser = top_parser
      parser.order!(argv)
      command = argv.shift
      case command
      when "checkpoint" then checkpoint(argv)
      when "help" then say(parser.help)
      when nil then raise UsageError, "missing command; try #{@program} checkpoint list, or see #{@program} --help"
      else raise UsageError, "unknown command #{command.inspect}#{suggestion(command, ['checkpoint'])}; " \
                             "see #{@program} --help"
      end
    end

    def checkpoint(argv)
      @context = "checkpoint"
      options = {}
      checkpoint_parser(options).order!(argv)
      name = argv.shift
      if name.nil?
        raise UsageError, "missing subcommand (#{SUBCOMMANDS.keys.join(', ')}); see #{@program} checkpoint --help"
      end
      unless SUBCOMMANDS.key?(name)
        raise UsageError, "unknown subcommand #{name.inspect}#{suggestion(name, SUBCOMMANDS.keys)}; " \
                          "see #{@program} checkpoint --help"
      end

      @context = "checkpoint #{name}"
      send(name.tr("-", "_"), argv, options)
    end

    def top_parser
      OptionParser.new do |o|
        o.program_name = @program
        o.version = VERSION
        o.banner = "Usage: #{@program} checkpoint SUBCOMMAND [options]"
        o.separator ""
        o.separator "Inspect and manage MASTER session-recovery checkpoints."
        o.separator ""
        o.separator "Commands:"
        o.separator "    checkpoint    create, list, show, resume, clean and remove checkpoints,"
        o.separator "                  migrate an old config file (#{@program} checkpoint --help)"
        o.separator ""
        o.separator "Options:"
        o.on("--version", "print the version") do
          say("master #{VERSION}")
          throw :done
        end
        help_option(o)
        examples(o, ["checkpoint list", "checkpoint --help"])
      end
    end

    def checkpoint_parser(options)
      OptionParser.new do |o|
        o.program_name = @program
        o.version = VERSION
        o.banner = "Usage: #{@program} checkpoint SUBCOMMAND [options]"
        o.separator ""
        o.separator "Subcommands:"
        SUBCOMMANDS.each { |name, spec| o.separator format("    %-15s %s", name, spec[:usage]).rstrip }
        o.separator ""
        o.separator "Each has --help, and takes:"
        common_options(o, options)
        examples(o, ["checkpoint list", "checkpoint show refactor-users-module", "checkpoint list --help"])
      end
    end

    # The parser of one subcommand: its own options (from the block), then
    # --dir, --json and --help, then the examples.
    def subcommand_parser(name, options)
      spec = SUBCOMMANDS.fetch(name)
      OptionParser.new do |o|
        o.program_name = @program
        o.version = VERSION
        o.banner = "Usage: #{@program} checkpoint #{name} #{spec[:usage]}".rstrip
        o.separator ""
        spec[:about].each_line { |line| o.separator line.chomp }
        o.separator ""
        o.separator "Options:"
        yield o if block_given?
        common_options(o, options, store: spec.fetch(:store, true))
        examples(o, spec[:examples].map { |example| "checkpoint #{example}" })
      end
    end

    def common_options(parser, options, store: true)
      if store
        parser.on("--dir DIR", "the checkpoint store's directory (default: the configured store)") do |dir|
          options[:dir] = dir
        end
        parser.on("--store URL", "the store: a directory, or a postgresql:// URL (default: the configured store)") do |url|
          options[:store] = url
        end
      end
      parser.on("--json", "machine-readable output: JSON on stdout") { options[:json] = true }
      parser.on("--version", "print the version") do
        say("master #{VERSION}")
        throw :done
      end
      help_option(parser)
    end

    def help_option(parser)
      parser.on("-h", "--help", "show this help") do
        say(parser.help)
        throw :done
      end
    end

    def examples(parser, lines)
      parser.separator ""
      parser.separator(lines.size == 1 ? "Example:" : "Examples:")
      lines.each { |line| parser.separator "    #{@program} #{line}" }
    end

    def parse(name, argv, options, &block)
      subcommand_parser(name, options, &block).parse!(argv)
    end

    def no_arguments!(argv)
      raise UsageError, "unexpected argument #{argv.first.inspect}; see #{@program} #{@context} --help" unless argv.empty?
    end

    def one_argument!(argv, what)
      raise UsageError, "missing #{what}; see #{@program} #{@context} --help" if argv.empty?
      raise UsageError, "unexpected argument #{argv[1].inspect}; see #{@program} #{@context} --help" if argv.size > 1
      raise UsageError, "#{what} \"\" must not be empty; see #{@program} #{@context} --help" if argv.first.empty?

      argv.first
    end

    # --- subcommands -------------------------------------------------------

    def create(argv, options)
      parse("create", argv, options) do |o|
        o.on("--task T", "the task id (required)") { |task| options[:task] = task }
        o.on("--data JSON", "the task's data as JSON (left out: the last data is kept)") { |json| options[:data] = json }
        o.on("--progress N", Integer, "items processed so far") { |n| options[:progress] = n }
        o.on("--items-total N", Integer, "items in all") { |n| options[:items_total] = n }
        o.on("--message M", "a note stored with the checkpoint") { |message| options[:message] = message }
      end
      no_arguments!(argv)
      task = options[:task] or raise UsageError, "missing --task T; see #{@program} #{@context} --help"
      data = options.key?(:data) ? parse_data(options[:data]) : nil
      dir = store(options)
      unless Config.settings[:enabled]
        raise Failure, "checkpointing is turned off (enabled: false in the configuration); nothing was written"
      end

      # auto_resume: true so that what is not given carries over, whatever the config says.
      session = SessionRecovery.new(task_id: task, store: dir, auto_resume: true)
      state = session.checkpoint(data: data, progress: options[:progress],
                                 items_total: options[:items_total], message: options[:message])
      return emit_json(state, options) if options[:json]

      say("Wrote checkpoint #{state[:checkpoint]} of #{task} (#{progress_text(state[:progress], state[:items_total])}) in #{dir}")
    end

    def list(argv, options)
      parse("list", argv, options)
      no_arguments!(argv)
      dir = existing_store(options)
      rows = SessionPersistence.list(store: dir)
      return emit_json(rows, options) if options[:json]
      return say("No checkpoints in #{dir}") if rows.empty?

      say(rows.map { |row| task_block(row) }.join("\n"))
    end

    def show(argv, options)
      parse("show", argv, options)
      task = one_argument!(argv, "TASK")
      dir = existing_store(options)
      # The damaged checkpoints are shown in the list below: no warnings for them.
      summary = quietly { SessionPersistence.summary(task, store: dir) }
      entries = SessionPersistence.history(task, store: dir)
      unknown_task!(task, dir) if summary.nil? && entries.empty?
      if options[:json]
        return emit_json({ task_id: task, directory: SessionPersistence.location(task, store: dir), summary: summary,
                           checkpoints: entries }, options)
      end

      say(show_text(task, summary, entries, SessionPersistence.location(task, store: dir)))
    end

    def resume(argv, options)
      parse("resume", argv, options) do |o|
        o.on("--latest", "the task checkpointed most recently") { options[:latest] = true }
        o.on("--checkpoint N", Integer, "that checkpoint instead of the newest intact one") { |n| options[:number] = n }
      end
      dir = existing_store(options)
      task = if options[:latest]
               no_arguments!(argv)
               latest_task(dir)
             else
               one_argument!(argv, "TASK (or --latest)")
             end
      unknown_task!(task, dir) if SessionPersistence.checkpoints(task, store: dir).empty?

      state = restore(task, options[:number], dir)
      unknown_task!(task, dir) if state.nil?
      emit_json(state, options) # pretty unless --json asked for one line
    end

    def clean(argv, options)
      parse("clean", argv, options) do |o|
        o.on("--older-than AGE", "tasks last checkpointed longer ago than AGE (7d, 12h, 30m)") do |age|
          options[:older_than] = duration(age)
          options[:older_than_text] = age
        end
        o.on("--completed", "completed tasks, of any age") { options[:completed] = true }
        o.on("--dry-run", "list what would be removed; remove nothing") { options[:dry_run] = true }
      end
      no_arguments!(argv)
      dir = existing_store(options)
      rule = cleanup_rule(options)
      doomed = SessionPersistence.cleanup(**rule, dry_run: true, store: dir)
      removed = options[:dry_run] ? doomed : with_progress(dir, doomed) { SessionPersistence.cleanup(**rule, store: dir) }
      if options[:json]
        return emit_json({ store: dir, dry_run: options[:dry_run] == true, removed: removed }, options)
      end

      say(clean_text(removed, dir, options))
    end

    def remove(argv, options)
      parse("remove", argv, options)
      task = one_argument!(argv, "TASK")
      dir = existing_store(options)
      count = SessionPersistence.checkpoints(task, store: dir).size
      unknown_task!(task, dir) unless SessionPersistence.remove(task, store: dir)
      return emit_json({ removed: task, checkpoints: count, store: dir }, options) if options[:json]

      say("Removed #{task} and its #{plural(count, 'checkpoint')} from #{dir}")
    end

    def migrate_config(argv, options)
      parse("migrate-config", argv, options)
      file = one_argument!(argv, "FILE")
      result = ConfigMigration.new(file).run
      return emit_json(result, options) if options[:json]

      say(migration_text(result))
    end

    # --- helpers: store, input ---------------------------------------------

    # The store the command line names (--store, --dir) or the configured one.
    def store(options)
      { dir: "a directory", store: "a store (a directory or a URL)" }.each do |flag, what|
        raise UsageError, "--#{flag} needs #{what}; see #{@program} #{@context} --help" if options[flag]&.strip&.empty?
      end
      Config.store(options[:store], options[:dir])
    end

    # The store to read: a --dir (or a file store --store) that names no
    # directory is a mistake to say, not an empty store.
    def existing_store(options)
      store = store(options)
      given = options[:dir] || options[:store]
      return store if given.nil? || !store.start_with?("/") || File.directory?(store)

      what = File.exist?(store) ? "it is not a directory" : "check the path"
      flag = options[:dir] ? "--dir" : "--store"
      raise Failure, "there is no checkpoint store at #{store} (#{flag} #{given}): #{what}"
    end

    def parse_data(json)
      JSON.parse(json, symbolize_names: true)
    rescue JSON::ParserError => e
      raise UsageError, "--data is not valid JSON (#{e.message.lines.first.strip.sub(/\A\d+: /, '')}); " \
                        "give an object such as '{\"done\": 12}'"
    end

    # A duration of the command line: a number and a unit, read as the
    # library reads one (Options.seconds).
    def duration(text)
      raise ArgumentError unless text.match?(/[smhdw]\s*\z/i)

      Options.seconds(text, "--older-than")
    rescue ArgumentError
      raise UsageError, "bad duration #{Options.shown(text)} for --older-than; give a number and a unit: " \
                        "45s, 30m, 12h, 7d or 2w (at most 100 years)"
    end

    def unknown_task!(task, dir)
      raise Failure, "unknown task #{task.inspect} in #{dir}; see #{@program} checkpoint list"
    end

    # The restored state of the task, with the library's errors about it
    # said in one short line.
    def restore(task, number, dir)
      SessionRecovery.new(task_id: task, store: dir, auto_resume: false).restore(number)
    rescue CheckpointNotFoundError
      raise Failure, "task #{task.inspect} has no checkpoint #{number}; see #{@program} checkpoint show #{task}"
    rescue CorruptCheckpointError => e
      problem = if number
                  "checkpoint #{number} of task #{task.inspect} is damaged (#{damage(e)})"
                else
                  "task #{task.inspect} has no intact checkpoint left in #{dir}"
                end
      raise Failure, "#{problem}; see #{@program} checkpoint show #{task}"
    end

    # What is wrong with a damaged checkpoint.
    def damage(error)
      error.reason || error.message
    end

    def quietly
      logger = MASTER.logger
      MASTER.logger = nil
      yield
    ensure
      MASTER.logger = logger
    end

    def latest_task(dir)
      newest = SessionPersistence.list(store: dir).first
      raise Failure, "no checkpoints in #{dir}, so nothing to resume; see #{@program} checkpoint list" unless newest

      newest[:task_id]
    end

    # --- helpers: clean ----------------------------------------------------

    # What `clean` asks SessionPersistence.cleanup for (which applies the
    # rule, and the configured retention when given no age).
    def cleanup_rule(options)
      if options[:completed]
        { older_than: options[:older_than] || 0, keep_failed: true, keep_running: true }
      elsif options[:older_than]
        { older_than: options[:older_than] }
      else
        {}
      end
    end

    # Shows "removed 3 of 40 tasks" on stderr while the store works, when
    # stderr is a terminal.
    def with_progress(dir, task_ids)
      return yield unless @err.tty? && !task_ids.empty?

      show = ->(n) { @err.print "\rmaster: cleaning #{dir}: removed #{n} of #{task_ids.size} tasks" }
      show.call(0)
      gone = -> { task_ids.count { |id| SessionPersistence.checkpoints(id, store: dir).empty? } }
      watcher = Thread.new do
        loop do
          sleep 0.1
          show.call(gone.call)
        end
      end
      result = yield
      watcher.kill.join
      show.call(gone.call)
      result
    ensure
      if watcher
        watcher.kill
        @err.print "\r\e[K"
      end
    end

    # --- helpers: output ---------------------------------------------------

    def say(text)
      @output << text
      @output << "\n" unless text.end_with?("\n")
      true
    end

    def emit_json(value, options)
      say(options[:json] ? JSON.generate(jsonable(value)) : JSON.pretty_generate(jsonable(value)))
    end

    # Symbol keys become Strings, Times ISO 8601 strings.
    def jsonable(value)
      case value
      when Hash then value.to_h { |key, member| [key.to_s, jsonable(member)] }
      when Array then value.map { |member| jsonable(member) }
      when Time then value.getutc.iso8601
      else value
      end
    end

    # Success: the output, then the warnings the library gave.
    def finish
      @out.write(@output)
      @out.flush
      @warnings.lines.each { |line| @err.puts "master: warn: #{printable(line)}" }
      SUCCESS
    end

    # Failure: one line on stderr, nothing on stdout.
    def failed(status, error)
      message = error.is_a?(Exception) ? error.message : error.to_s
      message = "#{message}; see #{[@program, @context].compact.join(' ')} --help" if error.is_a?(OptionParser::ParseError)
      @err.puts "master: #{printable(message.gsub(/\s*\n\s*/, ' ').strip)}"
      status
    end

    def suggestion(word, words)
      return "" unless defined?(DidYouMean::SpellChecker)

      found = DidYouMean::SpellChecker.new(dictionary: words).correct(word).first
      found ? " (did you mean #{found}?)" : ""
    end

    def paint(text, color)
      @color && !text.empty? ? "\e[#{COLORS.fetch(color)}m#{text}\e[0m" : text
    end

    def plural(count, word)
      "#{count} #{word}#{'s' unless count == 1}"
    end

    def time_text(time)
      time.is_a?(Time) ? time.getutc.strftime(TIME_FORMAT) : "unknown time"
    end

    def money(amount)
      format("$%.2f", amount || 0)
    end

    # The seed's block for one task, with a progress bar.
    def task_block(row)
      lines = [paint(printable(row[:task_id]), :bold), "  Latest: #{time_text(row[:updated_at])} (#{state_text(row)})"]
      bar = progress_bar(row)
      lines << "  Progress: #{bar}" if bar
      lines << "  Budget: #{budget_text(row[:budget])}"
      "#{lines.join("\n")}\n"
    end

    def state_text(row)
      case row[:status]
      when "completed" then paint("completed", :green)
      when "failed" then paint("failed", :red)
      else
        percentage = row.dig(:progress, :percentage)
        percentage ? "#{percentage.round}% complete" : plural(row.dig(:progress, :items_processed) || 0, "item")
      end
    end

    def progress_bar(row)
      percentage = row.dig(:progress, :percentage)
      return nil if percentage.nil? || row[:status] == "completed"

      filled = (percentage.clamp(0, 100) * BAR_WIDTH / 100).floor
      "[#{paint('#' * filled, :cyan)}#{'-' * (BAR_WIDTH - filled)}] #{percentage.round}%"
    end

    def budget_text(budget)
      spent = budget && budget[:spent]
      allocated = budget && budget[:allocated]
      return "#{money(spent)} (no limit)" if allocated.nil?

      text = "#{money(spent)} / #{money(allocated)}"
      spent.to_f > allocated ? paint(text, :red) : text
    end

    def progress_text(done, total)
      return plural(done || 0, "item") if total.nil?

      percentage = total.zero? ? 100 : (done.to_f * 100 / total).round
      "#{done}/#{total}, #{percentage}%"
    end

    def show_text(task, summary, entries, directory)
      # The summary is a cache that does not know its files were damaged since.
      intact = entries.any? { |entry| !entry[:damaged] }
      head = summary && intact ? task_block(summary) + summary_details(summary) : no_intact_text(task)
      table = [format("  %-5s %-19s  %-9s  %-16s %s", "#", "Time", "Status", "Progress", "Message").rstrip]
      table += entries.map { |entry| checkpoint_line(entry) }
      "#{head}  Files: #{directory}\n\n#{table.join("\n")}\n"
    end

    def summary_details(summary)
      good = summary[:latest_good_checkpoint] ? "##{summary[:latest_good_checkpoint]}" : "none"
      retries = summary[:retries] == 1 ? "1 retry" : "#{summary[:retries]} retries"
      text = "  Status: #{summary[:status]}; #{plural(summary[:checkpoints], 'checkpoint')} " \
             "(latest ##{summary[:latest_checkpoint]}, latest good #{good}); " \
             "#{plural(summary[:failures], 'failure')}, #{retries}\n"
      summary[:message] ? "#{text}  Message: #{printable(summary[:message])}\n" : text
    end

    def no_intact_text(task)
      "#{paint(printable(task), :bold)}\n  No intact checkpoint: every file is damaged; " \
        "`#{@program} checkpoint remove #{printable(task)}` deletes them.\n"
    end

    def checkpoint_line(entry)
      return format("  %-5d %s", entry[:number], paint("damaged: #{printable(entry[:problem])}", :red)) if entry[:damaged]

      progress = entry[:progress] || {}
      format("  %-5d %-19s  %-9s  %-16s %s", entry[:number], time_text(entry[:timestamp]), printable(entry[:status]),
             progress_text(progress[:items_processed], progress[:items_total]), printable(entry[:message])).rstrip
    end

    # Text from the store as one line with no terminal controls: a newline
    # or an escape sequence in a message is shown, never obeyed.
    def printable(text)
      text.to_s.gsub(/[\p{Cc}\u2028\u2029]/) { |char| char.inspect[1..-2] }
    end

    def describe_rule(options)
      age = options[:older_than_text]
      keep_failed = Config.settings[:keep_failed]
      if options[:completed]
        age ? "completed tasks older than #{age}" : "completed tasks of any age"
      elsif age
        "tasks last checkpointed more than #{age} ago#{', except failed ones' if keep_failed}"
      else
        "the configured retention: completed tasks older than #{plural(Config.settings[:keep_successful], 'day')}" \
          "#{', failed ones too' unless keep_failed}"
      end
    end

    def clean_text(removed, dir, options)
      what = describe_rule(options)
      if removed.empty?
        return options[:dry_run] ? "Nothing would be removed from #{dir} (#{what})" : "Nothing to clean in #{dir} (#{what})"
      end

      verb = options[:dry_run] ? "Would remove" : "Removed"
      (["#{verb} #{plural(removed.size, 'task')} from #{dir} (#{what}):"] + removed.map { |id| "  #{id}" }).join("\n")
    end

    def migration_text(result)
      file = result[:file]
      return "#{file} already uses `session_recovery:`; nothing changed" unless result[:migrated]

      text = +"Migrated #{file}: `session:` is now `session_recovery:`; every value is kept"
      if result[:checkpoint_dir]
        text << " (checkpoint_dir stays #{result[:checkpoint_dir].inspect}, so existing checkpoints are still found)"
      end
      text << ".\nThe old file is saved as #{result[:backup]}."
      text << " The new file is plain YAML: comments, if it had any, are only in the backup." unless result[:comments_kept]
      text
    end

    # `migrate-config FILE`: renames the old `session:` section to
    # `session_recovery:`, every value unchanged. The new text is checked to
    # load as the same settings before anything is written; the old file is
    # copied to a backup that never overwrites one; the new file replaces the
    # old one atomically (temp file, fsync, rename).
    class ConfigMigration
      # The old section's key at the start of a line, quoted or not.
      LEGACY_KEY = /^(["']?)#{Config::LEGACY_SECTION}\1(?=[ \t]*:(?:\s|$))/.freeze
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
        migrated = document.to_h { |key, value| [key == Config::LEGACY_SECTION ? Config::SECTION : key, value] }
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
