# frozen_string_literal: true

RSpec.describe "async: true" do
  def session(**options)
    MASTER::SessionRecovery.new(task_id: "async", async: true, max_checkpoints: 0, **options)
  end

  it "returns once the state is captured; flush waits until it is durable" do
    s = session
    data = { items: %w[a b] }
    state = s.checkpoint(progress: 2, data: data)
    expect(state).to include(checkpoint: nil, progress: 2, data: { items: %w[a b] })
    data[:items] << "changed after the call" # the captured state is a copy
    expect(s.flush).to eq(1)
    expect(read_checkpoint("async", 1)["state"]).to eq("items" => %w[a b])
  end

  it "writes every checkpoint, in order" do
    s = session
    100.times { |i| s.checkpoint(progress: i, data: { i: i }) }
    expect(s.flush).to eq(100)
    expect((1..100).map { |n| read_checkpoint("async", n)["state"]["i"] }).to eq((0..99).to_a)
  end

  it "calls on_checkpoint when the state is captured", :gc_stress do
    seen = []
    s = session(on_checkpoint: ->(state) { seen << state[:progress] })
    s.checkpoint(progress: 5)
    expect(seen).to eq([5])
    s.flush
  end

  it "lets complete!, restore, reset and checkpoint_exists? see every queued checkpoint" do
    s = session
    10.times { |i| s.checkpoint(progress: i) }
    expect(s.checkpoint_exists?).to be(true)
    expect(s.restore[:checkpoint]).to eq(10)
    expect(s.complete![:checkpoint]).to eq(11)
    s.checkpoint(progress: 99)
    s.reset
    expect(task_stored?("async")).to be(false)
  end

  # Regression (issue 8): after a background write failed, the checkpoints
  # captured behind it, and the one of the call that reported the error,
  # were dropped.
  it "reports a background write error, keeps every captured checkpoint and writes them once it can" do
    FileUtils.mkdir_p(store_dir)
    s = session(auto_resume: false, max_checkpoints: 0)
    FileUtils.rm_rf(store_dir)
    File.write(store_dir, "not a directory")
    s.checkpoint(progress: 1)
    expect do
      s.flush
    end.to raise_error(MASTER::StoreError, /master_checkpoints.*the 1 captured checkpoint\(s\) not yet written are kept/)
    expect { s.flush }.to raise_error(MASTER::StoreError, /the 1 captured/)
    s.checkpoint(progress: 2) # queued behind the failed one, which is tried again
    expect { s.flush }.to raise_error(MASTER::StoreError, /the 2 captured/)
    File.delete(store_dir)
    expect(s.flush).to eq(2)
    expect(checkpoint_files("async").map { |f| JSON.parse(File.read(f))["progress"]["items_processed"] }).to eq([1, 2])
  end

  it "exits non-zero when the checkpoints captured cannot be written at exit" do
    files_only!("blocks the file store's directory")
    _out, err, status = run_ruby(<<~RUBY)
      s = MASTER::SessionRecovery.new(task_id: "exiting", async: true)
      File.write(".master_checkpoints", "in the way")
      s.checkpoint(progress: 1)
    RUBY
    expect(status.exitstatus).to eq(1)
    expect(err).to match(/could not write the last checkpoints of exiting: .*the 1 captured checkpoint/)
  end

  it "flushes at process exit" do
    _out, err, status = run_ruby(<<~RUBY)
      s = MASTER::SessionRecovery.new(task_id: "exiting", async: true, max_checkpoints: 0)
      50.times { |i| s.checkpoint(progress: i, data: { blob: "x" * 10_000 }) }
    RUBY
    expect(status).to be_success, err
    expect(checkpoint_numbers("exiting").size).to eq(50)
  end

  it "works in a forked child" do
    other_processes!
    s = session
    s.checkpoint(progress: 1)
    pid = fork do
      s.checkpoint(progress: 2)
      exit!(s.flush.is_a?(Integer) ? 0 : 1)
    end
    expect(Process.wait2(pid).last).to be_success
    s.checkpoint(progress: 3)
    s.flush
    expect(checkpoint_numbers("async").size).to eq(3)
  end
end
