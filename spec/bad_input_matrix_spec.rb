# frozen_string_literal: true

# The bad-input matrix: every public method and every bin/cli subcommand fed
# nil, wrong types, negatives, NaN/Infinity, invalid UTF-8, 10,000 levels of
# nesting, 50 MB strings, hostile task ids and unknown options.
#
# The tables below ARE the coverage report: each ROW (a method and one of its
# arguments) is crossed with every VALUE, and what must happen for each pair
# is the argument's KIND. For every pair where an error is due, the example
# asserts
#   - the error's class (ArgumentError/TypeError, or the MASTER::Error
#     subclass named in the table), never anything else;
#   - that its message names the argument and shows the bad value, in at most
#     MAX_MESSAGE bytes (an error message that embeds a 50 MB value is not a
#     clear error);
#   - that the store is byte-for-byte unchanged (store_snapshot);
#   - that the process is fine: nothing was printed on stderr (a Rust panic
#     prints there), and the next valid call on the same object works.
# Where the value must be accepted, the call must work and the next valid
# call too. For the CLI each row is one command line: exit status 1 or 2 (as
# the table says), exactly one line on stderr naming the flag and the value,
# nothing on stdout, no signal, no backtrace, the store unchanged.
#
# Pairs spec/bad_input_spec.rb already covers are left out (DUPLICATES).
# A pair where the library is wrong is marked with the defect, so the example
# is pending: the suite stays green and the defect stays visible (a fixed
# defect makes its example fail until the mark is removed).
module BadInputMatrix
  MAX_MESSAGE = 1024
  HUGE = ("x" * 50_000_000).freeze
  # Queue slugs (name:, add's description) run String#unicode_normalize over
  # the whole description before cutting it to 200 characters: 50 MB takes
  # 6 s there. 5 MB exercises the same path in a tenth of the time.
  LARGE = ("x" * 5_000_000).freeze
  # Past PATH_MAX (4 KB) the kernel refuses a path whatever its length, so
  # 1 MB is as hostile a checkpoint_dir as 50 MB, for a fiftieth of the time.
  LONG_PATH = ("x" * 1_000_000).freeze
  DEEP = 10_000.times.reduce([]) { |inner, _| [inner] }.freeze

  ARG = :argument_error # ArgumentError or TypeError (or a subclass)
  OK = :ok              # must work
  OK_OR_ARG = :ok_or_argument_error
  NOT_FOUND = MASTER::CheckpointNotFoundError
  STORE = MASTER::StoreError

  # label => [value, what the message must show of it]
  VALUES = {
    nil: [nil, /\bnil\b/],
    integer: [42, /\b42\b/],
    float: [1.5, /1\.5/],
    big_integer: [2**70, /1180591620717411303424/],
    string: ["str", /"str"/],
    symbol: [:sym, /:sym\b/],
    array: [[1], /\[1\]/],
    hash: [{ a: 1 }, /\{:a=>1\}/],
    object: [Object.new.freeze, /#<Object/],
    negative: [-1, /-1\b/],
    nan: [Float::NAN, /NaN/],
    infinity: [Float::INFINITY, /Infinity|\binf\b/],
    binary: ["\xff".b.freeze, /\\xFF/],
    invalid_utf8: ["\xff".dup.force_encoding("UTF-8").freeze, /\\xFF/],
    deep: [DEEP, /\[\[\[\[|nests deeper than 100 levels/],
    huge: [HUGE, /x{32}|\d{7,} bytes/]
  }.freeze

  # Task ids that must never name anything but one directory in the store.
  HOSTILE_IDS = {
    "id ../x": ["../x", %r{"\.\./x"}],
    "id /etc/passwd": ["/etc/passwd", %r{"/etc/passwd"}],
    "id a/b": ["a/b", %r{"a/b"}],
    "id empty": ["", /""/],
    "id .": [".", /"\."/],
    "id ..": ["..", /"\.\."/],
    "id x NUL y": ["x\0y", /"x\\0y"|"x\\u0000y"/],
    "id 256 bytes": ["y" * 256, /256 bytes/],
    "id .hidden": [".hidden", /"\.hidden"/],
    "id index.json": ["index.json", /"index\.json"/],
    "id NUL in SQL": ["x\0'; DROP TABLE checkpoints; --", /"x\\0'; DROP TABLE checkpoints; --"|"x\\u0000'/]
  }.merge(SqlLookalikes::IDS.to_h { |id| [:"id #{id}", [id, /#{Regexp.escape(id.inspect)}/]] }).freeze
  SQL_IDS = SqlLookalikes::IDS.map { |id| :"id #{id}" }.freeze # valid names: spec/support/sql_lookalikes.rb
  # Hostile ids that still slugify to a name (Queue names, task descriptions): those with a letter or digit.
  SLUGGABLE = HOSTILE_IDS.select { |_, (id, _)| id.match?(/[[:alnum:]]/) }.keys.freeze
  SQL_TEXT = SqlLookalikes::TEXT
  SQL_DATA = SqlLookalikes::DATA

  # What each kind of argument must do with each value: the values listed
  # under a kind's outcome; ARG for every other value.
  KINDS = {
    task_id: { OK => %i[string symbol] + SQL_IDS }, # a Symbol names its task, like a String
    path: { OK => %i[nil string] }, # past PATH_MAX it is refused before the file system is asked
    seconds: { OK => %i[nil integer float], OK_OR_ARG => %i[big_integer] },
    count: { OK => %i[nil integer] },
    positive_count: { OK => %i[integer] },
    fraction: {},
    boolean: {},
    callable: { OK => %i[nil] },
    logger: { OK => %i[nil] },
    budget: { OK => %i[nil integer float] },
    queue_budget: { OK => %i[nil integer float], OK_OR_ARG => %i[big_integer] },
    money: { OK => %i[integer float] },
    data: { OK => %i[nil integer float string symbol array hash negative huge] },
    message: { OK => %i[nil string symbol huge] },
    # checkpoint_error runs in rescue blocks: it records whatever it is given
    # (what is not plain data by its inspect) and never raises because of it
    recorded: { OK => VALUES.keys },
    number: { OK => %i[nil], NOT_FOUND => %i[integer] }, # the seeded task has checkpoints 1 and 2
    read_number: { NOT_FOUND => %i[integer] },
    items: { OK => %i[integer] },
    progress: { OK => %i[nil integer] },
    duration: { OK => %i[nil integer float], OK_OR_ARG => %i[big_integer] },
    keep_failed: { OK => %i[nil] }, # nil: the configured keep_failed
    flag: {},
    document: { OK => %i[hash] },
    queue_name: { OK => %i[nil string symbol huge] + SLUGGABLE }, # nil: named after the program
    description: { OK => %i[string huge] + SLUGGABLE }
  }.freeze

  # The kinds of argument that accept a String, and so get the huge one.
  STRING_KINDS = %i[task_id path message data recorded duration queue_name description].freeze

  def self.outcome(kind, label)
    found = KINDS.fetch(kind).find { |_, labels| labels.include?(label) }
    found ? found.first : ARG
  end

  # One argument of one method. `value_for` overrides the kind's outcome for
  # some values; `huge` is the big String this row gets.
  Row = Struct.new(:target, :argument, :kind, :names, :call, :ids, :defects, :value_for, :huge, keyword_init: true)

  # A queue records a task's exception as that task's failure and goes on;
  # here it is raised again, so a value the queue took but could not use shows.
  class TaskFailed < StandardError; end

  def self.check_queue(queue)
    failed = queue.failed
    raise TaskFailed, "task #{failed.first.name} failed: #{failed.first.error}" unless failed.empty?

    queue
  end

  ROWS = [] # rubocop:disable Style/MutableConstant -- filled by the table below
  def self.row(target, argument, kind, names:, ids: false, defects: {}, value_for: {}, huge: HUGE, &call)
    ROWS << Row.new(target: target, argument: argument, kind: kind, names: names, call: call, ids: ids,
                    defects: defects, value_for: value_for, huge: huge)
  end

  S = MASTER::SessionRecovery
  P = MASTER::SessionPersistence
  Q = MASTER::Queue

  # Defects the matrix found, one line each; the same text marks every case it
  # causes as pending. All fixed (see RELIABILITY.md); kept as nil so a new
  # defect can be marked the same way.
  MESSAGE_EMBEDS_VALUE = nil # Ruby-side messages showed the whole inspect of the value
  DIR_ENCODING = nil         # a binary/invalid-UTF-8 checkpoint_dir raised EncodingError
  DURATION_PANIC = nil       # 2**70 seconds panicked in Rust's Duration::from_secs_f64
  STRIP_INVALID = nil        # invalid UTF-8 failed inside String#strip / #unicode_normalize
  SLUG_BINARY = nil          # a binary String failed in unicode_normalize
  NAME_TO_S = nil            # Queue.new(name:) took any object through to_s
  QUEUE_DIR_LATE = nil       # Queue.new accepted a checkpoint_dir that process then refused
  HUGE_PATH = nil            # an over-long checkpoint_dir repeated 1 MB in the StoreError
  LATE_VALIDATION = nil      # Queue took 2**70 that its sessions then refused at run time
  NAME_NIL = nil             # Queue.new(name: nil) showed "" instead of nil

  path_defects = { binary: DIR_ENCODING, invalid_utf8: DIR_ENCODING, deep: MESSAGE_EMBEDS_VALUE, huge: HUGE_PATH }.freeze
  option_defects = { deep: MESSAGE_EMBEDS_VALUE, huge: MESSAGE_EMBEDS_VALUE }.freeze
  duration_defects = { big_integer: DURATION_PANIC, invalid_utf8: STRIP_INVALID, deep: MESSAGE_EMBEDS_VALUE,
                       huge: MESSAGE_EMBEDS_VALUE }.freeze

  # --- SessionRecovery.new ------------------------------------------------
  row("SessionRecovery.new", "task_id:", :task_id, names: /\btask_id\b/) { |_, v| S.new(task_id: v).checkpoint(progress: 1) }
  row("SessionRecovery.new", "budget:", :budget, names: /\bbudget\b/) do |_, v|
    S.new(task_id: "task", budget: v).checkpoint(progress: 3)
  end
  {
    checkpoint_dir: [:path, { binary: nil, invalid_utf8: nil, deep: MESSAGE_EMBEDS_VALUE, huge: HUGE_PATH }],
    checkpoint_interval: [:seconds, option_defects.merge(big_integer: DURATION_PANIC)],
    checkpoint_on_items: [:count, option_defects], max_checkpoints: [:count, option_defects],
    warn_threshold: [:fraction, option_defects], auto_resume: [:boolean, option_defects],
    max_retries: [:positive_count, option_defects], on_checkpoint: [:callable, option_defects],
    on_resume: [:callable, option_defects], on_complete: [:callable, option_defects],
    logger: [:logger, option_defects], enabled: [:boolean, option_defects],
    track_costs: [:boolean, option_defects], async: [:boolean, option_defects]
  }.each do |option, (kind, defects)|
    row("SessionRecovery.new", "#{option}:", kind, names: /\b#{option}\b/, defects: defects.compact) do |_, v|
      S.new(task_id: "task", option => v).checkpoint(progress: 3)
    end
  end

  # --- SessionRecovery instance methods -------------------------------------
  row("SessionRecovery#checkpoint", "data:", :data, names: /\bdata\b/) { |s, v| s.checkpoint(data: v) }
  row("SessionRecovery#checkpoint", "message:", :message, names: /\bmessage\b/) { |s, v| s.checkpoint(message: v) }
  row("SessionRecovery#checkpoint", "progress:", :progress, names: /\bprogress\b/) { |s, v| s.checkpoint(progress: v) }
  row("SessionRecovery#checkpoint", "items_total:", :progress, names: /\bitems_total\b/) { |s, v| s.checkpoint(items_total: v) }
  row("SessionRecovery#restore", "n", :number, names: /\bcheckpoint\b/) { |s, v| s.restore(v) }
  row("SessionRecovery#tick", "items", :items, names: /\bitems\b/) { |s, v| s.tick(v) }
  row("SessionRecovery#checkpoint_error", "error", :recorded, names: /\berror\b/) { |s, v| s.checkpoint_error(v) }
  row("SessionRecovery#checkpoint_error", "item", :recorded, names: /\bitem\b/) do |s, v|
    s.checkpoint_error(RuntimeError.new("boom"), v)
  end
  row("SessionRecovery#checkpoint_error", "context:", :recorded, names: /\bcontext\b/) do |s, v|
    s.checkpoint_error(RuntimeError.new("boom"), "item", context: v)
  end
  row("SessionRecovery#rollback", "to_checkpoint:", :number, names: /\bto_checkpoint\b/) { |s, v| s.rollback(to_checkpoint: v) }
  row("SessionRecovery#track_cost", "amount", :money, names: /\bamount\b/) { |s, v| s.track_cost(v) }
  row("SessionRecovery#increase_budget", "amount", :money, names: /\bamount\b/) { |s, v| s.increase_budget(v) }

  # --- SessionRecovery.cleanup ----------------------------------------------
  row("SessionRecovery.cleanup", "older_than:", :duration, names: /\bolder_than\b/, defects: duration_defects) do |_, v|
    S.cleanup(older_than: v)
  end
  row("SessionRecovery.cleanup", "keep_failed:", :keep_failed, names: /\bkeep_failed\b/, defects: option_defects) do |_, v|
    S.cleanup(older_than: 86_400, keep_failed: v)
  end
  row("SessionRecovery.cleanup", "keep_completed:", :flag, names: /\bkeep_completed\b/, defects: option_defects) do |_, v|
    S.cleanup(older_than: 86_400, keep_completed: v)
  end
  row("SessionRecovery.cleanup", "checkpoint_dir:", :path, names: /\bcheckpoint_dir\b/, defects: path_defects) do |_, v|
    S.cleanup(older_than: 86_400, checkpoint_dir: v)
  end

  # --- SessionPersistence ---------------------------------------------------
  task_names = /\b(task_id|checkpoint_id|task)\b/
  row("SessionPersistence.save", "checkpoint_id", :task_id, names: task_names) { |_, v| P.save(v, { state: { n: 1 } }) }
  row("SessionPersistence.save", "data (the document)", :document, names: /\bdata\b/) { |_, v| P.save("task", v) }
  row("SessionPersistence.save", "data[:state]", :data, names: /\bdata\b/) { |_, v| P.save("task", { state: v }) }
  %i[load summary checkpoints remove].each do |method|
    row("SessionPersistence.#{method}", "checkpoint_id", :task_id, names: task_names, ids: true) do |_, v|
      P.public_send(method, v)
    end
  end
  row("SessionPersistence.read", "task_id", :task_id, names: task_names, ids: true,
                                                      value_for: { string: NOT_FOUND, symbol: NOT_FOUND,
                                                                   **SQL_IDS.to_h { |id| [id, NOT_FOUND] } }) { |_, v| P.read(v, 1) }
  row("SessionPersistence.read", "number", :read_number, names: /\bcheckpoint\b/) { |_, v| P.read("task", v) }
  {
    save: ->(dir) { P.save("task", { state: { n: 1 } }, checkpoint_dir: dir) },
    load: ->(dir) { P.load("task", checkpoint_dir: dir) },
    list: ->(dir) { P.list(checkpoint_dir: dir) },
    summary: ->(dir) { P.summary("task", checkpoint_dir: dir) },
    checkpoints: ->(dir) { P.checkpoints("task", checkpoint_dir: dir) },
    read: ->(dir) { P.read("task", 1, checkpoint_dir: dir) },
    remove: ->(dir) { P.remove("task", checkpoint_dir: dir) },
    cleanup: ->(dir) { P.cleanup(older_than: 86_400, checkpoint_dir: dir) }
  }.each do |method, call|
    # read in another (empty) store finds no checkpoint 1 of "task"
    value_for = method == :read ? { nil: OK, string: NOT_FOUND } : {}
    row("SessionPersistence.#{method}", "checkpoint_dir:", :path, names: /\bcheckpoint_dir\b/, defects: path_defects,
                                                                  value_for: value_for) { |_, v| call.call(v) }
  end
  row("SessionPersistence.cleanup", "older_than:", :duration, names: /\bolder_than\b/, defects: duration_defects) do |_, v|
    P.cleanup(older_than: v)
  end

  # --- MASTER::Queue --------------------------------------------------------
  # Each call runs the queue, so a value accepted at new is used for real.
  run_queue = lambda do |queue|
    queue.add("job") { |task| task.checkpoint(progress: 1) }
    BadInputMatrix.check_queue(queue.process)
  end
  row("Queue.new", "budget:", :queue_budget, names: /\bbudget\b/, defects: { deep: MESSAGE_EMBEDS_VALUE }) do |_, v|
    run_queue.call(Q.new(budget: v, name: "q"))
  end
  row("Queue.new", "name:", :queue_name, names: /\bname\b/, ids: true, huge: LARGE, defects: {
        nil: NAME_NIL, integer: NAME_TO_S, float: NAME_TO_S, big_integer: NAME_TO_S, array: NAME_TO_S, hash: NAME_TO_S,
        negative: NAME_TO_S, nan: NAME_TO_S, infinity: NAME_TO_S, deep: MESSAGE_EMBEDS_VALUE, object: SLUG_BINARY,
        binary: SLUG_BINARY, invalid_utf8: STRIP_INVALID
      }) { |_, v| run_queue.call(Q.new(name: v)) }
  {
    checkpoint_dir: [:path, { binary: QUEUE_DIR_LATE, invalid_utf8: QUEUE_DIR_LATE, deep: MESSAGE_EMBEDS_VALUE,
                              huge: HUGE_PATH }],
    checkpoint_interval: [:seconds, option_defects.merge(big_integer: DURATION_PANIC)],
    checkpoint_on_items: [:count, option_defects.merge(big_integer: LATE_VALIDATION)], auto_resume: [:boolean, option_defects],
    resume_on_start: [:boolean, option_defects], handle_signals: [:boolean, option_defects],
    logger: [:logger, option_defects]
  }.each do |option, (kind, defects)|
    # an over-long checkpoint_dir is only opened when the queue first saves
    value_for = {} # a huge checkpoint_dir is refused up front, like any bad path
    row("Queue.new", "#{option}:", kind, names: /\b#{option}\b/, defects: defects, value_for: value_for) do |_, v|
      run_queue.call(Q.new(name: "q", option => v))
    end
  end
  row("Queue#add", "description", :description, names: /\bdescription\b/, ids: true, huge: LARGE,
                                                defects: { binary: SLUG_BINARY, invalid_utf8: STRIP_INVALID,
                                                           deep: MESSAGE_EMBEDS_VALUE }) do |queue, v|
    queue.add(v) { |task| task.checkpoint(progress: 1) }
    BadInputMatrix.check_queue(queue.process)
  end
  row("Queue#add", "budget:", :budget, names: /\bbudget\b/, defects: {
        big_integer: LATE_VALIDATION, deep: MESSAGE_EMBEDS_VALUE
      }) do |queue, v|
    queue.add("job", budget: v) { |task| task.checkpoint(progress: 1) }
    BadInputMatrix.check_queue(queue.process)
  end

  # Unknown keyword options, one per method that takes keywords.
  UNKNOWN_KEYWORDS = {
    "SessionRecovery.new" => ->(_) { S.new(task_id: "task", bogus: 1) },
    "SessionRecovery#checkpoint" => ->(s) { s.checkpoint(progress: 3, bogus: 1) },
    "SessionRecovery#checkpoint_error" => ->(s) { s.checkpoint_error(RuntimeError.new("x"), bogus: 1) },
    "SessionRecovery#rollback" => ->(s) { s.rollback(bogus: 1) },
    "SessionRecovery.cleanup" => ->(_) { S.cleanup(older_than: 0, bogus: 1) },
    "SessionPersistence.save" => ->(_) { P.save("task", {}, bogus: 1) },
    "SessionPersistence.load" => ->(_) { P.load("task", bogus: 1) },
    "SessionPersistence.list" => ->(_) { P.list(bogus: 1) },
    "SessionPersistence.summary" => ->(_) { P.summary("task", bogus: 1) },
    "SessionPersistence.checkpoints" => ->(_) { P.checkpoints("task", bogus: 1) },
    "SessionPersistence.read" => ->(_) { P.read("task", 1, bogus: 1) },
    "SessionPersistence.remove" => ->(_) { P.remove("task", bogus: 1) },
    "SessionPersistence.cleanup" => ->(_) { P.cleanup(older_than: 0, bogus: 1) },
    "Queue.new" => ->(_) { Q.new(name: "q", bogus: 1) },
    "Queue#add" => ->(q) { q.add("job", bogus: 1) }
  }.freeze

  # Pairs spec/bad_input_spec.rb covers already (same argument, same kind of value).
  DUPLICATES = [
    ["SessionRecovery.new", "task_id:", :nil], ["SessionRecovery.new", "task_id:", :integer],
    ["SessionRecovery#checkpoint", "data:", :deep], ["SessionRecovery#checkpoint", "progress:", :negative],
    ["SessionRecovery#checkpoint", "progress:", :float], ["SessionRecovery#tick", "items", :negative],
    ["SessionRecovery#track_cost", "amount", :nil], ["SessionRecovery#track_cost", "amount", :nan],
    ["SessionRecovery#track_cost", "amount", :negative]
  ].freeze
  # Hostile ids for SessionRecovery.new and SessionPersistence.save: bad_input_spec.rb "task ids".

  # --- bin/cli ------------------------------------------------------------
  # One command line per row: the exit status it must end with (2: the
  # command line is wrong, 1: the command cannot be done), what the one
  # stderr line must name, and what it must show of the bad value.
  CliRow = Struct.new(:label, :args, :status, :names, :shows, :defect, keyword_init: true)
  CLI_ROWS = [] # rubocop:disable Style/MutableConstant -- filled by the table below
  def self.cli(label, args, status, names, shows = nil, defect: nil)
    CLI_ROWS << CliRow.new(label: label, args: args, status: status, names: names, shows: shows, defect: defect)
  end

  # The kernel refuses one argv string over 128 KiB (MAX_ARG_STRLEN), so the
  # CLI's "huge string" is the largest a command line can carry.
  ARGV_MAX = 131_000
  BAD = "\xff".b.freeze
  # Fixed CLI defects (see above for the convention).
  INVALID_ARGV = nil   # a non-UTF-8 argument failed naming neither flag nor value
  HUGE_AGE_PANIC = nil # --older-than 99999999999999999999d panicked in Rust
  INF_AGE = nil        # --older-than with 400 digits was an internal FloatDomainError
  EMPTY_FILE = nil     # migrate-config '' hid the empty FILE argument

  CREATE = %w[checkpoint create --task t].freeze
  RESUME = %w[checkpoint resume task].freeze
  MIGRATE = %w[checkpoint migrate-config].freeze

  cli "no command", [], 2, /missing command/
  cli "unknown command", %w[frobnicate], 2, /unknown command/, /"frobnicate"/
  cli "unknown global flag", %w[--bogus], 2, /invalid option/, /--bogus/
  cli "checkpoint without subcommand", %w[checkpoint], 2, /missing subcommand/
  cli "unknown subcommand", %w[checkpoint lst], 2, /unknown subcommand/, /"lst"/
  cli "subcommand not UTF-8", ["checkpoint", "x#{BAD}"], 2, /subcommand/, /\\xFF/, defect: INVALID_ARGV

  # --dir and unknown flags, for every subcommand that reads the store.
  { "create" => CREATE, "list" => %w[checkpoint list], "show" => %w[checkpoint show task], "resume" => RESUME,
    "clean" => %w[checkpoint clean], "remove" => %w[checkpoint remove task] }.each do |sub, line|
    cli "#{sub} --dir ''", [*line, "--dir", ""], 2, /--dir/, /needs a directory/
    cli "#{sub} --dir (no value)", [*line, "--dir"], 2, /--dir/, /missing argument/
    cli "#{sub} --dir a regular file", [*line, "--dir", "afile"], 1, /afile/, /not a directory/
    cli "#{sub} --dir not UTF-8", [*line, "--dir", "d#{BAD}"], 2, /--dir/, /\\xFF/, defect: INVALID_ARGV
    cli "#{sub} --bogus", [*line, "--bogus"], 2, /invalid option/, /--bogus/
  end

  # Hostile task ids for every subcommand that takes one (argv cannot carry a NUL byte).
  HOSTILE_IDS.each do |label, (id, shown)|
    next if id.include?("\0")

    valid = SQL_IDS.include?(label) # a valid name: no such task, and the store (task, other) unchanged
    cli "create --task #{label}", ["checkpoint", "create", "--task", id], 2, /task_id|--task/, shown unless valid
    %w[show resume remove].each do |sub|
      cli "#{sub} #{label}", ["checkpoint", sub, id], valid ? 1 : 2, valid ? /unknown task/ : /task_id|TASK/, shown
    end
  end

  cli "create without --task", %w[checkpoint create], 2, /--task/
  cli "create --task (no value)", %w[checkpoint create --task], 2, /--task/, /missing argument/
  cli "create --task not UTF-8", ["checkpoint", "create", "--task", "t#{BAD}"], 2, /task/, /\\xFF/, defect: INVALID_ARGV
  cli "create extra argument", [*CREATE, "extra"], 2, /unexpected argument/, /"extra"/
  cli "create --data not JSON", [*CREATE, "--data", "not json"], 2, /--data/, /not json/
  cli "create --data ''", [*CREATE, "--data", ""], 2, /--data/, /''/
  cli "create --data NaN", [*CREATE, "--data", '{"a": NaN}'], 2, /--data/, /NaN/
  cli "create --data 1e400", [*CREATE, "--data", '{"a": 1e400}'], 2, /data/, /inf/i
  cli "create --data 2**100", [*CREATE, "--data", "{\"a\": #{2**100}}"], 2, /data/, /#{2**100}/
  cli "create --data 10,000 levels", [*CREATE, "--data", "#{'[' * 10_000}#{']' * 10_000}"], 2, /--data/,
      /nesting of \d+ is too deep/
  cli "create --data string not UTF-8", [*CREATE, "--data", "{\"a\": \"#{BAD}\"}"], 2, /--data/, /\\xFF/,
      defect: INVALID_ARGV
  cli "create --progress -1", [*CREATE, "--progress", "-1"], 2, /progress/, /-1/
  cli "create --progress abc", [*CREATE, "--progress", "abc"], 2, /--progress/, /abc/
  cli "create --progress 1.5", [*CREATE, "--progress", "1.5"], 2, /--progress/, /1\.5/
  cli "create --progress 10**23", [*CREATE, "--progress", "9" * 23], 2, /progress/, /9{23}/
  cli "create --progress ''", [*CREATE, "--progress", ""], 2, /--progress/
  cli "create --items-total -5", [*CREATE, "--items-total", "-5"], 2, /items_total|--items-total/, /-5/
  cli "create --message not UTF-8", [*CREATE, "--message", "m#{BAD}"], 2, /message/, /\\xFF/, defect: INVALID_ARGV
  cli "show without TASK", %w[checkpoint show], 2, /TASK/
  cli "show two tasks", %w[checkpoint show task other], 2, /unexpected argument/, /"other"/
  cli "show unknown task", %w[checkpoint show nosuch], 1, /unknown task/, /"nosuch"/
  cli "show TASK not UTF-8", ["checkpoint", "show", "t#{BAD}"], 2, /task/, /\\xFF/, defect: INVALID_ARGV
  cli "resume without TASK", %w[checkpoint resume], 2, /TASK/
  cli "resume unknown task", %w[checkpoint resume nosuch], 1, /unknown task/, /"nosuch"/
  cli "resume --checkpoint -1", [*RESUME, "--checkpoint", "-1"], 2, /checkpoint/, /-1/
  cli "resume --checkpoint 0", [*RESUME, "--checkpoint", "0"], 2, /checkpoint/, /\b0\b/
  cli "resume --checkpoint abc", [*RESUME, "--checkpoint", "abc"], 2, /--checkpoint/, /abc/
  cli "resume --checkpoint 999 (absent)", [*RESUME, "--checkpoint", "999"], 1, /checkpoint/, /999/
  cli "resume --checkpoint 10**23", [*RESUME, "--checkpoint", "9" * 23], 2, /checkpoint/, /9{23}/
  cli "resume --latest with a TASK", %w[checkpoint resume --latest task], 2, /unexpected argument/, /"task"/
  ["", "abc", "-1d", "7x", "NaN", "Infinity"].each do |age|
    cli "clean --older-than #{age.inspect}", ["checkpoint", "clean", "--older-than", age], 2, /--older-than/,
        /#{Regexp.escape(age.inspect)}/
  end
  cli "clean --older-than 10**20 days", ["checkpoint", "clean", "--older-than", "#{'9' * 20}d"], 2, /older.than/,
      /9{20}/, defect: HUGE_AGE_PANIC
  cli "clean --older-than 400 digits", ["checkpoint", "clean", "--older-than", "#{'9' * 400}d"], 2, /older.than/,
      /9{20}|Infinity/, defect: INF_AGE
  cli "clean --older-than not UTF-8", ["checkpoint", "clean", "--older-than", "7#{BAD}"], 2, /--older-than/, /\\xFF/,
      defect: INVALID_ARGV
  cli "clean extra argument", %w[checkpoint clean now], 2, /unexpected argument/, /"now"/
  cli "remove without TASK", %w[checkpoint remove], 2, /TASK/
  cli "remove two tasks", %w[checkpoint remove task other], 2, /unexpected argument/, /"other"/
  cli "remove unknown task", %w[checkpoint remove nosuch], 1, /unknown task/, /"nosuch"/
  cli "migrate-config without FILE", MIGRATE, 2, /FILE/
  cli "migrate-config two files", [*MIGRATE, "a.yml", "b.yml"], 2, /unexpected argument/, /"b\.yml"/
  cli "migrate-config absent file", [*MIGRATE, "nosuch.yml"], 1, /cannot read/, /nosuch\.yml/
  cli "migrate-config ''", [*MIGRATE, ""], 2, /FILE/, /empty/, defect: EMPTY_FILE
  cli "migrate-config a directory", [*MIGRATE, "adir"], 1, /cannot read/, /adir/
  cli "migrate-config invalid YAML", [*MIGRATE, "bad.yml"], 2, /not valid YAML/, /bad\.yml/
  cli "migrate-config YAML not UTF-8", [*MIGRATE, "latin1.yml"], 2, /not valid YAML/, /latin1\.yml/
  cli "migrate-config without a session: section", [*MIGRATE, "other.yml"], 1, /no `session:` section/, /other\.yml/
  cli "migrate-config --dir (not one of its options)", [*MIGRATE, "--dir", "x", "other.yml"], 2, /invalid option/, /--dir/
  cli "migrate-config FILE not UTF-8", [*MIGRATE, "c#{BAD}.yml"], 2, /FILE|cannot read/, /\\xFF/, defect: INVALID_ARGV

  # Command lines that must work: the largest strings argv can carry.
  CLI_OK = {
    "create --data with a #{ARGV_MAX / 1000} KB string" => ["checkpoint", "create", "--task", "big", "--data",
                                                            "{\"s\": \"#{'x' * (ARGV_MAX - 20)}\"}"],
    "create --message of #{ARGV_MAX / 1000} KB" => ["checkpoint", "create", "--task", "big", "--message", "m" * ARGV_MAX],
    "create --data 42 (a bare JSON value)" => ["checkpoint", "create", "--task", "bare", "--data", "42"],
    "create --task of 255 bytes" => ["checkpoint", "create", "--task", "z" * 255],
    "create --task and --data that look like SQL" => ["checkpoint", "create", "--task", SQL_TEXT, "--data",
                                                      JSON.generate(SQL_DATA), "--message", SQL_TEXT]
  }.freeze
end

RSpec.describe "Bad input matrix" do
  m = BadInputMatrix

  def m
    BadInputMatrix
  end

  # The store every example starts from: task "task" (checkpoints 1 and 2,
  # budget 5.0) and task "other". Written once, copied for each example.
  before(:context) do
    @template_root = Dir.mktmpdir("master-matrix-template")
    @template = File.join(@template_root, ".master_checkpoints")
    seed = MASTER::SessionRecovery.new(task_id: "task", budget: 5.0, auto_resume: false, checkpoint_dir: @template,
                                       logger: nil)
    seed.checkpoint(progress: 1, items_total: 10, data: { step: 1 })
    seed.checkpoint(progress: 2, data: { step: 2 })
    MASTER::SessionPersistence.save("other", { state: { other: true } }, checkpoint_dir: @template)
  end

  after(:context) { FileUtils.rm_rf(@template_root) }

  def seed_store(dir = Dir.pwd)
    return FileUtils.cp_r(@template, dir, preserve: true) if StoreHelpers.file_store? || dir != Dir.pwd

    # A store of another kind: the same two tasks, written into it.
    seed = MASTER::SessionRecovery.new(task_id: "task", budget: 5.0, auto_resume: false, logger: nil)
    seed.checkpoint(progress: 1, items_total: 10, data: { step: 1 })
    seed.checkpoint(progress: 2, data: { step: 2 })
    MASTER::SessionPersistence.save("other", { state: { other: true } })
  end

  # Runs the block with the process's stderr (fd 2) going to a file: a Rust
  # panic prints there. Returns [result, error, what was printed].
  def capture_fd2
    saved = $stderr.dup
    Tempfile.create("matrix-stderr") do |file|
      $stderr.reopen(file)
      begin
        result = yield
      rescue StandardError, ScriptError => e
        error = e
      ensure
        $stderr.flush
        $stderr.reopen(saved)
        saved.close
      end
      return [result, error, File.read(file.path)]
    end
  end

  def describe_error(error)
    error ? "#{error.class}: #{error.message[0, 300]}" : "no error"
  end

  # A missing checkpoint is named by its task and number, a file-system
  # refusal by its path; other errors name the argument.
  def expect_error(error, expected, row_names, shown, value = nil)
    # Compared with ==: `case` would ask whether the class is an instance of itself.
    if expected == m::NOT_FOUND # rubocop:disable Style/CaseLikeIf
      row_names = /has no checkpoints?\b/
      shown = /#{Regexp.escape(value.to_s)}|#{Regexp.escape(value.to_s.inspect[1..-2])}/ # as given, or escaped
    elsif expected == m::STORE
      row_names = /#{Regexp.escape(value.to_s[0, 32])}/
    end
    if expected == m::ARG
      expect(error).to be_a(ArgumentError).or(be_a(TypeError)), "expected ArgumentError/TypeError; got #{describe_error(error)}"
    else
      expect(error).to be_a(expected), "expected #{expected}; got #{describe_error(error)}"
    end
    return unless error

    expect(error.message).to match(row_names), "the message does not name the argument: #{error.message[0, 300]}"
    expect(error.message).to match(shown), "the message does not show the value: #{error.message[0, 300]}" if shown
    expect(error.message.bytesize).to be <= m::MAX_MESSAGE, "the message is #{error.message.bytesize} bytes long"
  end

  # The receiver of a row's call, and the next valid call on it.
  def receiver(target)
    case target
    when /\ASessionRecovery#/ then MASTER::SessionRecovery.new(task_id: "task", budget: 5.0)
    when "Queue#add" then MASTER::Queue.new(name: "matrix")
    end
  end

  def expect_next_call_works(target, object)
    case target
    when /\ASessionRecovery#/
      state = object.checkpoint(progress: 7, data: { next: true }, message: "next")
      expect(state).to include(progress: 7, data: { next: true }), "the next checkpoint on the same session"
      expect(object.restore).to include(checkpoint: state[:checkpoint], data: { next: true })
    when "SessionRecovery.new"
      expect(MASTER::SessionRecovery.new(task_id: "task").checkpoint(progress: 7)[:progress]).to eq(7)
    when "Queue.new"
      queue = MASTER::Queue.new(name: "next")
      queue.add("next job") { |task| task.checkpoint(progress: 1) }
      expect(queue.process.completed.map(&:task_id)).to eq(["next-job"])
    when "Queue#add"
      object.add("next job") { |task| task.checkpoint(progress: 1) }
      expect(object.process.completed.map(&:task_id)).to include("next-job")
    else # the module methods
      number = MASTER::SessionPersistence.save("task", { state: { next: true } })
      expect(MASTER::SessionPersistence.load("task")).to include(sequence: number, state: { next: true })
    end
  end

  def run_case(row, label, value, shown, outcome)
    seed_store
    object = receiver(row.target)
    before = store_snapshot
    passwd = File.stat("/etc/passwd").mtime
    _, error, printed = capture_fd2 { instance_exec(object, value, &row.call) }
    aggregate_failures do
      expect(printed).to eq(""), "the library printed on stderr: #{printed[0, 500]}"
      case outcome
      when m::OK
        expect(error).to be_nil, "#{label} must be accepted; got #{describe_error(error)}"
      when m::OK_OR_ARG
        unless error.nil?
          expect_error(error, m::ARG, row.names, shown)
          expect(store_snapshot).to eq(before), "the store changed"
        end
      else
        expect_error(error, outcome, row.names, shown, value)
        expect(store_snapshot).to eq(before), "the store changed"
      end
      if m::SQL_IDS.include?(label) && row.target.start_with?("SessionPersistence.")
        expect(store_snapshot).to eq(before), "a call on task #{value.inspect} changed other tasks"
      end
      if label.to_s.start_with?("id ")
        beside = StoreHelpers.file_store? ? [".master_checkpoints"] : []
        expect(Dir.children(Dir.pwd)).to eq(beside), "something was written beside the store"
        expect(File.stat("/etc/passwd").mtime).to eq(passwd)
      end
      expect_next_call_works(row.target, object)
    end
  end

  describe "Ruby API" do
    m::ROWS.each do |row|
      describe "#{row.target} #{row.argument}" do
        values = m::VALUES.to_a
        values += m::HOSTILE_IDS.to_a if row.ids
        values.each do |label, (value, shown)|
          next if m::DUPLICATES.include?([row.target, row.argument, label])

          # A huge String only where a String is accepted (elsewhere "str" is the wrong type already).
          next if label == :huge && !m::STRING_KINDS.include?(row.kind)

          outcome = row.value_for.fetch(label) { m.outcome(row.kind, label) }
          value = (row.kind == :path ? m::LONG_PATH : row.huge) if label == :huge
          verdict = { m::OK => "works", m::OK_OR_ARG => "works or refuses it clearly" }.fetch(outcome, "refuses it clearly")
          it "#{label}: #{verdict}" do
            pending(row.defects[label]) if row.defects[label]
            run_case(row, label, value, shown, outcome)
          end
        end
      end
    end

    describe "unknown keyword options" do
      m::UNKNOWN_KEYWORDS.each do |target, call|
        it "#{target}(bogus: 1) raises ArgumentError naming :bogus, and nothing changes" do
          seed_store
          object = receiver(target)
          before = store_snapshot
          _, error, printed = capture_fd2 { call.call(object) }
          aggregate_failures do
            expect(printed).to eq("")
            expect(error).to be_a(ArgumentError), describe_error(error)
            expect(error&.message).to match(/:bogus\b/)
            expect(store_snapshot).to eq(before)
            expect_next_call_works(target, object)
          end
        end
      end
    end

    it "an invalid-UTF-8 error message is stored with U+FFFD, as valid UTF-8 (the one place bytes are replaced)" do
      seed_store
      session = MASTER::SessionRecovery.new(task_id: "task")
      state = session.checkpoint_error("bad \xff".b)
      expect(state[:error][:message]).to eq("bad \u{FFFD}")
      expect(File.read(checkpoint_file("task", state[:checkpoint]), encoding: "UTF-8")).to be_valid_encoding
    end
  end

  # Every store: SQL-looking ids and data are names and values like any
  # other. Each one's task holds exactly what was written to it, and the
  # seeded tasks ("task", "other") are byte-for-byte what they were.
  describe "task ids and data that look like SQL" do
    # What a reader sees of the given tasks: numbers, each checkpoint, summary.
    def tasks_as_read(*ids)
      ids.to_h do |id|
        numbers = MASTER::SessionPersistence.checkpoints(id)
        [id, [numbers, numbers.map { |n| MASTER::SessionPersistence.read(id, n) }, MASTER::SessionPersistence.summary(id)]]
      end
    end

    def cli(*args)
      out, err, status = Open3.capture3(RbConfig.ruby, File.expand_path("../bin/cli", __dir__), "checkpoint", *args)
      expect([status.exitstatus, err]).to eq([0, ""]), "bin/cli checkpoint #{args.first}: #{err}"
      out
    end

    m::SQL_IDS.each do |label|
      id = m::HOSTILE_IDS.fetch(label).first
      it "#{label}: every call reaches that task only, and its data comes back as given" do
        seed_store
        seeded = tasks_as_read("task", "other")
        session = MASTER::SessionRecovery.new(task_id: id, budget: 1.0)
        session.checkpoint(progress: 1, items_total: 3, data: m::SQL_DATA, message: m::SQL_TEXT)
        session.checkpoint_error(RuntimeError.new(m::SQL_TEXT), m::SQL_TEXT)
        second = session.checkpoint(progress: 2, data: m::SQL_DATA.merge(step: 2))
        aggregate_failures do
          expect(session.restore).to include(task_id: id, checkpoint: 3, progress: 2, data: m::SQL_DATA.merge(step: 2))
          expect(MASTER::SessionRecovery.new(task_id: id).progress).to eq(2)
          expect(MASTER::SessionPersistence.checkpoints(id)).to eq([1, 2, 3])
          expect(MASTER::SessionPersistence.read(id, 1)).to include(task_id: id, state: m::SQL_DATA, message: m::SQL_TEXT)
          expect(MASTER::SessionPersistence.read(id, 2)[:error]).to include(message: m::SQL_TEXT)
          expect(MASTER::SessionPersistence.load(id)).to include(sequence: second[:checkpoint])
          expect(MASTER::SessionPersistence.summary(id)).to include(task_id: id, latest_checkpoint: 3, checkpoints: 3)
          expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }).to contain_exactly("task", "other", id)
          expect(session.rollback[:data]).to eq(m::SQL_DATA)
          number = MASTER::SessionPersistence.save(id, { state: { "' OR '1'='1" => m::SQL_TEXT } })
          expect(MASTER::SessionPersistence.load(id)).to include(sequence: number, state: { "' OR '1'='1" => m::SQL_TEXT })
          if StoreHelpers.shared_store? # bin/cli is another process: the memory store is not there
            expect(JSON.parse(cli("resume", id))).to include("task_id" => id, "data" => { "' OR '1'='1" => m::SQL_TEXT })
            expect(cli("show", id).lines.first.chomp).to eq(id) # the seed's layout: the id, as it is
            expect(cli("list").lines.map(&:chomp)).to include(id)
          end
          expect(tasks_as_read("task", "other")).to eq(seeded), "another task changed"
          expect(MASTER::SessionPersistence.remove(id)).to be(true)
          expect(MASTER::SessionPersistence.checkpoints(id)).to eq([])
          expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }).to contain_exactly("task", "other")
          expect(tasks_as_read("task", "other")).to eq(seeded), "removing #{id.inspect} changed another task"
        end
      end
    end

    it "all of them side by side: each task holds its own, and removing one leaves the rest" do
      seed_store
      ids = m::SQL_IDS.map { |label| m::HOSTILE_IDS.fetch(label).first }
      ids.each { |id| MASTER::SessionRecovery.new(task_id: id).checkpoint(progress: 1, data: { id: id }) }
      seeded = tasks_as_read("task", "other")
      ids.each_with_index do |id, i|
        expect(MASTER::SessionPersistence.remove(id)).to be(true)
        rest = ids.drop(i + 1)
        expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }).to contain_exactly("task", "other", *rest)
        rest.each do |other|
          expect(MASTER::SessionRecovery.new(task_id: other, auto_resume: false).restore[:data]).to eq(id: other)
        end
        expect(tasks_as_read("task", "other")).to eq(seeded), "removing #{id.inspect} changed another task"
      end
    end

    it "a NUL byte: refused in a task id, kept in data, messages and errors" do
      seed_store
      expect { MASTER::SessionRecovery.new(task_id: "task\0'; DROP TABLE checkpoints; --") }
        .to raise_error(ArgumentError, /task_id .*NUL/)
      session = MASTER::SessionRecovery.new(task_id: "nul")
      session.checkpoint(data: { "k\0" => "v\0'; --" }, message: "m\0'; --")
      session.checkpoint_error(RuntimeError.new("e\0'; --"), "i\0")
      expect(MASTER::SessionPersistence.read("nul", 1)).to include(state: { "k\0" => "v\0'; --" }, message: "m\0'; --")
      expect(MASTER::SessionPersistence.read("nul", 2)[:error]).to include(message: "e\0'; --")
      expect(MASTER::SessionPersistence.summary("nul")).to include(latest_checkpoint: 2)
      expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }).to contain_exactly("task", "other", "nul")
    end
  end

  describe "bin/cli" do
    # Every command line runs in its own directory holding a copy of the
    # seeded store (plus a regular file, a directory and three YAML files to
    # point at), all at once before the examples, which then only look at
    # the results.
    before(:context) do
      @cli_root = Dir.mktmpdir("master-matrix-cli")
      env = ENV.keys.grep(/\AMASTER_/).to_h { |key| [key, nil] }
      cases = m::CLI_ROWS.map { |row| [row.label, row.args] } + m::CLI_OK.to_a
      jobs = Queue.new
      cases.each_with_index { |(label, args), index| jobs << [label, args, File.join(@cli_root, index.to_s)] }
      @cli_results = {}
      lock = Mutex.new
      workers = Array.new(4) do
        Thread.new do
          while (job = begin
            jobs.pop(true)
          rescue StandardError
            nil
          end)
            label, args, dir = job
            result = run_cli_case(dir, args, env)
            lock.synchronize { @cli_results[label] = result }
          end
        end
      end
      workers.each(&:join)
    end

    after(:context) { FileUtils.rm_rf(@cli_root) }

    def self.prepare_dir(dir, template)
      FileUtils.mkdir_p(dir)
      FileUtils.cp_r(template, dir, preserve: true)
      File.write(File.join(dir, "afile"), "a regular file\n")
      FileUtils.mkdir(File.join(dir, "adir"))
      File.write(File.join(dir, "bad.yml"), "session: [1\n")
      File.binwrite(File.join(dir, "latin1.yml"), "session:\n  checkpoint_dir: \"caf\xe9\"\n")
      File.write(File.join(dir, "other.yml"), "other: 1\n")
    end

    def dir_state(dir)
      [Dir.children(dir).sort, store_snapshot(File.join(dir, ".master_checkpoints"))]
    end

    # One process, killed if it outlives 60 s.
    def run_cli_case(dir, args, env)
      self.class.prepare_dir(dir, @template)
      before = dir_state(dir)
      out = err = status = nil
      Open3.popen3(env, RbConfig.ruby, "--disable-gems", File.expand_path("../bin/cli", __dir__), *args,
                   chdir: dir) do |stdin, stdout, stderr, thread|
        stdin.close
        readers = [Thread.new { stdout.read }, Thread.new { stderr.read }]
        unless thread.join(60)
          Process.kill(:KILL, thread.pid)
          thread.join
        end
        out, err = readers.map(&:value)
        status = thread.value
      end
      { out: out, err: err, status: status, unchanged: dir_state(dir) == before }
    end

    let(:backtrace) { /\.rb:\d+:in [`']|^\s+from |panicked at|stack backtrace|internal error|please report/i }

    m::CLI_ROWS.each do |row|
      it "#{row.label}: exit #{row.status}, one stderr line naming it, nothing written" do
        pending(row.defect) if row.defect
        run = @cli_results.fetch(row.label)
        err = run[:err].dup.force_encoding("BINARY")
        aggregate_failures do
          expect(run[:status].signaled?).to be(false), "killed by a signal: #{run[:status].inspect}"
          expect(run[:status].exitstatus).to eq(row.status), "exit status; stderr: #{err[0, 300]}"
          expect(run[:out]).to eq(""), "stdout: #{run[:out][0, 200]}"
          expect(err.lines.size).to eq(1), "stderr has #{err.lines.size} lines: #{err[0, 500]}"
          expect(err).to start_with("master: ")
          expect(err).not_to match(backtrace)
          expect(err).to match(row.names), "the message does not name the argument: #{err[0, 300]}"
          expect(err).to match(row.shows), "the message does not show the value: #{err[0, 300]}" if row.shows
          expect(err.bytesize).to be <= m::MAX_MESSAGE + 100
          expect(run[:unchanged]).to be(true), "the store or the directory changed"
        end
      end
    end

    m::CLI_OK.each_key do |label|
      it "#{label}: works (exit 0, no error output)" do
        run = @cli_results.fetch(label)
        expect([run[:status].exitstatus, run[:err]]).to eq([0, ""])
        expect(run[:out]).to start_with("Wrote checkpoint 1 of ")
      end
    end
  end
end
