# frozen_string_literal: true

require "stringio"
require "master/cli"

# MASTER v52.0 (trymmika/pub4, MASTER/) calls an older MASTER::SessionRecovery
# from its boot sequence and its REPL, writes `Queue.new` inside `module
# MASTER` for Ruby's thread queue, and ships its own config file. These
# examples make those calls as that code makes them, written from its
# behaviour (README "Coming from MASTER v52").

# Code inside `module MASTER` that means Ruby's thread queue by `Queue.new`,
# as MASTER v52's CLI (@input_queue), TTS (@queue) and Server (@output_queue) do.
module MASTER
  module V52CompatSpecThreadQueueUser
    def self.new_queue
      Queue.new
    end

    # TTS's worker loop: non-blocking pops until the queue is drained.
    def self.drain(queue)
      taken = []
      while (chunk = begin
        queue.pop(true)
      rescue ThreadError
        nil
      end) || !queue.empty?
        break unless chunk

        taken << chunk
      end
      taken
    end
  end
end

module V52CompatSpec
  BIN = File.expand_path("../bin/cli", __dir__)

  # The REPL commands of MASTER v52's lib/cli.rb (resume, checkpoint,
  # sessions), as they call SessionRecovery and read what it returns.
  class Repl
    attr_reader :context

    def initialize
      @context = nil
    end

    def create_checkpoint(task)
      return "Usage: checkpoint <task_description>" unless task

      MASTER::SessionRecovery.new.checkpoint(task: task, context: { variables: @context || {} },
                                             instructions: ["Resume with: resume #{task.split.first}"])
      "checkpoint: #{task}"
    end

    def resume_session(arg = nil)
      recovery = MASTER::SessionRecovery.new
      checkpoints = recovery.list
      return "No sessions to resume" if checkpoints.empty?

      checkpoint = if arg
                     idx = arg.to_i - 1
                     if idx >= 0 && idx < checkpoints.size
                       checkpoints[idx]
                     else
                       checkpoints.find { |c| c[:task].to_s.include?(arg) }
                     end
                   else
                     checkpoints.first
                   end
      return "Session not found: #{arg}" unless checkpoint

      restored = recovery.restore(checkpoint[:file])
      return "Failed to restore" unless restored

      @context = restored[:context]
      age = ((Time.now.to_i - restored[:timestamp]) / 3600.0).round(1)
      "resumed: #{restored[:task]} (#{age}h ago)"
    end

    # The first of the two `list_sessions` in v52's cli.rb (the later one
    # overrides it there, but it shows how list rows are read).
    def list_sessions
      checkpoints = MASTER::SessionRecovery.new.list
      return "No saved sessions" if checkpoints.empty?

      checkpoints.each_with_index.map do |c, i|
        age = ((Time.now.to_i - c[:timestamp]) / 3600.0).round(1)
        "#{i + 1}. #{c[:task]} (#{age}h) #{c.dig(:files, :completed)&.size || 0}✓ #{c.dig(:files, :pending)&.size || 0}…"
      end.join("\n")
    end
  end

  # MASTER v52's lib/boot.rb try_auto_resume, printing what it prints.
  BOOT = <<~RUBY
    recovery = MASTER::SessionRecovery.new
    checkpoint = recovery.latest
    if checkpoint.nil?
      puts "nothing to resume"
    else
      age_hours = (Time.now.to_i - checkpoint[:timestamp]) / 3600.0
      if age_hours > 24
        puts "too old"
      else
        puts "session0: recovering from checkpoint (\#{age_hours.round(1)}h ago)"
        puts "  task: \#{checkpoint[:task]}"
        pending = checkpoint.dig(:files, :pending)&.size || 0
        completed = checkpoint.dig(:files, :completed)&.size || 0
        puts "  progress: \#{completed} done, \#{pending} pending" if pending > 0 || completed > 0
      end
    end
  RUBY

  # MASTER v52's lib/config/session_recovery.yml, whole.
  CONFIG = <<~YAML
    # MASTER Session Recovery Configuration
    version: 1

    recovery:
      enabled: true
      checkpoint_dir: "var/checkpoints"
      auto_checkpoint: true
      checkpoint_interval: 300  # 5 minutes
      max_checkpoints: 10

    checkpoint_format:
      version: 1
      fields:
        - task_description
        - files_completed
        - files_in_progress
        - files_pending
        - files_failed
        - context_decisions
        - context_patterns
        - context_blockers
        - context_variables
        - recovery_instructions
        - timestamp
        - session_id

    recovery_strategies:
      file_completion:
        strategy: resume_from_last
        verify: true
        backup: true
      failed_operations:
        strategy: skip_and_continue
        log: true
        report: true
      context_restoration:
        strategy: full_restore
        include_variables: true
        include_decisions: true

    triggers:
      auto_save:
        - event: file_complete
        - event: phase_complete
        - event: error_occurred
        - event: timer_elapsed
          interval: 300
      manual_save:
        command: checkpoint
        alias: cp
      auto_restore:
        on_startup: prompt  # auto, prompt, never
        max_age: 86400  # 24 hours

    persistence:
      format: json
      compression: false
      encryption: false

    notifications:
      on_checkpoint: false
      on_restore: true
      on_failure: true

    cleanup:
      auto_cleanup: true
      retain_days: 7
      compress_old: true
  YAML

  # The keys of CONFIG that have no meaning in the gem.
  IGNORED = %w[version recovery.auto_checkpoint checkpoint_format recovery_strategies triggers.auto_save
               triggers.manual_save persistence notifications cleanup.auto_cleanup cleanup.compress_old].freeze
end

RSpec.describe "MASTER v52 compatibility" do
  let(:warnings) { MASTER.logger.warnings }

  # A checkpoint file as MASTER v52's SessionRecovery wrote it.
  def old_checkpoint(timestamp, task:, pending: [], completed: [], session: "session_#{timestamp}_0a1b2c3d", dir: store_dir)
    FileUtils.mkdir_p(dir)
    data = {
      version: 1, task: task,
      files: { completed: completed, in_progress: [], pending: pending, failed: [] },
      context: { decisions: [], patterns: [], blockers: [], variables: { phase: "old" } },
      recovery_instructions: ["continue #{task}"], timestamp: timestamp, session_id: session
    }
    path = File.join(dir, "checkpoint_#{timestamp}.json")
    File.write(path, JSON.pretty_generate(data))
    [path, data]
  end

  def write_config(text, path = "lib/config/session_recovery.yml")
    FileUtils.mkdir_p(File.dirname(path))
    File.write(path, text)
    MASTER::Config.reset!
  end

  def cli(*args, env: {})
    other_processes!
    out, err, status = Open3.capture3(env, RbConfig.ruby, "--disable-gems", V52CompatSpec::BIN, *args, chdir: Dir.pwd)
    [out, err, status.exitstatus]
  end

  describe "SessionRecovery.new without task_id:" do
    it "checkpoints v52's hash, with Symbol keys and an Integer epoch timestamp, as data of the task master-v52" do
      recovery = MASTER::SessionRecovery.new
      before = Time.now.to_i
      saved = recovery.checkpoint(task: "refactor lib", files: { pending: %w[a.rb b.rb], completed: ["c.rb"] },
                                  context: { variables: { model: "x" } }, instructions: ["resume with: resume refactor"])
      expect(saved).to match(
        version: 1, task: "refactor lib",
        files: { completed: ["c.rb"], in_progress: [], pending: %w[a.rb b.rb], failed: [] },
        context: { decisions: [], patterns: [], blockers: [], variables: { model: "x" } },
        recovery_instructions: ["resume with: resume refactor"],
        timestamp: be_between(before, Time.now.to_i), session_id: match(/\Asession_\d+_\h{8}\z/)
      )
      expect(saved.keys).to eq(%i[version task files context recovery_instructions timestamp session_id])
      expect(recovery.current_checkpoint).to equal(saved)
      expect(MASTER::SessionPersistence.load("master-v52")[:state]).to eq(saved)
      expect { recovery.send(:session_id) }.not_to raise_error
      expect { recovery.session_id }.to raise_error(NoMethodError)
    end

    it "stores what v52's JSON file held: a Symbol or a Time comes back a String, as from v52's restore" do
      at = Time.at(1_700_000_000).utc
      MASTER::SessionRecovery.new.checkpoint(task: :symbolic, context: { variables: { "mode" => :fast, at: at } })
      expect(MASTER::SessionRecovery.new.latest).to include(task: "symbolic",
                                                            context: include(variables: { mode: "fast", at: at.to_s }))
    end

    it "keeps the task_id API as documented" do
      expect { MASTER::SessionRecovery.new(task_id: nil) }.to raise_error(TypeError, /task_id must be a String; got nil/)
      expect { MASTER::SessionRecovery.new(budget: 2.0) }.to raise_error(ArgumentError, /missing keyword: :task_id/)
      expect { MASTER::SessionRecovery.new(async: true) }.to raise_error(ArgumentError, /:async needs task_id:/)
      expect { MASTER::SessionRecovery.new(bogus: 1) }.to raise_error(ArgumentError, /unknown option :bogus/)
      session = MASTER::SessionRecovery.new(task_id: "documented", budget: 2.0)
      state = session.checkpoint(progress: 4, items_total: 8, data: { done: 4 })
      expect(state).to include(task_id: "documented", progress: 4, timestamp: be_a(Time))
      expect(session.progress).to eq(4)
      expect(session).not_to respond_to(:latest)
      expect(MASTER::SessionRecovery.new).to respond_to(:latest, :list, :complete_file)
    end

    it "answers progress as v52's percentage, and works on the current checkpoint" do
      recovery = MASTER::SessionRecovery.new
      expect([recovery.progress, recovery.instructions, recovery.pending_files]).to eq([0, [], []])
      expect(recovery.complete_file("x")).to be_nil # no current checkpoint: nothing to do
      recovery.checkpoint(task: "t", files: { pending: %w[a b c] }, instructions: ["go on"])
      expect(recovery.progress).to eq(0)
      recovery.complete_file("a")
      expect(recovery.progress).to eq(33)
      recovery.fail_file("b", reason: "syntax error")
      expect(recovery.progress).to eq(33)
      expect(recovery.current_checkpoint[:files][:failed]).to match([{ file: "b", reason: "syntax error", timestamp: Integer }])
      recovery.add_decision("keep the API")
      recovery.add_blocker("needs review")
      expect(recovery.current_checkpoint[:context]).to include(decisions: [{ decision: "keep the API", timestamp: Integer }],
                                                               blockers: [{ blocker: "needs review", timestamp: Integer }])
      expect([recovery.pending_files, recovery.instructions]).to eq([["c"], ["go on"]])
      expect(MASTER::SessionRecovery.new.latest).to eq(recovery.current_checkpoint)
      empty = MASTER::SessionRecovery.new
      empty.checkpoint(task: "nothing")
      expect(empty.progress).to eq(100)
    end

    it "update writes the checkpoint with a new timestamp, taking keywords or v52's Hash" do
      recovery = MASTER::SessionRecovery.new
      expect(recovery.update(files: { pending: [] })).to be_nil
      first = recovery.checkpoint(task: "t", files: { pending: %w[a b] })[:timestamp]
      recovery.update(files: { pending: ["b"], completed: ["a"] }, instructions: ["next: b"])
      recovery.update({ context: { variables: { step: 2 } } })
      latest = MASTER::SessionRecovery.new.latest
      expect(latest).to include(files: include(pending: ["b"], completed: ["a"]), recovery_instructions: ["next: b"],
                                context: include(variables: { step: 2 }), timestamp: be >= first)
      expect { recovery.update(file: {}) }.to raise_error(ArgumentError, /update takes files, context, instructions; got :file/)
    end

    it "lists every session's checkpoints newest first, one row per v52 checkpoint, and restores by its file name" do
      first = MASTER::SessionRecovery.new
      first.checkpoint(task: "first job", files: { pending: %w[a b] })
      first.complete_file("a") # a new version of the same checkpoint, not a new row
      second = MASTER::SessionRecovery.new
      second.checkpoint(task: "second job", files: { pending: %w[x y z] })
      rows = MASTER::SessionRecovery.new.list
      expect(rows).to match([
                              { file: "checkpoint_003.json", task: "second job", timestamp: Integer, age: be_between(0, 5),
                                files_pending: 3 },
                              { file: "checkpoint_002.json", task: "first job", timestamp: Integer, age: be_between(0, 5),
                                files_pending: 1 }
                            ])
      other = MASTER::SessionRecovery.new
      expect(other.restore(rows.last[:file])).to include(task: "first job", files: include(completed: ["a"], pending: ["b"]))
      expect(other.current_checkpoint[:task]).to eq("first job")
      expect(other.restore).to include(task: "second job")
      expect(other.restore("checkpoint_999.json")).to be_nil
      expect(other.restore("no-such-file.json")).to be_nil
      expect(other.restore("checkpoint_#{'9' * 25}.json")).to be_nil
      expect { other.restore(2) }.to raise_error(TypeError, /checkpoint_file must be a String/)
    end

    it "keeps ten checkpoints unless configured otherwise" do
      12.times { |i| MASTER::SessionRecovery.new.checkpoint(task: "job #{i}") }
      rows = MASTER::SessionRecovery.new.list
      expect(rows.size).to eq(10)
      expect(rows.map { |row| row[:task] }).to eq((2..11).map { |i| "job #{i}" }.reverse)
      4.times { |i| MASTER::SessionRecovery.new(max_checkpoints: 3).checkpoint(task: "few #{i}") }
      expect(MASTER::SessionRecovery.new.list.size).to eq(3)
    end

    it "prints nothing on stdout (v52 printed \"Restored checkpoint from …\"; the gem logs it at info level)" do
      MASTER::SessionRecovery.new.checkpoint(task: "quiet")
      info = []
      logger = Class.new(RecordingLogger) { define_method(:info) { |message| info << message } }.new
      expect { MASTER::SessionRecovery.new(logger: logger).latest }.not_to output.to_stdout
      expect(info).to match([/\ARestored checkpoint from \d{4}-\d\d-\d\d /])
    end

    it "refuses to delete one of the gem's checkpoints, and clear_all forgets them all" do
      recovery = MASTER::SessionRecovery.new
      recovery.checkpoint(task: "kept")
      expect { recovery.delete("checkpoint_001.json") }
        .to raise_error(MASTER::Error, /checkpoint_001.json is checkpoint 1 of task master-v52.*history.*clear_all/)
      expect(recovery.delete("checkpoint_404.json")).to be_nil
      expect { recovery.delete("../etc/passwd") }.to raise_error(ArgumentError, /checkpoint_file must be a file name/)
      expect(recovery.list.size).to eq(1)
      expect(recovery.clear_all).to be_nil
      expect([recovery.list, recovery.latest, recovery.current_checkpoint]).to eq([[], nil, nil])
    end
  end

  describe "MASTER's boot (lib/boot.rb try_auto_resume)" do
    it "resumes in a fresh process what another process checkpointed" do
      _, err, status = run_ruby(<<~RUBY)
        recovery = MASTER::SessionRecovery.new
        recovery.checkpoint(task: "refactor lib", files: { pending: %w[a.rb b.rb c.rb], completed: [] })
        recovery.complete_file("a.rb")
      RUBY
      expect([err, status.success?]).to eq(["", true])
      out, err, status = run_ruby(V52CompatSpec::BOOT)
      boot = "session0: recovering from checkpoint (0.0h ago)\n  task: refactor lib\n  progress: 1 done, 2 pending\n"
      expect([out, err, status.success?]).to eq([boot, "", true])
    end

    it "resumes a checkpoint the old code wrote before the upgrade" do
      files_only!
      old_checkpoint(Time.now.to_i - 1800, task: "half done", pending: %w[x.rb], completed: %w[w.rb])
      out, err, status = run_ruby(V52CompatSpec::BOOT)
      boot = "session0: recovering from checkpoint (0.5h ago)\n  task: half done\n  progress: 1 done, 1 pending\n"
      expect([out, err, status.success?]).to eq([boot, "", true])
    end

    it "finds nothing in an empty store" do
      out, _, status = run_ruby(V52CompatSpec::BOOT)
      expect([out, status.success?]).to eq(["nothing to resume\n", true])
    end
  end

  describe "MASTER's REPL (lib/cli.rb resume, checkpoint, sessions)" do
    it "checkpoints, lists and resumes by the file name list gives, from any directory" do
      repl = V52CompatSpec::Repl.new
      expect(repl.resume_session).to eq("No sessions to resume")
      expect(repl.list_sessions).to eq("No saved sessions")
      expect(repl.create_checkpoint(nil)).to eq("Usage: checkpoint <task_description>")
      expect(repl.create_checkpoint("refactor the parser")).to eq("checkpoint: refactor the parser")
      expect(repl.create_checkpoint("write docs")).to eq("checkpoint: write docs")
      expect(repl.list_sessions).to match(/\A1\. write docs \(0\.0h\) 0✓ 0…\n2\. refactor the parser \(0\.0h\) 0✓ 0…\z/)

      expect(repl.resume_session).to eq("resumed: write docs (0.0h ago)")
      expect(repl.resume_session("2")).to eq("resumed: refactor the parser (0.0h ago)")
      expect(repl.context).to eq(decisions: [], patterns: [], blockers: [], variables: {})
      expect(repl.resume_session("parser")).to eq("resumed: refactor the parser (0.0h ago)")
      expect(repl.resume_session("nothing like it")).to eq("Session not found: nothing like it")

      # After a resume, v52 nests the restored context under :variables.
      repl.create_checkpoint("refactor again")
      expect(MASTER::SessionRecovery.new.latest).to include(
        task: "refactor again", recovery_instructions: ["Resume with: resume refactor"],
        context: include(variables: { decisions: [], patterns: [], blockers: [], variables: {} })
      )
    end
  end

  describe "Queue.new inside module MASTER" do
    it "is Ruby's thread queue: <<, push, pop(true), empty?, clear, size" do
      queue = MASTER::V52CompatSpecThreadQueueUser.new_queue
      expect(queue).to be_a(MASTER::Queue).and be_a(Thread::Queue)
      expect(queue.empty?).to be(true)
      expect { queue.pop(true) }.to raise_error(ThreadError)
      queue << "first"
      queue.push("second")
      expect([queue.size, queue.empty?]).to eq([2, false])
      expect(queue.pop(true)).to eq("first")
      queue.clear
      expect([queue.size, queue.empty?]).to eq([0, true])
      expect(begin
        queue.pop(true)
      rescue StandardError
        nil
      end).to be_nil # v52's `@input_queue.pop(true) rescue nil`
      %w[a b c].each { |chunk| queue.push(chunk) }
      expect(MASTER::V52CompatSpecThreadQueueUser.drain(queue)).to eq(%w[a b c])
      expect(store_empty?).to be(true) # a thread queue writes nothing
    end

    it "passes items from a producer thread to a consumer thread" do
      queue = MASTER::V52CompatSpecThreadQueueUser.new_queue
      polled = MASTER::V52CompatSpecThreadQueueUser.new_queue
      consumer = Thread.new { Array.new(100) { queue.pop } }
      poller = Thread.new do # CLI#start_queue_processor: poll with a non-blocking pop
        taken = []
        until taken.size == 50
          if polled.empty?
            sleep 0.001
          else
            item = begin
              polled.pop(true)
            rescue ThreadError
              nil
            end
            taken << item if item
          end
        end
        taken
      end
      producer = Thread.new do
        100.times { |i| queue << i }
        50.times { |i| polled.push(i) }
      end
      producer.join
      expect(consumer.value).to eq((0...100).to_a)
      expect(poller.value).to eq((0...50).to_a)
    end

    it "is still the task queue when given its options, and no task method is a Thread::Queue method" do
      expect(MASTER::Queue.public_instance_methods(false) & Thread::Queue.public_instance_methods(false)).to eq([])
      queue = MASTER::Queue.new(budget: 1.0, name: "compat")
      queue.add("One job") { |task| task.track_cost(0.25) }
      queue << :also_a_thread_queue
      expect(queue.process.completed.map(&:task_id)).to eq(["one-job"])
      expect([queue.total_spent, queue.pop]).to eq([0.25, :also_a_thread_queue])
    end
  end

  describe "the checkpoint_<epoch>.json files the old code left" do
    before { files_only!("reads files the old code wrote in the store's directory") }

    it "are found by latest, list and restore(file), merged with the gem's own by timestamp" do
      now = Time.now.to_i
      _, older = old_checkpoint(now - 7200, task: "oldest", pending: %w[a])
      _, newer = old_checkpoint(now - 3600, task: "old but newer", pending: %w[b c], completed: %w[a])
      MASTER::SessionRecovery.new.checkpoint(task: "new one")
      recovery = MASTER::SessionRecovery.new
      expect(recovery.list).to match([
                                       include(file: "checkpoint_001.json", task: "new one"),
                                       { file: "checkpoint_#{now - 3600}.json", task: "old but newer", timestamp: now - 3600,
                                         age: be_between(3600, 3605), files_pending: 2 },
                                       include(file: "checkpoint_#{now - 7200}.json", task: "oldest", files_pending: 1)
                                     ])
      expect(recovery.restore("checkpoint_#{now - 7200}.json")).to eq(older)
      expect(recovery.restore(File.join(store_dir, "checkpoint_#{now - 3600}.json"))).to eq(newer) # v52 took paths too
      expect(recovery.latest).to include(task: "new one")
      expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }).to eq(["master-v52"])
    end

    it "resume a task interrupted by the upgrade: the gem's newer version replaces the old file's in the list" do
      now = Time.now.to_i
      path, = old_checkpoint(now - 60, task: "mid-upgrade", pending: %w[a b])
      original = File.binread(path)
      recovery = MASTER::SessionRecovery.new
      expect(recovery.latest).to include(task: "mid-upgrade", timestamp: now - 60)
      recovery.complete_file("a")
      rows = MASTER::SessionRecovery.new.list
      expect(rows).to match([{ file: "checkpoint_001.json", task: "mid-upgrade", timestamp: now - 60, age: Integer,
                               files_pending: 1 }])
      expect(MASTER::SessionRecovery.new.latest[:files]).to include(completed: ["a"], pending: ["b"])
      expect(File.binread(path)).to eq(original)
    end

    it "skips a damaged one with one warning, never raising from latest or list" do
      now = Time.now.to_i
      old_checkpoint(now - 100, task: "intact")
      File.write(File.join(store_dir, "checkpoint_#{now - 50}.json"), "{\n  \"version\": 1,\n  \"task\": \"cut off")
      File.write(File.join(store_dir, "checkpoint_#{now - 40}.json"), JSON.pretty_generate(task: "no timestamp"))
      File.symlink("/etc/passwd", File.join(store_dir, "checkpoint_#{now - 30}.json"))
      recovery = MASTER::SessionRecovery.new
      2.times do
        expect(recovery.list.map { |row| row[:task] }).to eq(["intact"])
        expect(recovery.latest).to include(task: "intact")
      end
      expect(warnings.grep(/checkpoint_#{now - 50}\.json: not valid JSON/).size).to eq(1)
      expect(warnings.grep(/checkpoint_#{now - 40}\.json: not a v52 checkpoint/).size).to eq(1)
      expect(warnings.grep(/checkpoint_#{now - 30}\.json: cannot be read/).size).to eq(1)
      expect { recovery.restore("checkpoint_#{now - 50}.json") }
        .to raise_error(MASTER::CorruptCheckpointError, /not valid JSON/) { |e| expect(e.path).to end_with("checkpoint_#{now - 50}.json") }
    end

    it "delete removes an old file; clear_all removes them all" do
      now = Time.now.to_i
      path, = old_checkpoint(now - 100, task: "one")
      old_checkpoint(now - 90, task: "two")
      recovery = MASTER::SessionRecovery.new
      expect(recovery.delete(File.basename(path))).to eq([path])
      expect(File.exist?(path)).to be(false)
      expect(recovery.list.map { |row| row[:task] }).to eq(["two"])
      recovery.clear_all
      expect(Dir.children(store_dir).grep(/checkpoint_/)).to eq([])
      expect(recovery.latest).to be_nil
    end
  end

  describe "MASTER's config file (lib/config/session_recovery.yml)" do
    it "maps v52's keys onto the gem's, naming the keys with no meaning here in one warning" do
      write_config(V52CompatSpec::CONFIG)
      2.times { MASTER::Config.settings }
      expect(MASTER::Config.settings).to include(enabled: true, checkpoint_dir: "var/checkpoints", checkpoint_interval: 300,
                                                 max_checkpoints: 10, auto_resume: true, resume_max_age: 86_400,
                                                 keep_successful: 7)
      v52_warnings = warnings.grep(/MASTER v52 settings with no meaning/)
      expect(v52_warnings.size).to eq(1)
      expect(v52_warnings.first[/ignored: (.*?) \(read:/, 1].split(", ")).to match_array(V52CompatSpec::IGNORED)
      expect(warnings.grep(/unknown section/)).to eq([])
      expect(warnings.size).to eq(1)
    end

    it "stores v52's checkpoints where its config says" do
      files_only!
      write_config(V52CompatSpec::CONFIG)
      MASTER::SessionRecovery.new.checkpoint(task: "in var")
      expect(Dir.children("var/checkpoints")).to include("master-v52")
      old_checkpoint(Time.now.to_i - 10, task: "left by v52", dir: "var/checkpoints")
      expect(MASTER::SessionRecovery.new.list.map { |row| row[:task] }).to eq(["in var", "left by v52"])
    end

    it "reads on_startup never as auto_resume false; session_recovery: wins over recovery:" do
      write_config(<<~YAML)
        recovery:
          max_checkpoints: 4
          checkpoint_interval: 60
        triggers:
          auto_restore:
            on_startup: never
        session_recovery:
          max_checkpoints: 6
      YAML
      expect(MASTER::Config.settings).to include(max_checkpoints: 6, checkpoint_interval: 60, auto_resume: false)
      expect(warnings).to eq([])
    end

    it "fails fast on a bad value, naming the v52 key" do
      write_config("recovery:\n  max_checkpoints: -1\n")
      expect { MASTER::Config.settings }.to raise_error(MASTER::ConfigError, /recovery\.max_checkpoints \(max_checkpoints here\)/)
      write_config("triggers:\n  auto_restore:\n    on_startup: sometimes\n")
      expect { MASTER::Config.settings }.to raise_error(MASTER::ConfigError, /on_startup must be auto, prompt or never/)
      write_config("recovery: [1, 2]\n")
      expect { MASTER::Config.settings }.to raise_error(MASTER::ConfigError, /`recovery:` must hold key: value pairs/)
    end

    it "resumes only from a checkpoint no older than max_age, else starts fresh with one warning, keeping what was spent" do
      write_config("triggers:\n  auto_restore:\n    max_age: 3600\n")
      session = MASTER::SessionRecovery.new(task_id: "job", budget: 5.0)
      session.track_cost(1.25)
      session.checkpoint(progress: 3, data: { done: [1, 2, 3] })
      expect(MASTER::SessionRecovery.new(task_id: "job").progress).to eq(3) # recent: resumed

      # The latest checkpoint made two hours old.
      document = MASTER::SessionPersistence.load("job")
      document[:timestamp] = (Time.now - 7200).utc.iso8601
      MASTER::SessionPersistence.save("job", document.except(:checksum, :sequence, :written_at))
      stale = MASTER::SessionRecovery.new(task_id: "job")
      expect([stale.progress, stale.budget_spent, stale.budget_limit]).to eq([0, 1.25, 5.0])
      expect(warnings.grep(/task job: its last checkpoint is 2\.0 h old, more than resume_max_age \(3600s\); starting fresh/).size)
        .to eq(1)
      expect(MASTER::SessionRecovery.new(task_id: "job", resume_max_age: nil).progress).to eq(3)
      expect(MASTER::SessionRecovery.new(task_id: "job", resume_max_age: 10_000).progress).to eq(3)
      expect { MASTER::SessionRecovery.new(task_id: "job", resume_max_age: -1) }
        .to raise_error(ArgumentError, /resume_max_age` must be a number of seconds/)
    end

    it "takes resume_max_age in session_recovery: too" do
      write_config("session_recovery:\n  resume_max_age: 120\n")
      expect(MASTER::Config.settings[:resume_max_age]).to eq(120)
      write_config("session_recovery:\n  resume_max_age: soon\n")
      expect { MASTER::Config.settings }.to raise_error(MASTER::ConfigError, /resume_max_age must be a number of seconds/)
    end
  end

  describe "bin/cli checkpoint migrate" do
    before { files_only!("imports files") }

    it "imports the old files oldest first as checkpoints of master-v52, keeps them, and imports nothing twice" do
      now = Time.now.to_i
      written = [300, 200, 100].map { |ago| old_checkpoint(now - ago, task: "job #{ago}", pending: ["f#{ago}"]) }
      File.write(File.join(store_dir, "checkpoint_#{now - 50}.json"), "damaged")
      originals = Dir.children(store_dir).sort.to_h { |name| [name, File.binread(File.join(store_dir, name))] }

      out, err, status = cli("checkpoint", "migrate")
      expect(status).to eq(0)
      expect(out).to start_with("Imported 3 MASTER v52 checkpoint files from #{store_dir} into task master-v52.")
      expect(out).to include("1 damaged file skipped: checkpoint_#{now - 50}.json.")
      expect(err).to match(/checkpoint_#{now - 50}\.json: not valid JSON/)
      originals.each { |name, bytes| expect(File.binread(File.join(store_dir, name))).to eq(bytes) }
      numbers = MASTER::SessionPersistence.checkpoints("master-v52")
      expect(numbers.map { |n| MASTER::SessionPersistence.read("master-v52", n)[:state] }).to eq(written.map(&:last))

      out, _, status = cli("checkpoint", "migrate", "--json")
      expect(status).to eq(0)
      expect(JSON.parse(out)).to include("imported" => [], "already_imported" => written.map { |path, _| File.basename(path) },
                                         "damaged" => ["checkpoint_#{now - 50}.json"])
      expect(MASTER::SessionPersistence.checkpoints("master-v52")).to eq(numbers)

      rows = MASTER::SessionRecovery.new.list
      expect(rows.map { |row| [row[:file], row[:task]] })
        .to eq([["checkpoint_003.json", "job 100"], ["checkpoint_002.json", "job 200"], ["checkpoint_001.json", "job 300"]])
    end

    it "keeps the newest last, so pruning keeps what v52 kept: the ten newest" do
      now = Time.now.to_i
      MASTER::SessionRecovery.new.checkpoint(task: "written after the upgrade")
      12.times { |i| old_checkpoint(now - 1000 + i, task: "old #{i}") }
      out, _, status = cli("checkpoint", "migrate", "--dir", ".master_checkpoints")
      expect(status).to eq(0)
      expect(out).to include("Imported 12 ", "1 newer checkpoint of master-v52 written again after them")
      expect(MASTER::SessionPersistence.load("master-v52")[:state][:task]).to eq("written after the upgrade")
      MASTER::SessionRecovery.new.checkpoint(task: "next")
      rows = MASTER::SessionRecovery.new.list
      expect(rows.map { |row| row[:task] }).to eq(["next", "written after the upgrade"] + (4..11).map { |i| "old #{i}" }.reverse)
    end

    it "shows its progress on a terminal when it has many files" do
      now = Time.now.to_i
      25.times { |i| old_checkpoint(now - 100 + i, task: "t#{i}") }
      out = StringIO.new
      err = StringIO.new
      err.define_singleton_method(:tty?) { true }
      expect(MASTER::CLI.start(%w[checkpoint migrate], out: out, err: err, program: "bin/cli")).to eq(0)
      expect(err.string).to include("\rmaster: migrating #{store_dir}: imported 25 of 25")
      expect(err.string).to end_with("\r\e[K")
      expect(out.string).to start_with("Imported 25 ")
    end

    it "says what is wrong, with the usual exit statuses" do
      expect(cli("checkpoint", "migrate", "--help")).to match([start_with("Usage: bin/cli checkpoint migrate [--dir DIR]"), "", 0])
      expect(cli("checkpoint", "migrate", "--bogus")).to eq(["", "master: invalid option: --bogus; see bin/cli checkpoint migrate --help\n", 2])
      expect(cli("checkpoint", "migrate", "extra")[1..]).to eq(["master: unexpected argument \"extra\"; see bin/cli checkpoint migrate --help\n", 2])
      expect(cli("checkpoint", "migrate", "--dir", "nowhere")[1..]).to match([/there is no checkpoint store at .*nowhere/, 1])
      expect(cli("checkpoint", "migrate", env: { "MASTER_STORE" => "memory" })[1..])
        .to match([/old MASTER v52 checkpoint files are in a directory.*--dir DIR/, 1])
      expect(cli("checkpoint", "migrate")).to eq(["No MASTER v52 checkpoint files (checkpoint_<epoch>.json) in #{store_dir}; " \
                                                  "nothing to import\n", "", 0])
    end
  end
end
