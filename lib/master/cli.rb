# frozen_string_literal: true

require "json"
require "optparse"
require "time"
require "yaml"
require_relative "../master"
require_relative "cli/help"
require_relative "cli/commands"
require_relative "cli/render"
require_relative "cli/config_migration"

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
    include Commands
    include Render

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
               else
                 "argument"
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
      raise UsageError, "missing subcommand (#{SUBCOMMANDS.keys.join(', ')}); see #{@program} checkpoint --help" if name.nil?

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

    def parse(name, argv, options, &)
      subcommand_parser(name, options, &).parse!(argv)
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
  end
end
