# frozen_string_literal: true

require "timeout"

# Many processes and threads on one store and one task: no numbering
# collision, no lost metadata update, no reader ever sees a partial file,
# no deadlock (every wait is bounded). The processes share the file store,
# or the PostgreSQL one when the suite runs on it (MASTER_TEST_STORE); the
# threads run on every store.
RSpec.describe "Concurrent use of one store" do
  WRITES = 150

  WRITER_CODE = <<~RUBY.freeze
    s = MASTER::SessionRecovery.new(task_id: "contended", max_checkpoints: 0, auto_resume: false, logger: nil)
    #{WRITES}.times do |i|
      s.track_cost(0.01)
      s.checkpoint(progress: i, data: { pid: Process.pid, i: i, pad: "x" * (i * 97 % 5000) })
    end
  RUBY

  # Reads in a loop until told to stop; any damaged file it meets, or any
  # error, ends it with a failure status.
  READER_CODE = <<~'RUBY'
    require "json"
    class Strict
      def warn(message) = abort("reader saw: #{message}")
    end
    cli = ENV.fetch("CLI")
    reads = 0
    until File.exist?("stop")
      session = MASTER::SessionRecovery.new(task_id: "contended", auto_resume: false, logger: Strict.new)
      state = session.restore
      abort("inconsistent state #{state[:data]}") if state && state[:progress] != state[:data][:i]
      MASTER::SessionPersistence.list
      if ENV["WITH_CLI"] && (reads % 5).zero?
        system(RbConfig.ruby, cli, "checkpoint", "list", "--json", out: File::NULL, exception: true)
      end
      reads += 1
    end
    puts reads
  RUBY

  def wait_all(pids, seconds)
    Timeout.timeout(seconds) { pids.map { |pid| Process.wait2(pid).last } }
  rescue Timeout::Error
    pids.each do |pid|
      Process.kill("KILL", pid)
    rescue StandardError
      nil
    end
    raise "deadlock? processes still running after #{seconds}s"
  end

  it "4 writer and 2 reader processes on one task" do
    other_processes! # the file store, or PostgreSQL: the memory store is this process's own
    cli = File.expand_path("../bin/cli", __dir__)
    reader_outs = Array.new(2) { Tempfile.new("reader") }
    readers = reader_outs.each_with_index.map do |out, i|
      spawn_ruby(READER_CODE, env: { "CLI" => cli, "WITH_CLI" => (i.zero? ? "1" : nil) }, out: out.path, err: $stderr)
    end
    writers = Array.new(4) { spawn_ruby(WRITER_CODE, err: $stderr) }
    expect(wait_all(writers, 120)).to all(be_success)
    File.write("stop", "")
    expect(wait_all(readers, 60)).to all(be_success)
    expect(reader_outs.map { |out| File.read(out.path).to_i }).to all(be > 0)

    numbers = MASTER::SessionPersistence.checkpoints("contended")
    expect(numbers).to eq((1..(4 * WRITES)).to_a)
    per_writer = numbers.map { |n| MASTER::SessionPersistence.read("contended", n)[:state][:pid] }.tally
    expect(per_writer.values).to eq([WRITES] * 4)
    summary = MASTER::SessionPersistence.summary("contended")
    expect(summary).to include(latest_checkpoint: 4 * WRITES, checkpoints: 4 * WRITES)
    listed = MASTER::SessionPersistence.list.find { |r| r[:task_id] == "contended" }
    expect(listed).to include(latest_checkpoint: 4 * WRITES, checkpoints: 4 * WRITES)
    expect(MASTER::SessionRecovery.new(task_id: "contended", auto_resume: false).restore[:checkpoint]).to eq(4 * WRITES)
    next unless StoreHelpers.file_store?

    row = JSON.parse(File.read(File.join(store_dir, "index.json")))["tasks"]["contended"]
    expect(row).to include("latest_checkpoint" => 4 * WRITES, "checkpoints" => 4 * WRITES)
  end

  it "8 threads writing through one session and through separate ones" do
    # Ticks only count here: with the default every-10-items trigger, a slow
    # disk lets ten ticks pass one in-flight write and one tick writes a 201st.
    shared = MASTER::SessionRecovery.new(task_id: "threads", max_checkpoints: 0, checkpoint_on_items: 0)
    Timeout.timeout(120) do
      Array.new(8) do |t|
        Thread.new do
          own = MASTER::SessionRecovery.new(task_id: "threads", max_checkpoints: 0, auto_resume: false)
          25.times do |i|
            (i.even? ? shared : own).checkpoint(data: { thread: t, i: i })
            shared.tick
          end
        end
      end.each(&:join)
    end
    expect(MASTER::SessionPersistence.checkpoints("threads")).to eq((1..200).to_a)
    expect(shared.progress).to eq(200)
  end

  it "fork while another thread is checkpointing: the child's session works" do
    other_processes! # the children's checkpoints must reach the parent's store
    session = MASTER::SessionRecovery.new(task_id: "forked", max_checkpoints: 0)
    big = { items: Array.new(50_000) { |i| "item-#{i}" } }
    busy = Thread.new { 40.times { session.checkpoint(data: big) } }
    children = Array.new(10) do |i|
      sleep 0.01
      fork do
        state = session.checkpoint(data: { child: i })
        exit!(state[:checkpoint].is_a?(Integer) ? 0 : 1)
      end
    end
    expect(wait_all(children, 60)).to all(be_success)
    Timeout.timeout(60) { busy.join }
    numbers = MASTER::SessionPersistence.checkpoints("forked")
    expect(numbers).to eq((1..50).to_a)
    children_seen = numbers.map { |n| MASTER::SessionPersistence.read("forked", n)[:state][:child] }.compact
    expect(children_seen.sort).to eq((0..9).to_a)
  end
end
