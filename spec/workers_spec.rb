# frozen_string_literal: true

# Many workers on one queue: threads in a process (`workers:`), processes
# (and, on PostgreSQL, machines) sharing a queue by name, leases, takeover,
# fencing and cancellation (SPEC "Many workers").
RSpec.describe "Queue workers" do
  def queue(**options)
    MASTER::Queue.new(name: "shared", **options)
  end

  # A Ruby program that runs the queue "shared" over TASKS, appending
  # "<task> <pid>" to ran.log each time a task's block starts; at the end
  # it prints each task's status and the queue's total_spent.
  def worker_program(tasks, body, options: "")
    <<~RUBY
      $stdout.sync = true
      queue = MASTER::Queue.new(name: "shared"#{options})
      #{tasks.inspect}.each { |name| queue.add(name) }
      queue.process do |task|
        File.open("ran.log", "a") { |f| f.flock(File::LOCK_EX); f.puts("\#{task.task_id} \#{Process.pid}") }
        #{body}
      end
      puts "done " + queue.tasks.map { |t| "\#{t.task_id}=\#{t.status}" }.join(",")
      puts "total \#{queue.total_spent}"
    RUBY
  end

  def ran
    File.exist?("ran.log") ? File.readlines("ran.log", chomp: true).map(&:split) : []
  end

  def wait_for_line(io, pattern, timeout: 30)
    wait_for(timeout: timeout) do
      line = io.gets
      line if line&.match?(pattern)
    end
  end

  it "runs up to `workers` tasks at once in one process, each exactly once" do
    q = queue(workers: 4)
    names = Array.new(12) { |i| "task #{i}" }
    names.each { |name| q.add(name) }
    running = 0
    most = 0
    runs = Hash.new(0)
    lock = Mutex.new
    q.process do |task|
      lock.synchronize do
        runs[task.task_id] += 1
        running += 1
        most = [most, running].max
      end
      sleep 0.05
      task.checkpoint(progress: 1)
      lock.synchronize { running -= 1 }
    end
    expect(runs.values).to all(eq(1))
    expect(runs.size).to eq(12)
    expect(most).to be_between(2, 4)
    expect(q.tasks.map(&:status).uniq).to eq(["completed"])
  end

  it "refuses a bad worker count or lease" do
    expect { queue(workers: 0) }.to raise_error(ArgumentError, /workers.*1 to 256.*got 0/)
    expect { queue(lease: 0.001) }.to raise_error(ArgumentError, /lease.*0.05 to 86400/)
  end

  it "adds a task once: the same description again is the same task" do
    q = queue
    first = q.add("Refactor users")
    expect(q.add("Refactor users")).to be(first)
    expect(q.tasks.size).to eq(1)
  end

  it "never runs a task cancelled before it started, and goes on" do
    q = queue
    %w[one two three].each { |name| q.add(name) }
    expect(q.cancel("two")).to be(true)
    ran = []
    q.process { |task| ran << task.task_id }
    expect(ran).to eq(%w[one three])
    expect(q.tasks.map(&:status)).to eq(%w[completed cancelled completed])
    expect(q.cancel("one")).to be(false) # finished: nothing to stop
  end

  it "stops a running task at its next tick with CancelledError, recorded as cancelled" do
    q = queue(lease: 0.3)
    q.add("long")
    q.add("next")
    seen = nil
    q.process do |task|
      next if task.task_id == "next"

      q.cancel("long")
      begin
        loop { task.tick }
      rescue MASTER::CancelledError => e
        seen = e
        raise
      end
    end
    expect(seen.task_id).to eq("long")
    expect(q.tasks.map(&:status)).to eq(%w[cancelled completed])
    expect(MASTER::SessionPersistence.load("long")).to include(status: "failed")
  end

  context "across processes" do
    before { other_processes! }

    it "two processes share one queue: every task runs exactly once" do
      tasks = Array.new(16) { |i| "task #{i}" }
      program = worker_program(tasks, "sleep 0.02; task.checkpoint(progress: 1)", options: ", workers: 2")
      outs = Array.new(2) { |i| File.open("out#{i}.log", "w") }
      pids = outs.map { |out| spawn_ruby(program, out: out, err: out) }
      statuses = pids.map { |pid| Process.wait2(pid).last }
      logs = Array.new(2) { |i| File.read("out#{i}.log") }
      expect(statuses).to all(be_success), logs.join("\n")
      expect(ran.map(&:first).sort).to eq(tasks.map { |t| MASTER::Queue.slug(t) }.sort)
      expect(ran.map(&:last).uniq.size).to be >= 1
      logs.each { |log| expect(log).to match(/done (task-\d+=completed,?){16}/) }
    end

    it "takes over a killed worker's task once its lease expires, resuming its checkpoint" do
      body = <<~RUBY
        if task.session.progress.zero?
          task.checkpoint(progress: 1, data: { step: "first half" })
          puts "half"
          sleep
        end
        task.checkpoint(progress: 2, data: { step: "second half", resumed_from: task.session.restore[:checkpoint] })
      RUBY
      program = worker_program(["slow"], body, options: ", lease: 0.5")
      reader, writer = IO.pipe
      first = spawn_ruby(program, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /half/)
      Process.kill(:KILL, first)
      Process.wait(first)
      out, err, status = run_ruby(program)
      expect(status).to be_success, err
      expect(out).to include("done slow=completed")
      expect(ran.map(&:first)).to eq(%w[slow slow])
      state = MASTER::SessionPersistence.load("slow")
      expect(state).to include(status: "completed")
      expect(MASTER::SessionRecovery.new(task_id: "slow").restore[:data]).to include(step: "second half")
    end

    it "fences a worker paused past its lease: it writes nothing more, and nothing is spent twice" do
      body = <<~RUBY
        task.track_cost(0.5)
        task.checkpoint(progress: 1)
        if ENV["PAUSE"]
          puts "paused"
          Process.kill(:STOP, Process.pid)
          begin
            task.checkpoint(progress: 99)
          rescue MASTER::LeaseLostError => e
            puts "fenced: \#{e.task_id}"
            raise
          end
        end
      RUBY
      program = worker_program(["job"], body, options: ", lease: 0.5")
      reader, writer = IO.pipe
      paused = spawn_ruby(program, env: { "PAUSE" => "1" }, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /paused/)
      wait_for { File.read("/proc/#{paused}/stat").split[2] == "T" }
      sleep 0.6 # past the lease
      out, err, status = run_ruby(program)
      expect(status).to be_success, err
      expect(out).to include("done job=completed")
      Process.kill(:CONT, paused)
      expect(wait_for_line(reader, /fenced: job/)).to include("job")
      Process.wait(paused)
      numbers = MASTER::SessionPersistence.checkpoints("job")
      progress = numbers.map { |n| MASTER::SessionPersistence.read("job", n).dig(:progress, :items_processed) }
      expect(progress).not_to include(99)
      summary = MASTER::SessionPersistence.summary("job")
      expect(summary).to include(status: "completed")
      expect(summary.dig(:budget, :spent)).to eq(1.0) # each holder's 0.5, no more: the fenced one wrote nothing
    end

    # Worker P pauses (SIGSTOP) holding "job" after its first checkpoint
    # ($0.50); Q takes it over at its lease, resumes that checkpoint and
    # writes the second ($0.25 more), then completes it, or (KILL) dies.
    def pause_program
      body = <<~RUBY
        case task.session.progress
        when 0
          task.track_cost(0.5)
          task.checkpoint(progress: 1)
          if ENV["ROLE"] == "P"
            puts "paused"
            Process.kill(:STOP, Process.pid)
            task.checkpoint(progress: 99) # past the lease: LeaseLostError
          end
        when 1
          task.track_cost(0.25)
          task.checkpoint(progress: 2)
          Process.kill(:KILL, Process.pid) if ENV["KILL"]
        else
          puts "resumed at \#{task.session.progress} with \#{task.spent}"
          task.track_cost(0.125)
          task.checkpoint(progress: 3)
        end
      RUBY
      worker_program(["job"], body, options: ", lease: 0.5")
    end

    def pause_p(reader, writer)
      paused = spawn_ruby(pause_program, env: { "ROLE" => "P" }, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /paused/)
      wait_for { File.read("/proc/#{paused}/stat").split[2] == "T" }
      sleep 0.6 # past the lease
      paused
    end

    it "counts in total_spent what the worker that took its task over spent" do
      reader, writer = IO.pipe
      paused = pause_p(reader, writer)
      out, err, status = run_ruby(pause_program)
      expect(status).to be_success, err
      expect(out).to include("done job=completed", "total 0.75")
      Process.kill(:CONT, paused)
      # P's own session said $0.50; the store says Q brought it to $0.75.
      expect(wait_for_line(reader, /total/)).to eq("total 0.75\n")
      Process.wait(paused)
      expect(MASTER::SessionPersistence.summary("job").dig(:budget, :spent)).to eq(0.75)
    end

    it "resumes the newest checkpoint when a worker takes back a task it had lost" do
      reader, writer = IO.pipe
      paused = pause_p(reader, writer)
      _, err, status = run_ruby(pause_program, env: { "KILL" => "1" })
      expect(status.termsig).to eq(9), err
      Process.kill(:CONT, paused)
      # Not its own session (progress 1, $0.50): Q's checkpoint, step and cost.
      expect(wait_for_line(reader, /resumed/)).to eq("resumed at 2 with 0.75\n")
      expect(wait_for_line(reader, /total/)).to eq("total 0.875\n")
      Process.wait(paused)
      numbers = MASTER::SessionPersistence.checkpoints("job")
      steps = numbers.map { |n| MASTER::SessionPersistence.read("job", n).dig(:progress, :items_processed) }
      expect(steps).to eq([1, 2, 3, 3]) # each step once, then the completion
      expect(MASTER::SessionPersistence.summary("job").dig(:budget, :spent)).to eq(0.875)
    end

    # Worker A spends the whole budget in "a" and keeps holding it (its
    # lease far from over); B, running "b" meanwhile, waits a third of a
    # lease and a second more, then tracks a cost and looks for more work.
    def budget_program(enforce)
      body = <<~RUBY
        if task.task_id == "a"
          puts "holding"
          sleep 0.01 until File.exist?("go")
          task.track_cost(1.0)
          task.checkpoint(progress: 1)
          File.write("spent", "")
          sleep 4
        elsif task.task_id == "b"
          puts "b running"
          sleep 0.01 until File.exist?("spent")
          sleep 3
          begin
            task.track_cost(0.01)
          rescue MASTER::BudgetExceededError
            puts "b stopped"
            raise
          end
        end
      RUBY
      worker_program(%w[a b c], body, options: ", lease: 6, budget: 1.0, enforce_budget: #{enforce}")
    end

    def budget_workers(enforce)
      outs = Array.new(2) { IO.pipe }
      a = spawn_ruby(budget_program(enforce), out: outs[0][1], err: outs[0][1])
      outs[0][1].close
      wait_for_line(outs[0][0], /holding/)
      b = spawn_ruby(budget_program(enforce), out: outs[1][1], err: outs[1][1])
      outs[1][1].close
      wait_for_line(outs[1][0], /b running/)
      File.write("go", "")
      [a, b].each { |pid| Process.wait(pid) }
      outs.map { |reader, _| reader.read }
    end

    it "sees another worker's spending a third of a lease late at most, before it claims a task" do
      _, b_out = budget_workers(false)
      # B saw A's $1.00 at its next claim: "c" was never started, though
      # A's lease on "a" (taken before B started) had not run out.
      expect(ran.map(&:first)).to eq(%w[a b])
      expect(b_out).to include("total 1.01")
    end

    it "sees another worker's spending a third of a lease late at most, while it runs a task" do
      _, b_out = budget_workers(true)
      expect(b_out).to include("b stopped") # its track_cost saw A's $1.00: over the enforced budget
      expect(ran.map(&:first)).to eq(%w[a b])
    end

    it "shows which worker holds a running task in bin/cli checkpoint list and show" do
      program = worker_program(["held"], "task.checkpoint(progress: 1); puts 'holding'; sleep", options: ", lease: 30")
      reader, writer = IO.pipe
      pid = spawn_ruby(program, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /holding/)
      cli = File.expand_path("../bin/cli", __dir__)
      out, err, status = Open3.capture3(RbConfig.ruby, cli, "checkpoint", "list", "--json")
      expect(status).to be_success, err
      row = JSON.parse(out).find { |r| r["task_id"] == "held" }
      expect(row["worker"]).to include("pid" => pid, "queue" => "shared", "worker" => "w1", "lease_expired" => false)
      text, = Open3.capture3(RbConfig.ruby, cli, "checkpoint", "show", "held")
      expect(text).to match(/Worker: .* pid #{pid} \(w1 of queue shared\) since .*, lease until /)
    ensure
      Process.kill(:KILL, pid) if pid
      Process.wait(pid) if pid
    end

    it "cancels a task another process runs" do
      body = <<~RUBY
        if task.task_id == "spin"
          puts "spinning"
          loop { task.tick; sleep 0.01 }
        end
      RUBY
      program = worker_program(%w[spin after], body, options: ", lease: 0.3")
      reader, writer = IO.pipe
      pid = spawn_ruby(program, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /spinning/)
      cli = File.expand_path("../bin/cli", __dir__)
      out, err, status = Open3.capture3(RbConfig.ruby, cli, "checkpoint", "cancel", "spin")
      expect(status).to be_success, err
      expect(out).to include("spin")
      expect(wait_for_line(reader, /done/)).to include("spin=cancelled", "after=completed")
      Process.wait(pid)
    end

    it "on TERM with handle_signals, releases its claims so another worker resumes at once" do
      body = <<~RUBY
        task.checkpoint(progress: 1)
        if ENV["FIRST"]
          puts "working"
          sleep
        end
      RUBY
      program = worker_program(["job"], body, options: ", lease: 60, handle_signals: true")
      reader, writer = IO.pipe
      first = spawn_ruby(program, env: { "FIRST" => "1" }, out: writer, err: writer)
      writer.close
      wait_for_line(reader, /working/)
      Process.kill(:TERM, first)
      Process.wait(first)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      out, err, status = run_ruby(program.sub("queue.process", "queue.resume"))
      expect(status).to be_success, err
      expect(out).to include("done job=completed")
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 30 # not the 60 s lease
    end
  end
end
