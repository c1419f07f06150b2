# frozen_string_literal: true

# Real processes: resume in a second Ruby, a writer killed with SIGKILL, two
# writers on one task.
RSpec.describe "Across processes" do
  before { files_only!("kills writer processes of the file store") }

  describe "resuming in a new process" do
    before do
      _out, err, status = run_ruby(<<~RUBY)
        s = MASTER::SessionRecovery.new(task_id: "job", budget: 5.0)
        s.track_cost(1.25)
        s.checkpoint(progress: 42, items_total: 100, data: { done: %w[a b] })
      RUBY
      expect(status).to be_success, err
    end

    it "carries progress, budget and data over with auto_resume, calling on_resume" do
      out, err, status = run_ruby(<<~RUBY)
        s = MASTER::SessionRecovery.new(task_id: "job", budget: 5.0,
          on_resume: ->(state) { puts "resumed at \#{state[:progress]}" })
        puts s.progress, s.budget_spent, s.restore[:data].inspect
      RUBY
      expect(status).to be_success, err
      expect(out.lines.map(&:chomp)).to eq(["resumed at 42", "42", "1.25", '{:done=>["a", "b"]}'])
    end

    it "starts from zero with auto_resume: false" do
      out, _err, status = run_ruby('puts MASTER::SessionRecovery.new(task_id: "job", auto_resume: false).progress')
      expect(status).to be_success
      expect(out).to eq("0\n")
    end

    it "starts from zero with MASTER_AUTO_RESUME=false" do
      out, _err, = run_ruby('puts MASTER::SessionRecovery.new(task_id: "job").progress', env: { "MASTER_AUTO_RESUME" => "false" })
      expect(out).to eq("0\n")
    end

    it "resumes after Ctrl-C, at the last checkpoint" do
      reader, writer = IO.pipe
      pid = spawn_ruby(<<~RUBY, out: writer)
        $stdout.sync = true
        s = MASTER::SessionRecovery.new(task_id: "interrupted", checkpoint_on_items: 5, checkpoint_interval: nil)
        1.upto(1_000_000) { |i| s.tick; puts i if i == 23; sleep 0.001 if i > 23 }
      RUBY
      writer.close
      expect(reader.gets).to eq("23\n")
      Process.kill("INT", pid)
      _, status = Process.wait2(pid)
      expect(status).not_to be_success
      resumed = MASTER::SessionRecovery.new(task_id: "interrupted")
      expect(resumed.progress).to be >= 20
      expect(resumed.progress % 5).to eq(0)
    end
  end

  it "a writer killed with SIGKILL at random moments leaves the newest complete checkpoint (bin/stress, short)" do
    rounds = ENV.fetch("CRASH_ROUNDS", "20")
    out, err, status = Open3.capture3(File.expand_path("../bin/stress", __dir__), "--rounds", rounds, "--quiet",
                                      "--sizes", "1,1000,20000", "--dir", Dir.pwd)
    expect(status).to be_success, out + err
    expect(out).to match(/#{rounds} rounds .*: \d+ checkpoints acknowledged, .* 0 failures/)
  end

  it "two processes checkpointing one task never share a number" do
    writer = <<~RUBY
      s = MASTER::SessionRecovery.new(task_id: "shared", max_checkpoints: 0, auto_resume: false)
      40.times { |i| s.checkpoint(progress: i, data: { pid: Process.pid, i: i }) }
    RUBY
    pids = Array.new(2) { spawn_ruby(writer, err: $stderr) }
    pids.each { |pid| expect(Process.wait2(pid).last).to be_success }
    numbers = MASTER::SessionPersistence.checkpoints("shared")
    expect(numbers).to eq((1..80).to_a)
    writers = numbers.map { |n| MASTER::SessionPersistence.read("shared", n)[:state][:pid] }
    expect(writers.tally.values).to eq([40, 40])
  end
end
