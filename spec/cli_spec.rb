# frozen_string_literal: true

require "pty"

# What one bin/cli process printed and its exit status.
module CLISpec
  Run = Struct.new(:out, :err, :status)
  BIN = File.expand_path("../bin/cli", __dir__)
  EXE = File.expand_path("../exe/master", __dir__)
  CLISpec::SUBCOMMANDS = %w[create list show resume clean remove migrate migrate-config].freeze
end

# bin/cli as a user runs it: a real process in the example's directory, its
# stdout, stderr and exit status. To keep the suite fast, the processes skip
# RubyGems (bin/cli needs only the standard library: a third of the start-up
# time) and tables of cases run side by side; one example runs bin/cli
# through its #! line as a user would.
RSpec.describe "bin/cli checkpoint" do
  let(:one_error_line) { /\Amaster: [^\n]+\n\z/ }

  def cli(*args, env: {}, program: CLISpec::BIN, dir: Dir.pwd)
    other_processes!
    out, err, status = Open3.capture3(env, RbConfig.ruby, "--disable-gems", program, *args, chdir: dir)
    CLISpec::Run.new(out, err, status.exitstatus)
  end

  # Each command line in its own process, all at once.
  def cli_all(commands, env: {})
    commands.map { |args| Thread.new { cli(*args, env: env) } }.map(&:value)
  end

  # Runs bin/cli on a terminal; returns everything it printed.
  def cli_on_terminal(*args, env: {})
    other_processes!
    output = +""
    PTY.spawn(env, RbConfig.ruby, "--disable-gems", CLISpec::BIN, *args, chdir: Dir.pwd) do |reader, _writer, pid|
      begin
        reader.each_line { |line| output << line }
      rescue Errno::EIO
        nil # the child closed the terminal
      end
      Process.wait(pid)
    end
    output
  end

  # A one-line failure with this exit status and message (String: exact).
  def expect_failure(run, status, message, label)
    expect([run.status, run.out]).to eq([status, ""]), label
    expect(run.err).to match(one_error_line), label
    text = run.err.delete_prefix("master: ").chomp
    expect(text).to(message.is_a?(Regexp) ? match(message) : eq(message), label)
  end

  def save(task_id, timestamp: nil, status: "running", done: 0, total: nil, budget: nil, spent: 0.0, dir: nil)
    document = { status: status,
                 progress: { items_processed: done, items_total: total,
                             percentage: total && (total.zero? ? 100.0 : done * 100.0 / total) },
                 budget: { allocated: budget, spent: spent, remaining: budget && (budget - spent).round(2) },
                 state: { done: done } }
    document[:timestamp] = timestamp if timestamp
    MASTER::SessionPersistence.save(task_id, document, checkpoint_dir: dir)
  end

  # The two tasks of the seed's `bin/cli checkpoint list` example.
  def seed_store(dir = nil)
    save("extract-services", timestamp: "2024-02-05T22:15:00Z", status: "completed", done: 12, total: 12,
                             budget: 3.0, spent: 3.45, dir: dir)
    save("refactor-users-module", timestamp: "2024-02-05T23:30:00Z", done: 45, total: 100,
                                  budget: 5.0, spent: 2.13, dir: dir)
  end

  let(:seed_list) do
    <<~TEXT
      refactor-users-module
        Latest: 2024-02-05 23:30:00 (45% complete)
        Progress: [#########-----------] 45%
        Budget: $2.13 / $5.00

      extract-services
        Latest: 2024-02-05 22:15:00 (completed)
        Budget: $3.45 / $3.00
    TEXT
  end

  # Tasks of every kind and age, for clean.
  def mixed_store(dir = nil)
    save("old-running", timestamp: "2024-01-01T00:00:00Z", dir: dir)
    save("old-completed", timestamp: "2024-01-01T00:00:00Z", status: "completed", dir: dir)
    save("old-failed", timestamp: "2024-01-01T00:00:00Z", status: "failed", dir: dir)
    save("new-completed", status: "completed", dir: dir)
    save("new-running", dir: dir)
  end

  def task_ids(dir = store_dir)
    MASTER::SessionPersistence.list(checkpoint_dir: dir).map { |row| row[:task_id] }.sort
  end

  describe "--help" do
    it "explains every level with its usage and an example, on stdout, exit 0" do
      levels = [["--help"], ["-h"], ["help"], %w[checkpoint --help], %w[checkpoint -h]] +
               CLISpec::SUBCOMMANDS.map { |name| ["checkpoint", name, "--help"] }
      runs = cli_all(levels)
      aggregate_failures do
        levels.zip(runs).each do |args, run|
          expect([run.status, run.err]).to eq([0, ""]), args.join(" ")
          expect(run.out).to start_with("Usage: bin/cli checkpoint"), args.join(" ")
          expect(run.out).to match(%r{^Examples?:\n    bin/cli checkpoint }), args.join(" ")
        end
      end
      by_name = CLISpec::SUBCOMMANDS.zip(runs.last(CLISpec::SUBCOMMANDS.size).map(&:out)).to_h
      expect(by_name["create"]).to include("Usage: bin/cli checkpoint create --task T [--data JSON]",
                                           "--progress N", "--items-total N", "--message M", "--dir DIR", "--json")
      expect(by_name["resume"]).to include("TASK | --latest", "--checkpoint N")
      expect(by_name["clean"]).to include("--older-than AGE", "--completed", "--dry-run", "45s, 30m, 12h, 7d, 2w")
      expect(by_name["migrate-config"]).to include("FILE.bak")
      expect(by_name["migrate-config"]).not_to include("--dir")
      expect(runs[3].out).to include(*CLISpec::SUBCOMMANDS)
    end

    it "prints the version" do
      expect(cli("--version").to_a).to eq(["master #{MASTER::VERSION}\n", "", 0])
    end

    it "runs as an executable, and as the gem's `master` command naming itself so" do
      other_processes!
      out, err, status = Open3.capture3(CLISpec::BIN, "checkpoint", "list", chdir: Dir.pwd)
      expect([out, err, status.exitstatus]).to eq(["No checkpoints in #{store_dir}\n", "", 0])
      run = cli("checkpoint", "show", "nope", program: CLISpec::EXE)
      expect(run.err).to eq("master: unknown task \"nope\" in #{store_dir}; see master checkpoint list\n")
      expect(cli("--help", program: CLISpec::EXE).out).to start_with("Usage: master checkpoint SUBCOMMAND")
    end
  end

  describe "list" do
    it "prints the seed's layout, newest first, with a progress bar" do
      seed_store
      expect(cli("checkpoint", "list").to_a).to eq([seed_list, "", 0])
    end

    it "shows an item count without a total, failed tasks, and budgets without a limit" do
      # Newest first means written last (not the latest timestamp given).
      save("one-item", timestamp: "2024-02-06T08:00:00Z", done: 1)
      save("counting", timestamp: "2024-02-06T09:00:00Z", done: 45, spent: 0.75)
      save("broken", timestamp: "2024-02-06T10:00:00Z", status: "failed", done: 20, total: 100, budget: 1.0, spent: 0.5)
      expect(cli("checkpoint", "list").out).to eq(<<~TEXT)
        broken
          Latest: 2024-02-06 10:00:00 (failed)
          Progress: [####----------------] 20%
          Budget: $0.50 / $1.00

        counting
          Latest: 2024-02-06 09:00:00 (45 items)
          Budget: $0.75 (no limit)

        one-item
          Latest: 2024-02-06 08:00:00 (1 item)
          Budget: $0.00 (no limit)
      TEXT
    end

    it "rounds the percentage" do
      save("thirds", done: 2, total: 3)
      expect(cli("checkpoint", "list").out).to include("(67% complete)", "Progress: [#############-------] 67%")
    end

    it "says so when the store is empty, and creates nothing" do
      expect(cli("checkpoint", "list").to_a).to eq(["No checkpoints in #{store_dir}\n", "", 0])
      expect(store_empty?).to be(true)
    end

    it "--json gives the task summaries, times in ISO 8601" do
      seed_store
      rows = JSON.parse(cli("checkpoint", "list", "--json").out)
      expect(rows.map { |row| row["task_id"] }).to eq(%w[refactor-users-module extract-services])
      expect(rows.first).to include("status" => "running", "updated_at" => "2024-02-05T23:30:00Z",
                                    "budget" => { "allocated" => 5.0, "spent" => 2.13, "remaining" => 2.87 },
                                    "progress" => { "items_processed" => 45, "items_total" => 100, "percentage" => 45.0 })
      FileUtils.mkdir_p("empty")
      expect(JSON.parse(cli("checkpoint", "list", "--json", "--dir", "empty").out)).to eq([])
    end

    it "reads the store named by --dir, else the configured one" do
      files_only!("names its stores by directory")
      seed_store("elsewhere")
      save("from-config", dir: "configured")
      save("from-env", dir: "from-env")
      FileUtils.mkdir_p("config")
      File.write("config/session_recovery.yml", "session_recovery:\n  checkpoint_dir: configured\n")
      dir_flag, before_subcommand, config, env = [
        -> { cli("checkpoint", "list", "--dir", "elsewhere") },
        -> { cli("checkpoint", "--dir", "elsewhere", "list") },
        -> { cli("checkpoint", "list") },
        -> { cli("checkpoint", "list", env: { "MASTER_CHECKPOINT_DIR" => "from-env" }) }
      ].map { |run| Thread.new(&run) }.map(&:value)
      expect(dir_flag.out).to eq(seed_list)
      expect(before_subcommand.out).to eq(seed_list)
      expect(config.out).to start_with("from-config\n")
      expect(env.out).to start_with("from-env\n")
    end

    it "uses colour on a terminal only, and not when NO_COLOR is set" do
      seed_store
      coloured = cli_on_terminal("checkpoint", "list")
      expect(coloured).to include("\e[1mrefactor-users-module\e[0m", "(\e[32mcompleted\e[0m)", "\e[31m$3.45 / $3.00\e[0m")
      expect(coloured.gsub(/\e\[\d+m/, "").gsub("\r\n", "\n")).to eq(seed_list)
      expect(cli_on_terminal("checkpoint", "list", env: { "NO_COLOR" => "1" })).not_to include("\e[")
    end
  end

  describe "create" do
    it "writes the next checkpoint, carrying over what is not given" do
      session = MASTER::SessionRecovery.new(task_id: "current-task", budget: 5.0)
      session.track_cost(1.25)
      session.checkpoint(progress: 10, items_total: 100, data: { files: [] })
      run = cli("checkpoint", "create", "--task", "current-task", "--data", '{"progress": 50, "files": ["a.rb"]}',
                "--progress", "45", "--message", "by hand")
      expect(run.to_a).to eq(["Wrote checkpoint 2 of current-task (45/100, 45%) in #{store_dir}\n", "", 0])
      state = MASTER::SessionRecovery.new(task_id: "current-task").restore
      expect(state).to include(checkpoint: 2, progress: 45, items_total: 100, message: "by hand",
                               data: { progress: 50, files: ["a.rb"] },
                               budget: { allocated: 5.0, spent: 1.25, remaining: 3.75 })
    end

    it "starts a task, keeps the last data without --data, and gives the state with --json" do
      first = cli("checkpoint", "create", "--task", "fresh", "--data", '{"step": 1}', "--items-total", "4")
      expect(first.out).to eq("Wrote checkpoint 1 of fresh (0/4, 0%) in #{store_dir}\n")
      state = JSON.parse(cli("checkpoint", "create", "--task", "fresh", "--progress", "2", "--json").out)
      expect(state).to include("task_id" => "fresh", "checkpoint" => 2, "status" => "running", "progress" => 2,
                               "items_total" => 4, "percentage" => 50.0, "data" => { "step" => 1 })
      expect(Time.iso8601(state["timestamp"])).to be_within(60).of(Time.now)
      expect(checkpoint_files("fresh").size).to eq(2)
    end

    it "refuses when checkpointing is turned off, writing nothing" do
      FileUtils.mkdir_p("config")
      File.write("config/session_recovery.yml", "session_recovery:\n  enabled: false\n")
      run = cli("checkpoint", "create", "--task", "t", "--data", "{}")
      expect([run.status, run.out]).to eq([1, ""])
      expect(run.err).to eq("master: checkpointing is turned off (enabled: false in the configuration); nothing was written\n")
      expect(store_empty?).to be(true)
    end
  end

  describe "show" do
    before do
      session = MASTER::SessionRecovery.new(task_id: "job", budget: 2.0)
      session.track_cost(0.5)
      session.checkpoint(progress: 10, items_total: 40, message: "first batch", data: { files: %w[a.rb b.rb] })
      session.checkpoint_error(RuntimeError.new("boom"), "c.rb")
      session.checkpoint(progress: 20, message: "second batch")
    end

    it "prints the summary and one line per checkpoint" do
      run = cli("checkpoint", "show", "job")
      expect([run.status, run.err]).to eq([0, ""])
      time = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/
      expect(run.out).to match(Regexp.new(<<~PATTERN.chomp.gsub("TIME", time.source)))
        \\Ajob
          Latest: TIME \\(50% complete\\)
          Progress: \\[##########----------\\] 50%
          Budget: \\$0\\.50 / \\$2\\.00
          Status: running; 3 checkpoints \\(latest #3, latest good #3\\); 0 failures, 0 retries
          Message: second batch
          Files: #{Regexp.escape(task_dir('job'))}

          #     Time                 Status     Progress         Message
          1     TIME  running    10/40, 25%       first batch
          2     TIME  failed     10/40, 25%       RuntimeError: boom
          3     TIME  running    20/40, 50%       second batch
        \\z
      PATTERN
    end

    it "shows a damaged checkpoint as damaged, and still succeeds" do
      corrupt_checkpoint("job", 1)
      run = cli("checkpoint", "show", "job")
      expect([run.status, run.err]).to eq([0, ""])
      expect(run.out).to match(/^  1     damaged: checksum mismatch: the file says \h+, its contents give \h+$/)
      expect(run.out).to match(/^  3     \S+ \S+  running    20/)
      entries = JSON.parse(cli("checkpoint", "show", "job", "--json").out)["checkpoints"]
      expect(entries.map { |entry| [entry["number"], entry["damaged"]] }).to eq([[1, true], [2, false], [3, false]])
    end

    it "shows a task whose every checkpoint is damaged" do
      (1..3).each { |n| truncate_checkpoint("job", n) }
      run = cli("checkpoint", "show", "job")
      expect([run.status, run.err]).to eq([0, ""])
      expect(run.out).to include("No intact checkpoint: every file is damaged; `bin/cli checkpoint remove job` deletes them.")
      expect(run.out.scan(/^  \d     damaged: /).size).to eq(3)
    end

    it "--json gives the summary and the checkpoints" do
      shown = JSON.parse(cli("checkpoint", "show", "job", "--json").out)
      expect(shown).to include("task_id" => "job", "directory" => task_dir("job"))
      # The failure is behind the task: checkpoint 3 moved it on (SPEC: retries).
      expect(shown["summary"]).to include("status" => "running", "checkpoints" => 3, "failures" => 0)
      expect(shown["checkpoints"][1]).to include("number" => 2, "status" => "failed",
                                                 "error" => include("class" => "RuntimeError", "item" => "c.rb"))
      expect(shown["checkpoints"].map { |entry| entry["timestamp"] }).to all(match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/))
    end
  end

  describe "resume" do
    before do
      seed_store
      save("refactor-users-module", timestamp: "2024-02-05T23:45:00Z", done: 50, total: 100, budget: 5.0, spent: 2.5)
    end

    it "prints the restored state as JSON, writing nothing" do
      before = store_snapshot
      task, latest, numbered, one_line = cli_all([%w[checkpoint resume extract-services],
                                                  %w[checkpoint resume --latest],
                                                  %w[checkpoint resume refactor-users-module --checkpoint 1],
                                                  %w[checkpoint resume --latest --json]])
      expect(JSON.parse(task.out)).to include("task_id" => "extract-services", "status" => "completed",
                                              "progress" => 12, "data" => { "done" => 12 },
                                              "timestamp" => "2024-02-05T22:15:00Z")
      expect(task.out.lines.size).to be > 1
      expect(JSON.parse(latest.out)).to include("task_id" => "refactor-users-module", "checkpoint" => 2, "progress" => 50)
      expect(JSON.parse(numbered.out)).to include("checkpoint" => 1, "progress" => 45,
                                                  "budget" => { "allocated" => 5.0, "spent" => 2.13, "remaining" => 2.87 })
      expect(one_line.out.lines.size).to eq(1)
      expect(JSON.parse(one_line.out)).to eq(JSON.parse(latest.out))
      expect([task, latest, numbered, one_line].map { |run| [run.status, run.err] }.uniq).to eq([[0, ""]])
      expect(store_snapshot).to eq(before)
    end

    it "skips a damaged latest checkpoint, warning on stderr" do
      corrupt_checkpoint("refactor-users-module", 2)
      run = cli("checkpoint", "resume", "refactor-users-module")
      expect(JSON.parse(run.out)).to include("checkpoint" => 1, "progress" => 45)
      expect(run.err).to match(/\Amaster: warn: .*skipping damaged checkpoint 2 .*checksum mismatch/)
    end
  end

  describe "clean" do
    before { mixed_store }

    it "--older-than removes the tasks last checkpointed before then, keeping failed ones" do
      run = cli("checkpoint", "clean", "--older-than", "7d")
      expect(run.to_a).to eq([<<~TEXT, "", 0])
        Removed 2 tasks from #{store_dir} (tasks last checkpointed more than 7d ago, except failed ones):
          old-completed
          old-running
      TEXT
      expect(task_ids).to eq(%w[new-completed new-running old-failed])
    end

    it "--completed removes the completed tasks of any age" do
      run = cli("checkpoint", "clean", "--completed")
      expect(run.out).to eq(<<~TEXT)
        Removed 2 tasks from #{store_dir} (completed tasks of any age):
          new-completed
          old-completed
      TEXT
      expect(task_ids).to eq(%w[new-running old-failed old-running])
    end

    it "with no flag applies the configured retention" do
      expect(cli("checkpoint", "clean").out).to start_with("Removed 1 task from #{store_dir} " \
                                                           "(the configured retention: completed tasks older than 7 days):\n")
      expect(task_ids).to eq(%w[new-completed new-running old-failed old-running])
      FileUtils.mkdir_p("config")
      File.write("config/session_recovery.yml", "session_recovery:\n  keep_failed: false\n")
      expect(cli("checkpoint", "clean", "--json").out).to eq(
        "#{JSON.generate(store: store_dir, dry_run: false, removed: ['old-failed'])}\n"
      )
    end

    it "--dry-run names exactly what the real run removes, and removes nothing" do
      modes = [[], %w[--older-than 7d], %w[--completed], %w[--completed --older-than 30d], %w[--older-than 0s]]
      modes.each_index { |i| mixed_store("store-#{i}") }
      before = modes.each_index.map { |i| store_snapshot("store-#{i}") }
      dry = cli_all(modes.each_with_index.map do |mode, i|
                      ["checkpoint", "clean", "--dry-run", "--json", "--dir", "store-#{i}", *mode]
                    end)
      expect(modes.each_index.map { |i| store_snapshot("store-#{i}") }).to eq(before)
      real = cli_all(modes.each_with_index.map { |mode, i| ["checkpoint", "clean", "--json", "--dir", "store-#{i}", *mode] })
      predicted = dry.map { |run| JSON.parse(run.out) }
      removed = real.map { |run| JSON.parse(run.out) }
      expect(predicted.map { |result| result["dry_run"] }).to all(be(true))
      expect(predicted.map { |result| result["removed"] }).to eq(removed.map { |result| result["removed"] })
      expect(removed.map { |result| result["removed"].size }).to eq([1, 2, 2, 1, 4])
      text = cli("checkpoint", "clean", "--completed", "--dry-run")
      expect(text.out).to eq("Would remove 2 tasks from #{store_dir} (completed tasks of any age):\n  new-completed\n  old-completed\n")
      expect(cli("checkpoint", "clean", "--dry-run", "--dir", "store-0").out).to start_with("Nothing would be removed from")
    end

    it "takes ages in seconds, minutes, hours, days and weeks" do
      runs = cli_all(%w[45s 30m 12h 7d 2w 1.5d].map { |age| ["checkpoint", "clean", "--older-than", age, "--dry-run"] })
      expect(runs.map(&:status)).to eq([0] * 6)
      expect(runs.map { |run| run.out.lines.size }).to eq([3, 3, 3, 3, 3, 3])
    end

    it "says when there is nothing to clean" do
      expect(cli("checkpoint", "clean", "--older-than", "1000w").out).to eq(
        "Nothing to clean in #{store_dir} (tasks last checkpointed more than 1000w ago, except failed ones)\n"
      )
    end

    it "shows its progress on stderr when that is a terminal" do
      output = cli_on_terminal("checkpoint", "clean", "--completed")
      expect(output).to include("\rmaster: cleaning #{store_dir}: removed 0 of 2 tasks",
                                "\rmaster: cleaning #{store_dir}: removed 2 of 2 tasks\r\e[K")
      expect(cli("checkpoint", "clean", "--older-than", "7d").err).to eq("")
    end
  end

  describe "rough edges (issue 8)" do
    it "says a --dir that does not exist is not a store, instead of listing nothing" do
      %w[list show resume clean remove].each do |command|
        args = ["checkpoint", command, *(%w[show resume remove].include?(command) ? ["t"] : []), "--dir", "/typo"]
        args += %w[--older-than 1d] if command == "clean"
        run = cli(*args)
        expect_failure(run, 1, "there is no checkpoint store at /typo (--dir /typo): check the path", command)
      end
      expect(cli("checkpoint", "list").out).to eq("No checkpoints in #{store_dir}\n")
    end

    it "shows messages with newlines and terminal escapes as text, never obeying them" do
      session = MASTER::SessionRecovery.new(task_id: "job")
      session.checkpoint(message: "line one\nline two \e[2J\e]0;pwned\a")
      shown = cli("checkpoint", "show", "job").out
      expect(shown).not_to include("\e")
      expect(shown).to include('line one\nline two \e[2J\e]0;pwned\a')
      expect(shown.lines.grep(/\Aline two/)).to eq([])
    end

    it "marks a checkpoint whose path is a directory, and shows the others" do
      session = MASTER::SessionRecovery.new(task_id: "job")
      2.times { |i| session.checkpoint(progress: i) }
      Dir.mkdir(checkpoint_file("job", 3))
      run = cli("checkpoint", "show", "job")
      expect(run.status).to eq(0), run.err
      expect(run.out).to match(/^  3     damaged: .*not a regular file/)
      expect(run.out).to match(/^  2     \S+ \S+  running/)
    end

    it "names the program as installed in --version at every level" do
      [%w[--version], %w[checkpoint --version], %w[checkpoint list --version]].each do |args|
        expect(cli(*args).out).to eq("master #{MASTER::VERSION}\n")
      end
    end

    it "keeps colour on a terminal when NO_COLOR is set but empty" do
      MASTER::SessionRecovery.new(task_id: "job").checkpoint(progress: 1)
      expect(cli_on_terminal("checkpoint", "list", env: { "NO_COLOR" => "" })).to include("\e[")
      expect(cli_on_terminal("checkpoint", "list", env: { "NO_COLOR" => "1" })).not_to include("\e[")
    end
  end

  describe "--dir" do
    it "points every subcommand at that store, leaving the configured one alone" do
      seed_store
      before = store_snapshot
      created = cli("checkpoint", "create", "--task", "side-job", "--progress", "3", "--dir", "other")
      expect(created.out).to eq("Wrote checkpoint 1 of side-job (3 items) in #{File.expand_path('other')}\n")
      shown, resumed, listed = cli_all([%w[checkpoint show side-job --dir other],
                                        %w[checkpoint resume side-job --dir other --json],
                                        %w[checkpoint list --dir other]])
      expect(shown.out).to start_with("side-job\n  Latest: ")
      expect(JSON.parse(resumed.out)).to include("task_id" => "side-job", "progress" => 3)
      expect(listed.out).to start_with("side-job\n")
      expect(cli("checkpoint", "clean", "--older-than", "0s", "--dir", "other").out).to include("  side-job")
      cli("checkpoint", "create", "--task", "side-job", "--dir", "other")
      expect(cli("checkpoint", "remove", "side-job", "--dir", "other").status).to eq(0)
      expect(task_ids(File.expand_path("other"))).to eq([])
      expect(store_snapshot).to eq(before)
    end
  end

  describe "remove" do
    it "removes a task and all its checkpoints" do
      seed_store
      save("extract-services")
      expect(cli("checkpoint", "remove", "extract-services").to_a).to eq(
        ["Removed extract-services and its 2 checkpoints from #{store_dir}\n", "", 0]
      )
      expect(File.exist?(task_dir("extract-services"))).to be(false)
      expect(JSON.parse(cli("checkpoint", "remove", "refactor-users-module", "--json").out)).to eq(
        "removed" => "refactor-users-module", "checkpoints" => 1, "store" => store_dir
      )
      expect(task_ids).to eq([])
    end
  end

  describe "migrate-config" do
    let(:old_config) do
      <<~YAML
        # Our settings, from pub2 days
        session:
          checkpoint_dir: ".checkpoints"   # the checkpoints are here
          checkpoint_interval: 120
          keep_successful: 3
      YAML
    end

    def write_old_config(path = "config/session_recovery.yml", text = old_config)
      FileUtils.mkdir_p(File.dirname(path))
      File.write(path, text)
      File.chmod(0o640, path)
      path
    end

    it "renames `session:` to `session_recovery:`, keeping every value and comment, with a backup" do
      path = write_old_config
      run = cli("checkpoint", "migrate-config", path)
      expect(run.to_a).to eq([<<~TEXT, "", 0])
        Migrated #{path}: `session:` is now `session_recovery:`; every value is kept (checkpoint_dir stays ".checkpoints", so existing checkpoints are still found).
        The old file is saved as #{path}.bak.
      TEXT
      expect(File.read(path)).to eq(old_config.sub("\nsession:", "\nsession_recovery:"))
      expect(File.read("#{path}.bak")).to eq(old_config)
      expect([File.stat(path).mode & 0o777, File.stat("#{path}.bak").mode & 0o777]).to eq([0o640, 0o640])
      expect(Dir.children("config").sort).to eq(%w[session_recovery.yml session_recovery.yml.bak])
    end

    it "leaves a file MASTER::Config loads with no deprecation warning, on the same store" do
      files_only!("names its store by checkpoint_dir in the config file")
      save("pub2-task", dir: ".checkpoints")
      path = write_old_config("old.yml")
      env = { "MASTER_CONFIG" => path }
      before = cli("checkpoint", "list", env: env)
      expect(before.err).to eq("master: warn: old.yml: the `session:` section is deprecated; rename it " \
                               "to `session_recovery:` (bin/cli checkpoint migrate-config old.yml does it for you)\n")
      expect(cli("checkpoint", "migrate-config", path).status).to eq(0)
      after = cli("checkpoint", "list", env: env)
      expect([after.out, after.err]).to eq([before.out, ""])
      expect(after.out).to start_with("pub2-task\n")

      ENV["MASTER_CONFIG"] = path
      expect(MASTER::Config.settings).to include(checkpoint_dir: ".checkpoints", checkpoint_interval: 120, keep_successful: 3)
      expect(MASTER.logger.warnings).to eq([])
    end

    it "never overwrites a backup" do
      path = write_old_config("settings.yml")
      File.write("settings.yml.bak", "keep me")
      expect(cli("checkpoint", "migrate-config", path).out).to include("The old file is saved as settings.yml.bak.1.")
      write_old_config(path)
      expect(JSON.parse(cli("checkpoint", "migrate-config", path, "--json").out)).to eq(
        "file" => path, "migrated" => true, "backup" => "settings.yml.bak.2", "comments_kept" => true,
        "checkpoint_dir" => ".checkpoints"
      )
      expect(File.read("settings.yml.bak")).to eq("keep me")
      expect([File.read("settings.yml.bak.1"), File.read("settings.yml.bak.2")]).to eq([old_config, old_config])
    end

    it "rewrites a file it cannot edit in place as plain YAML with the same values" do
      path = write_old_config("flow.yml", "{session: {checkpoint_dir: kept}, other: [1, 2]}\n")
      expect(cli("checkpoint", "migrate-config", path).out).to include("comments, if it had any, are only in the backup")
      expect(YAML.safe_load(File.read(path))).to eq("session_recovery" => { "checkpoint_dir" => "kept" }, "other" => [1, 2])
    end

    it "leaves a file already in the new form alone" do
      File.write("new.yml", "session_recovery:\n  checkpoint_dir: here\n")
      expect(cli("checkpoint", "migrate-config", "new.yml").to_a).to eq(
        ["new.yml already uses `session_recovery:`; nothing changed\n", "", 0]
      )
      expect(Dir.children(".").sort).to eq(["new.yml"])
    end

    it "fails with one line, writing nothing, on a missing, broken or unrelated file" do
      File.write("broken.yml", "session: [unclosed\n")
      File.write("unrelated.yml", "database:\n  host: db\n")
      File.write("both.yml", "session:\n  checkpoint_dir: a\nsession_recovery:\n  checkpoint_dir: b\n")
      before = Dir.children(".").sort
      cases = { "missing.yml" => [1, "cannot read missing.yml: No such file or directory"],
                "broken.yml" => [2, /\Abroken.yml is not valid YAML: .*line 1 column \d+\z/],
                "unrelated.yml" => [1, "unrelated.yml has no `session:` section to migrate (nor a `session_recovery:` one)"],
                "both.yml" => [1, /\Aboth.yml has both `session:` and `session_recovery:`; .*merge the two by hand\z/] }
      runs = cli_all(cases.keys.map { |file| ["checkpoint", "migrate-config", file] })
      aggregate_failures do
        cases.zip(runs).each { |(file, (status, message)), run| expect_failure(run, status, message, file) }
      end
      expect(Dir.children(".").sort).to eq(before)
    end
  end

  describe "errors" do
    before { seed_store }

    it "exits 2 for a wrong command line, with one line on stderr, writing nothing" do
      cases = {
        [] => "missing command; try bin/cli checkpoint list, or see bin/cli --help",
        %w[bogus] => "unknown command \"bogus\"; see bin/cli --help",
        %w[checkpoint] => "missing subcommand (create, list, show, resume, clean, remove, cancel, migrate, migrate-config); " \
                          "see bin/cli checkpoint --help",
        %w[checkpoint lst] => "unknown subcommand \"lst\" (did you mean list?); see bin/cli checkpoint --help",
        %w[checkpoint list --bogus] => "invalid option: --bogus; see bin/cli checkpoint list --help",
        %w[checkpoint list extra] => "unexpected argument \"extra\"; see bin/cli checkpoint list --help",
        %w[checkpoint list --dir] => "missing argument: --dir; see bin/cli checkpoint list --help",
        ["checkpoint", "list", "--dir", ""] => "--dir needs a directory; see bin/cli checkpoint list --help",
        %w[checkpoint show] => "missing TASK; see bin/cli checkpoint show --help",
        %w[checkpoint show a b] => "unexpected argument \"b\"; see bin/cli checkpoint show --help",
        %w[checkpoint show ../etc] => %r{task_id "../etc" contains '/'},
        %w[checkpoint remove] => "missing TASK; see bin/cli checkpoint remove --help",
        %w[checkpoint create --data {}] => "missing --task T; see bin/cli checkpoint create --help",
        %w[checkpoint create --task] => "missing argument: --task; see bin/cli checkpoint create --help",
        %w[checkpoint create --task t --data {bad] => /\A--data is not valid JSON \(unexpected token at '\{bad'\)/,
        %w[checkpoint create --task t --progress
           many] => "invalid argument: --progress many; see bin/cli checkpoint create --help",
        %w[checkpoint create --task t --progress -1] => "progress must not be negative; got -1 (Integer)",
        %w[checkpoint create --task t --data 1180591620717411303424] => /data is an Integer wider than 64 bits/,
        %w[checkpoint clean --older-than 7] => "bad duration \"7\" for --older-than; give a number and a unit: " \
                                               "45s, 30m, 12h, 7d or 2w (at most 100 years)",
        %w[checkpoint clean --older-than soon] => /\Abad duration "soon"/,
        %w[checkpoint resume] => "missing TASK (or --latest); see bin/cli checkpoint resume --help",
        %w[checkpoint resume t --latest] => "unexpected argument \"t\"; see bin/cli checkpoint resume --help",
        %w[checkpoint migrate-config] => "missing FILE; see bin/cli checkpoint migrate-config --help"
      }
      before = store_snapshot
      runs = cli_all(cases.keys)
      aggregate_failures do
        cases.zip(runs).each { |(args, message), run| expect_failure(run, 2, message, args.join(" ")) }
      end
      expect(store_snapshot).to eq(before)
    end

    it "exits 1 when the command cannot be done, with one line on stderr, writing nothing" do
      File.write("not-a-dir", "")
      FileUtils.mkdir_p("bad-config/config")
      File.write("bad-config/config/session_recovery.yml", "session_recovery:\n  checkpoint_interval: -5\n")
      save("damaged", done: 1)
      truncate_checkpoint("damaged", 1)
      unknown = "unknown task \"nope\" in #{store_dir}; see bin/cli checkpoint list"
      cases = {
        %w[checkpoint show nope] => unknown,
        %w[checkpoint remove nope] => unknown,
        %w[checkpoint resume nope] => unknown,
        %w[checkpoint resume nope --checkpoint 1] => unknown,
        %w[checkpoint resume --latest --dir empty] => "there is no checkpoint store at #{File.expand_path('empty')} " \
                                                      "(--dir empty): check the path",
        %w[checkpoint resume extract-services --checkpoint 9] => "task \"extract-services\" has no checkpoint 9; " \
                                                                 "see bin/cli checkpoint show extract-services",
        %w[checkpoint resume damaged] => "task \"damaged\" has no intact checkpoint left in #{store_dir}; " \
                                         "see bin/cli checkpoint show damaged",
        %w[checkpoint resume damaged --checkpoint 1] => /\Acheckpoint 1 of task "damaged" is damaged \(the file is truncated/,
        %w[checkpoint list --dir
           not-a-dir] => /\Athere is no checkpoint store at .*not-a-dir \(--dir not-a-dir\): it is not a directory/,
        %w[checkpoint create --task t --dir not-a-dir] => /\Arefusing to use .*not-a-dir: it is not a directory/
      }
      before = store_snapshot
      runs = cli_all(cases.keys)
      aggregate_failures do
        cases.zip(runs).each { |(args, message), run| expect_failure(run, 1, message, args.join(" ")) }
      end
      expect_failure(cli("checkpoint", "list", dir: "bad-config"), 1,
                     /session_recovery.checkpoint_interval must be a number of seconds.*got -5\z/, "bad config")
      expect(store_snapshot).to eq(before)
      expect(File.exist?("not-a-dir/t")).to be(false)
    end
  end
end
