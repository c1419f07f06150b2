# frozen_string_literal: true

RSpec.describe MASTER::Queue do
  def queue(**options)
    described_class.new(budget: 10.0, **options)
  end

  describe "#add" do
    it "slugifies the description into the task id" do
      q = queue
      expect(q.add("Extract services").task_id).to eq("extract-services")
      expect(q.add("  Résumé: Users & Roles!! ").task_id).to eq("resume-users-roles")
    end

    # Regression (issue 8): names in non-Latin scripts had "no letters or digits".
    it "makes ids of names in any script" do
      q = queue
      expect(q.add("日本語のタスク").task_id).to eq("日本語のタスク")
      expect(q.add("Ünïcødé täsk").task_id).to eq("unicøde-task")
      expect(q.add("Задача 2").task_id).to eq("задача-2")
      expect(q.add("ガイド").task_id).not_to eq(q.add("カイド").task_id)
      long = q.add("語" * 300)
      expect(long.task_id.bytesize).to be <= 200
      q.process { |task| task.checkpoint(progress: 1) }
      expect(MASTER::SessionPersistence.load("日本語のタスク")).to include(status: "completed")
    end

    it "refuses a description that names no task, a duplicate and a bad budget" do
      q = queue
      q.add("Refactor users")
      expect { q.add("!!!") }.to raise_error(ArgumentError, /"!!!" has no letters or digits/)
      expect { q.add("refactor  USERS") }.to raise_error(ArgumentError, /same id \(refactor-users\)/)
      expect { q.add("x", budget: -1) }.to raise_error(ArgumentError, /budget of "x" must be a positive/)
      expect { q.add(:sym) }.to raise_error(TypeError, /description must be a String/)
    end
  end

  describe ".new" do
    it "refuses unknown options and bad budgets" do
      expect { described_class.new(budgett: 1) }.to raise_error(ArgumentError, /unknown option :budgett/)
      expect { described_class.new(budget: 0) }.to raise_error(ArgumentError, /budget must be a positive/)
      expect { described_class.new(handle_signals: "yes") }.to raise_error(ArgumentError, /handle_signals/)
    end
  end

  describe "#process" do
    it "runs tasks in order, each with its own budget and session" do
      q = queue
      q.add("Refactor users", budget: 2.0)
      q.add("Extract services", budget: 3.0)
      seen = []
      q.process do |task|
        seen << [task.name, task.task_id, task.budget, task.session.class]
        task.track_cost(task.budget / 4)
        task.checkpoint(progress: 1, data: { ok: true })
        :done
      end
      expect(seen).to eq([["Refactor users", "refactor-users", 2.0, MASTER::SessionRecovery],
                          ["Extract services", "extract-services", 3.0, MASTER::SessionRecovery]])
      expect(q.total_spent).to eq(1.25)
      expect(q.tasks.map(&:result)).to eq(%i[done done])
      expect(q.tasks.map(&:status)).to eq(%w[completed completed])
      expect(MASTER::SessionPersistence.load("extract-services")).to include(status: "completed")
      expect(MASTER::SessionPersistence.load("refactor-users")[:budget]).to eq(allocated: 2.0, spent: 0.5, remaining: 1.5)
    end

    it "adds spending up exactly" do
      q = queue
      3.times { |i| q.add("t#{i}") }
      q.process { |task| 100.times { task.track_cost(0.001) } }
      expect(q.total_spent).to eq(0.3)
    end

    it "uses each task's own block when process has none" do
      q = queue
      order = []
      q.add("First") { |t| order << t.task_id }
      q.add("Second") { |t| order << t.task_id }
      q.process
      expect(order).to eq(%w[first second])
    end

    it "returns an Enumerator when there is no block anywhere" do
      q = queue
      q.add("Task 1")
      q.add("Task 2")
      enumerator = q.process
      expect(enumerator).to be_a(Enumerator)
      expect(store_empty?).to be(true)
      ran = []
      enumerator.each { |task| ran << task.task_id }
      expect(ran).to eq(%w[task-1 task-2])
    end

    it "records a failed task and goes on" do
      q = queue
      q.add("Breaks")
      q.add("Works")
      q.process { |task| task.task_id == "breaks" ? raise(KeyError, "no such key") : :fine }
      expect(q.tasks.map(&:status)).to eq(%w[failed completed])
      expect(q.failed.first.error).to eq("KeyError: no such key")
      failed = MASTER::SessionPersistence.load("breaks")
      expect(failed).to include(status: "failed")
      expect(failed[:error]).to include(class: "KeyError", message: "no such key")
      expect(MASTER.logger.warnings.join).to match(/task "Breaks" failed \(KeyError: no such key\); going on/)
    end

    it "stops before a task once the budget is spent, saying so" do
      q = described_class.new(budget: 1.0)
      %w[a b c].each { |n| q.add("Task #{n}") }
      q.process { |task| task.track_cost(0.6) }
      expect(q.tasks.map(&:status)).to eq(%w[completed completed pending])
      expect(q.total_spent).to eq(1.2)
      expect(q).to be_stopped_for_budget
      expect(MASTER.logger.warnings.last).to match(/stopped before "Task c": spent \$1.20 of its \$1.00 budget; 1 task not run \(Task c\)\. Call increase_budget, then resume/)
      # Regression (issue 8): the message said "raise the budget" and Queue
      # had no way to.
      expect(q.increase_budget(1.0)).to eq(2.0)
      q.resume
      expect(q.tasks.map(&:status)).to eq(%w[completed completed completed])
    end

    # Regression (issue 8): nothing raised BudgetExceededError, and the
    # queue checked its budget only between tasks.
    it "with enforce_budget, stops the running task at its next track_cost past the budget" do
      q = described_class.new(budget: 1.0, name: "enforced", enforce_budget: true)
      %w[a b].each { |n| q.add("Task #{n}") }
      calls = 0
      q.process do |task|
        4.times do
          task.track_cost(0.3)
          calls += 1
        end
      end
      expect(calls).to eq(3)
      expect(q.total_spent).to eq(1.2)
      expect(q).to be_stopped_for_budget
      expect(q.tasks.map(&:status)).to eq(%w[running pending])
      expect(MASTER.logger.warnings.last).to match(/over its budget: spent \$1.20 of \$1.00.*increase_budget/)
      expect(MASTER::SessionPersistence.load("task-a")).to include(budget: include(spent: 1.2))
      q.increase_budget(5)
      q.resume { |task| task.track_cost(0.1) }
      expect(q.tasks.map(&:status)).to eq(%w[completed completed])
    end

    it "with enforce_budget, fails a task past its own budget and goes on" do
      q = described_class.new(name: "own", enforce_budget: true)
      q.add("Small", budget: 0.5)
      q.add("Next")
      q.process { |task| 2.times { task.track_cost(0.3) } }
      expect(q.tasks.map(&:status)).to eq(%w[failed completed])
      expect(q.tasks.first.error).to match(/MASTER::BudgetExceededError: task "small" is over its budget/)
    end

    it "checkpoints its own state for bin/cli to show" do
      q = queue(name: "nightly")
      q.add("One")
      q.add("Two")
      q.process { |task| task.track_cost(1) }
      ledger = MASTER::SessionPersistence.load("queue.nightly")
      expect(ledger).to include(status: "completed", progress: { items_processed: 2, items_total: 2, percentage: 100.0 },
                                budget: { allocated: 10.0, spent: 2.0, remaining: 8.0 })
      expect(ledger[:state][:tasks].map { |t| t[:status] }).to eq(%w[completed completed])
    end

    it "raises when a pending task has no block to run it" do
      q = queue
      q.add("With") { :ok }
      q.add("Without")
      expect { q.process }.to raise_error(ArgumentError, /task "Without" has no block/)
    end
  end

  describe "#resume" do
    it "continues an interrupted run in the same process, skipping completed tasks" do
      q = queue
      %w[a b c].each { |n| q.add("Task #{n}") }
      expect do
        q.process do |task|
          task.track_cost(1)
          raise Interrupt if task.task_id == "task-b"
        end
      end.to raise_error(Interrupt)
      expect(q.tasks.map(&:status)).to eq(%w[completed running pending])
      ran = []
      q.resume { |task| ran << task.task_id }
      expect(ran).to eq(%w[task-b task-c])
      expect(q.total_spent).to eq(2.0)
    end

    it "does nothing when everything is done" do
      q = queue
      q.add("Only")
      q.process { :ok }
      ran = []
      q.resume { |task| ran << task }
      expect(ran).to eq([])
    end
  end

  describe "#checkpoint!" do
    it "saves the running task's session and the queue" do
      q = queue(name: "saver")
      q.add("Long")
      q.process do |task|
        task.track_cost(0.5)
        q.checkpoint!
        expect(MASTER::SessionPersistence.load("long")).to include(budget: include(spent: 0.5))
        expect(MASTER::SessionPersistence.load("queue.saver")[:state][:tasks].first).to include(status: "running", spent: 0.5)
      end
    end

    it "is safe inside a trap handler while a callback runs" do
      q = queue(name: "trapped")
      q.add("Signalled")
      previous = trap("USR2") { q.checkpoint! }
      q.process do |task|
        session = task.session
        session.instance_variable_set(:@probe, true)
        task.track_cost(0.25)
        Process.kill("USR2", Process.pid)
        sleep 0.05 # the handler runs here, inside the task
        session.checkpoint(progress: 1)
      end
      expect(MASTER::SessionPersistence.checkpoints("signalled").size).to be >= 3
    ensure
      trap("USR2", previous || "DEFAULT")
    end
  end
end

RSpec.describe "Queue names and saved runs" do
  # Regression (issue 8): a queue with no name: shared its saved run with
  # every other program in the directory, and script B ran script A's
  # interrupted tasks with B's block.
  it "takes its name from the program, so another script never adopts this one's run" do
    other_processes!
    File.write("a.rb", <<~RUBY)
      q = MASTER::Queue.new(handle_signals: true)
      q.add("Paid step one")
      q.add("Paid step two")
      q.process { |task| Process.kill(:INT, Process.pid) if task.task_id == "paid-step-two"; sleep 0.1 }
    RUBY
    _out, _err, status = Open3.capture3(RbConfig.ruby, "-I", StoreHelpers::LIB, "-rmaster", "a.rb")
    expect(status).not_to be_success
    expect(MASTER::SessionPersistence.load("queue.a")).to include(status: "running")
    File.write("b.rb", <<~RUBY)
      ran = []
      q = MASTER::Queue.new
      q.add("Cheap step")
      q.process { |task| ran << task.task_id }
      puts ran.inspect
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-I", StoreHelpers::LIB, "-rmaster", "b.rb")
    expect(status).to be_success, err
    expect(out).to eq("[\"cheap-step\"]\n")
    expect(MASTER::SessionPersistence.load("queue.a")).to include(status: "running")
  end

  it "takes a name in any script, and resumes by it" do
    q = MASTER::Queue.new(name: "夜間バッチ")
    q.add("一")
    expect { q.process { raise Interrupt } }.to raise_error(Interrupt)
    again = MASTER::Queue.new(name: "夜間バッチ")
    ran = []
    again.resume { |task| ran << task.task_id }
    expect(ran).to eq(["一"])
  end

  it "refuses a saved run whose tasks are not the ones added, running nothing" do
    first = MASTER::Queue.new(name: "shared")
    first.add("Old task")
    first.add("Other old task")
    expect { first.process { |_task| raise Interrupt } }.to raise_error(Interrupt)
    second = MASTER::Queue.new(name: "shared")
    second.add("New task")
    ran = []
    expect { second.process { |task| ran << task } }
      .to raise_error(MASTER::QueueMismatchError,
                      /queue "shared" has an interrupted run saved \(2 tasks, 0 done\).*saved only: old-task, other-old-task.*added only: new-task.*nothing was run.*discard_saved_run/)
    expect(ran).to eq([])
    expect(second.discard_saved_run).to be(true)
    second.process { |task| ran << task.task_id }
    expect(ran).to eq(["new-task"])
  end
end

RSpec.describe "Queue across processes" do
  CHILD = <<~'RUBY'
    $stdout.sync = true
    queue = MASTER::Queue.new(budget: 10.0, name: "nightly"%OPTIONS%)
    %w[one two three four five].each { |n| queue.add("Task #{n}", budget: 2.0) }
    %SIGNALS%
    queue.process do |task|
      task.track_cost(0.5)
      puts "ran #{task.task_id}"
      sleep 30 if task.task_id == "task-three"
      :ok
    end
  RUBY

  RESUMER = <<~'RUBY'
    queue = MASTER::Queue.new(budget: 10.0, name: "nightly")
    queue.resume do |task|
      task.track_cost(0.5)
      puts "ran #{task.task_id}"
    end
    puts "total #{queue.total_spent}"
  RUBY

  def interrupt_child(signal, signals: "", options: "")
    reader, writer = IO.pipe
    pid = spawn_ruby(CHILD.sub("%SIGNALS%", signals).sub("%OPTIONS%", options), out: writer)
    writer.close
    lines = []
    until (line = reader.gets).nil? || line.start_with?("ran task-three")
      lines << line
    end
    Process.kill(signal, pid)
    status = Process.wait2(pid).last
    [lines + [line] + reader.read.lines, status]
  end

  # A new process resumes the queue: only the unfinished tasks run, and
  # the money spent before carries over.
  def expect_resume_to_run_the_rest
    out, err, status = run_ruby(RESUMER)
    expect(status).to be_success, err
    expect(out.lines.map(&:chomp)).to eq(["ran task-three", "ran task-four", "ran task-five", "total 3.0"])
  end

  it "Ctrl-C with the seed's trap, then resume in a new process runs only the unfinished tasks" do
    lines, status = interrupt_child("INT", signals: SeedSnippets["Graceful Shutdown"].first.code)
    expect(status.exitstatus).to eq(0)
    expect(lines.join).to include("ran task-one", "ran task-two", "ran task-three", "Gracefully shutting down...")
    expect(lines.join).not_to include("task-four")
    expect_resume_to_run_the_rest
  end

  it "TERM with the built-in handler (handle_signals: true) does the same" do
    lines, status = interrupt_child("TERM", options: ", handle_signals: true")
    expect(status.termsig).to eq(Signal.list["TERM"])
    expect(lines.join).not_to include("task-four")
    expect_resume_to_run_the_rest
  end

  it "process with auto_resume continues the interrupted run" do
    interrupt_child("INT", signals: SeedSnippets["Graceful Shutdown"].first.code)
    out, err, = run_ruby(RESUMER.sub("queue.resume", "queue.process"))
    expect(out.lines.first).to eq("ran task-three\n"), err
  end
end
