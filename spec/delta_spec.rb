# frozen_string_literal: true

# Delta checkpoints (README "Delta checkpoints"): a large state is saved as
# its change since the checkpoint before; every reader sees the whole state.
RSpec.describe "Delta checkpoints" do
  # The user's document's pattern, with results long enough to pass the
  # 16 KiB threshold after a few hundred items.
  def item(i)
    "app/models/generated/file_#{i.to_s.rjust(6, '0')}.rb"
  end

  def results(count)
    Array.new(count) { |i| item(i) }
  end

  def run_job(session, from:, to:, results: [])
    session.checkpoint(data: { processed: results }) if results.empty?
    (from...to).each do |i|
      results << item(i)
      session.tick
    end
    results
  end

  def session(**options)
    MASTER::SessionRecovery.new(task_id: "long", auto_resume: false, max_checkpoints: 0, **options)
  end

  # Whether checkpoint `number` is stored as a delta (its text has no state).
  def delta?(number)
    text = stored_text("long", number)
    doc = JSON.parse(text)
    expect(doc.key?("state") ^ doc.key?("delta")).to be(true)
    doc.key?("delta")
  end

  it "saves the document's growing list as deltas, and every reader gets the whole state" do
    s = session(checkpoint_on_items: 10)
    done = run_job(s, from: 0, to: 2_000)
    numbers = MASTER::SessionPersistence.checkpoints("long")
    expect(numbers.size).to eq(201)
    expect(s.restore).to include(checkpoint: 201, progress: 2_000)
    expect(s.restore[:data]).to eq(processed: done)
    expect(MASTER::SessionPersistence.load("long")[:state]).to eq(processed: done)
    # Every checkpoint reads back as what it saved: its first 10 × (n - 1) results.
    [1, 2, 50, 120, 200, 201].each do |n|
      expect(MASTER::SessionPersistence.read("long", n)[:state]).to eq(processed: results(10 * (n - 1)))
    end
    next if StoreHelpers::KIND == "memory" # keeps no text to look at

    expect(delta?(1)).to be(false)
    expect(delta?(201)).to be(true)
    doc = JSON.parse(stored_text("long", 201))
    expect(doc["delta"]).to include("base" => 200, "full" => be_between(1, 200))
    expect(doc["delta"]["ops"].map { |op| op["insert"] }.join).to include(item(1_999))
    expect(stored_text("long", 201).bytesize).to be < 2_000
  end

  it "keeps the document's format, state and all, for states below the threshold" do
    next stored_text_reachable! if StoreHelpers::KIND == "memory"

    s = session
    s.checkpoint(data: { processed: results(50) })
    s.checkpoint(data: { processed: results(60) })
    doc = JSON.parse(stored_text("long", 2))
    expect(doc).to include("state" => { "processed" => results(60) })
    expect(doc).not_to have_key("delta")
  end

  it "writes whole when delta_threshold is 0 or nil, and refuses a bad threshold naming it" do
    [0, nil].each do |off|
      MASTER::SessionPersistence.remove("long")
      s = session(delta_threshold: off)
      5.times { |i| s.checkpoint(data: { processed: results(1_000 + i) }) }
      expect(MASTER::SessionPersistence.read("long", 5)[:state]).to eq(processed: results(1_004))
      expect(delta?(5)).to be(false) unless StoreHelpers::KIND == "memory"
    end
    expect { session(delta_threshold: -1) }
      .to raise_error(ArgumentError, /option `delta_threshold` must be a whole number .*got -1/)
    expect { session(delta_threshold: "16k") }.to raise_error(ArgumentError, /delta_threshold/)
  end

  it "saves a field changing at the top beside a growing list as two small changes" do
    next stored_text_reachable! if StoreHelpers::KIND == "memory"

    s = session
    done = results(2_000)
    3.times do |i|
      done << item(2_000 + i)
      s.checkpoint(data: { current_file: item(2_000 + i), count: done.size, processed: done })
    end
    doc = JSON.parse(stored_text("long", 3))
    expect(doc["delta"]["ops"].sum { |op| op["insert"].bytesize }).to be < 200
    expect(MASTER::SessionPersistence.read("long", 3)[:state]).to eq(current_file: item(2_002), count: 2_003,
                                                                     processed: done)
  end

  it "writes a message-only checkpoint of a large state in a few hundred bytes" do
    s = session
    s.checkpoint(data: { processed: results(20_000) })
    state = s.checkpoint(message: "halfway")
    expect(MASTER::SessionPersistence.read("long", state[:checkpoint])).to include(
      message: "halfway", state: { processed: results(20_000) }
    )
    expect(stored_text("long", state[:checkpoint]).bytesize).to be < 1_000 unless StoreHelpers::KIND == "memory"
  end

  it "rolls back, retries and completes with the whole state" do
    s = session
    4.times { |i| s.checkpoint(data: { processed: results(1_000 + i) }) }
    rolled = s.rollback
    expect(rolled[:data]).to eq(processed: results(1_002))
    s.checkpoint(data: { processed: results(1_010) })
    s.checkpoint_error(RuntimeError.new("boom"), "item")
    expect(s.retry_from_checkpoint[:data]).to eq(processed: results(1_010))
    s.checkpoint(data: { processed: results(1_011) })
    s.complete!
    expect(MASTER::SessionPersistence.load("long")).to include(status: "completed",
                                                               state: { processed: results(1_011) })
  end

  it "writes async checkpoints as deltas in order" do
    s = session(async: true)
    20.times { |i| s.checkpoint(data: { processed: results(1_000 + (10 * i)) }) }
    s.flush
    expect(s.restore[:data]).to eq(processed: results(1_190))
    expect(MASTER::SessionPersistence.read("long", 7)[:state]).to eq(processed: results(1_060))
  end

  it "keeps every checkpoint a kept one depends on when pruning" do
    s = session(max_checkpoints: 3)
    30.times { |i| s.checkpoint(data: { processed: results(1_000 + i) }) }
    numbers = MASTER::SessionPersistence.checkpoints("long")
    expect(numbers.last).to eq(30)
    numbers.each do |n|
      expect(MASTER::SessionPersistence.read("long", n)[:state]).to eq(processed: results(999 + n))
    end
  end

  it "falls back past a damaged link to the newest checkpoint whose chain is intact" do
    stored_text_reachable!
    s = session
    8.times { |i| s.checkpoint(progress: i + 1, data: { processed: results(1_000 + i) }) }
    expect((2..8).map { |n| delta?(n) }).to all(be(true))
    overwrite_checkpoint("long", 5, stored_text("long", 5).sub("\"base\":4", "\"base\":4 "))
    expect(session.restore).to include(checkpoint: 4, data: { processed: results(1_003) })
    expect(MASTER.logger.warnings.join).to include("broken at checkpoint 5")
    expect(session.checkpoint_valid?).to be(true)
    # The CLI's history marks the broken ones.
    other_processes!
    out, _err, status = Open3.capture3(RbConfig.ruby, File.expand_path("../bin/cli", __dir__),
                                       "checkpoint", "show", "long")
    expect(status).to be_success
    expect(out.scan(/damaged|broken/i).size).to be >= 4
  end

  it "survives kill -9 anywhere in a chain: what restore gives is a state some checkpoint saved" do
    other_processes!
    writer = <<~RUBY
      s = MASTER::SessionRecovery.new(task_id: "long", max_checkpoints: 5, checkpoint_on_items: 7)
      done = s.restore ? s.restore[:data][:processed] : []
      s.checkpoint(data: { processed: done })
      loop do
        done << "app/models/generated/file_\#{done.size.to_s.rjust(6, '0')}.rb"
        s.tick
      end
    RUBY
    5.times do |round|
      pid = spawn_ruby(writer)
      sleep(0.6 + (0.2 * round))
      Process.kill(:KILL, pid)
      Process.wait(pid)
      restored = session.restore
      next unless restored

      done = restored[:data][:processed]
      expect(done).to eq(results(done.size))
      expect(restored[:progress]).to eq(done.size)
    end
    expect(session.restore[:data][:processed].size).to be > 1_000
  end

  it "refuses a document with a member named delta through SessionPersistence.save" do
    expect { MASTER::SessionPersistence.save("long", { "delta" => 1, "state" => {} }) }
      .to raise_error(ArgumentError, /data\[:delta\] is written by the store itself/)
    expect(task_stored?("long")).to be(false)
  end
end
