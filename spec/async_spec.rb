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
    expect(File.exist?(task_dir("async"))).to be(false)
  end

  it "reports a background write error on the next call, once" do
    FileUtils.mkdir_p(store_dir)
    s = session(auto_resume: false)
    FileUtils.rm_rf(store_dir)
    File.write(store_dir, "not a directory")
    s.checkpoint(progress: 1)
    expect { s.flush }.to raise_error(MASTER::StoreError, /master_checkpoints/)
    expect(s.flush).to be_nil
    s.checkpoint(progress: 2)
    sleep 0.2
    expect { s.checkpoint(progress: 3) }.to raise_error(MASTER::StoreError)
  end

  it "flushes at process exit" do
    _out, err, status = run_ruby(<<~RUBY)
      s = MASTER::SessionRecovery.new(task_id: "exiting", async: true, max_checkpoints: 0)
      50.times { |i| s.checkpoint(progress: i, data: { blob: "x" * 10_000 }) }
    RUBY
    expect(status).to be_success, err
    expect(checkpoint_files("exiting").size).to eq(50)
  end

  it "works in a forked child" do
    s = session
    s.checkpoint(progress: 1)
    pid = fork do
      s.checkpoint(progress: 2)
      exit!(s.flush.is_a?(Integer) ? 0 : 1)
    end
    expect(Process.wait2(pid).last).to be_success
    s.checkpoint(progress: 3)
    s.flush
    expect(checkpoint_files("async").size).to eq(3)
  end
end
