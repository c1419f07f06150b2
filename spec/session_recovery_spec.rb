# frozen_string_literal: true

RSpec.describe MASTER::SessionRecovery do
  def session(task_id = "task", **options)
    described_class.new(task_id: task_id, **options)
  end

  describe ".new" do
    it "writes nothing until the first checkpoint" do
      session
      expect(store_empty?).to be(true)
    end

    it "accepts a Symbol task id as its name" do
      expect(session(:symbolic).task_id).to eq("symbolic")
    end

    it "takes the store from checkpoint_dir:, relative to the current directory" do
      s = session(checkpoint_dir: "elsewhere/checkpoints")
      s.checkpoint
      expect(s.checkpoint_dir).to eq(File.join(Dir.pwd, "elsewhere/checkpoints"))
      expect(File.exist?(File.join(Dir.pwd, "elsewhere/checkpoints/task/checkpoint_001.json"))).to be(true)
    end

    it "resumes progress, spent budget and retry count from the latest checkpoint" do
      first = session(budget: 5.0)
      first.track_cost(2.13)
      first.checkpoint(progress: 45, items_total: 100, data: { file: "a.rb" })
      first.checkpoint_error(RuntimeError.new("boom"))
      first.retry_from_checkpoint
      first.checkpoint

      again = session(budget: 5.0)
      expect(again.progress).to eq(45)
      expect(again.items_total).to eq(100)
      expect(again.budget_spent).to eq(2.13)
      expect(again.retries).to eq(1)
      expect(again.failures).to eq(1)
      expect(again.checkpoint[:data]).to eq(file: "a.rb")
    end

    it "starts from zero with auto_resume: false, numbering on after the existing files" do
      session.checkpoint(progress: 9)
      fresh = session(auto_resume: false)
      expect(fresh.progress).to eq(0)
      expect(fresh.checkpoint[:checkpoint]).to eq(2)
    end

    it "keeps the persisted budget when none is given" do
      session(budget: 3.0).tap { |s| s.increase_budget(2.0) }.checkpoint
      expect(session.budget_limit).to eq(5.0)
    end
  end

  describe "#checkpoint" do
    it "writes the seed's document" do
      s = session("refactor-users-module", budget: 5.0)
      s.track_cost(2.13)
      s.checkpoint(progress: 45, items_total: 100, data: { current_file: "app/models/user.rb" })
      doc = read_checkpoint("refactor-users-module", 1)
      expect(doc).to include(
        "task_id" => "refactor-users-module",
        "version" => "52.0",
        "progress" => { "items_processed" => 45, "items_total" => 100, "percentage" => 45.0 },
        "budget" => { "allocated" => 5.0, "spent" => 2.13, "remaining" => 2.87 },
        "state" => { "current_file" => "app/models/user.rb" }
      )
      expect(doc["timestamp"]).to match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/)
      expect(doc["metadata"]).to include("pid" => Process.pid, "hostname" => Socket.gethostname)
      expect(doc["metadata"]["user"]).to be_a(String)
    end

    it "returns the restored-state hash of the new checkpoint" do
      state = session(budget: 5.0).checkpoint(progress: 3, data: { "files" => [:a] }, message: "hi")
      expect(state).to include(task_id: "task", checkpoint: 1, status: "running", progress: 3,
                               message: "hi", data: { "files" => [:a] },
                               budget: { allocated: 5.0, spent: 0.0, remaining: 5.0 })
      expect(state[:timestamp]).to be_a(Time)
    end

    it "returns the timestamp the file records, in whole seconds" do
      s = session
      written = s.checkpoint
      expect(written[:timestamp]).to eq(s.restore[:timestamp])
      expect(written[:timestamp].usec).to eq(0)
      expect(written[:timestamp]).to eq(Time.iso8601(read_checkpoint("task", 1)["timestamp"]))
    end

    it "numbers files from 001 and carries omitted values over" do
      s = session
      s.checkpoint(progress: 1, items_total: 4, data: [1])
      state = s.checkpoint
      expect(state).to include(checkpoint: 2, progress: 1, items_total: 4, percentage: 25.0, data: [1])
      expect(checkpoint_numbers("task")).to eq([1, 2])
    end

    it "keeps only max_checkpoints files" do
      s = session(max_checkpoints: 3)
      5.times { |i| s.checkpoint(progress: i) }
      expect(checkpoint_numbers("task")).to eq([3, 4, 5])
    end

    # Regression (issue 8): String keys came back as Symbols and Symbol
    # values as Strings.
    it "restores every key and value of the kind it was saved as, the file staying plain JSON", :gc_stress do
      s = session
      data = { "name" => :value, nested: [{ "k" => nil }, { k: :v }], f: 1.5, big: 2**62, neg: -7, t: true,
               "app/models/user.rb" => 1, status: :done, rows: Array.new(3) { |i| { "id" => i, "tag" => :x } } }
      s.checkpoint(data: data)
      back = MASTER::SessionRecovery.new(task_id: "task").restore[:data]
      expect(back).to eq(data)
      expect(back.keys.map(&:class)).to eq(data.keys.map(&:class))
      expect(read_checkpoint("task", 1)["state"]).to eq(JSON.parse(JSON.generate(data)))
    end

    it "restores every Float exactly, to the last bit" do
      random = Random.new(42)
      floats = Array.new(5000) { 100 + (random.rand * 100) } +
               [Float::MAX, -Float::MAX, Float::MIN, 5e-324, -0.0, 0.1, 1e300, 198.18453387344778]
      session.checkpoint(data: floats)
      back = session.restore[:data]
      expect(back.zip(floats).reject { |a, b| a.eql?(b) && a.to_s == b.to_s }).to eq([])
    end

    it "writes nothing when enabled: false, but still counts" do
      s = session(enabled: false)
      expect(s.checkpoint(progress: 4)).to include(checkpoint: nil, progress: 4)
      expect(store_empty?).to be(true)
    end
  end

  describe "#restore" do
    it "is nil without a checkpoint" do
      expect(session.restore).to be_nil
    end

    it "returns the latest checkpoint, or checkpoint N" do
      s = session
      s.checkpoint(progress: 1, data: "one")
      s.checkpoint(progress: 2, data: "two")
      expect(s.restore).to include(checkpoint: 2, data: "two")
      expect(s.restore(1)).to include(checkpoint: 1, data: "one", progress: 1)
      expect(s.progress).to eq(1)
    end

    it "raises CheckpointNotFoundError for a number that does not exist" do
      session.checkpoint
      expect { session.restore(7) }.to raise_error(MASTER::CheckpointNotFoundError, /no checkpoint 7/)
    end
  end

  describe "#checkpoint_exists? and #last_checkpoint_time" do
    it "answer from the store" do
      s = session
      expect(s.checkpoint_exists?).to be(false)
      expect(s.last_checkpoint_time).to be_nil
      before = Time.now.utc.to_i
      s.checkpoint
      expect(s.checkpoint_exists?).to be(true)
      expect(s.last_checkpoint_time).to be_a(Time)
      expect(s.last_checkpoint_time.to_i).to be_between(before, Time.now.to_i)
    end
  end

  describe "#progress and #tick" do
    it "counts items and checkpoints every checkpoint_on_items" do
      s = session(checkpoint_on_items: 3, checkpoint_interval: nil)
      s.checkpoint(data: { last: "x" })
      results = Array.new(7) { s.tick }
      expect(results).to eq([false, false, true, false, false, true, false])
      expect(s.progress).to eq(7)
      expect(s.restore).to include(checkpoint: 3, progress: 6, data: { last: "x" })
    end

    it "counts several items at once" do
      s = session(checkpoint_on_items: 10, checkpoint_interval: nil)
      expect(s.tick(9)).to be(false)
      expect(s.tick(5)).to be(true)
      expect(s.progress).to eq(14)
    end

    it "checkpoints once checkpoint_interval seconds have passed" do
      s = session(checkpoint_on_items: nil, checkpoint_interval: 0.5)
      expect(s.tick).to be(false)
      sleep 0.6
      expect(s.tick).to be(true)
      expect(s.tick).to be(false)
    end
  end

  describe "#tick, with the data given earlier" do
    # Regression (issue 8): the document's own pattern lost every result
    # gathered after the first checkpoint: a writing tick saved new progress
    # with the old data, and a resume then skipped the items whose results
    # were gone.
    it "saves the results gathered so far with the progress, even after a kill -9" do
      script = <<~RUBY
        session = MASTER::SessionRecovery.new(task_id: "job", checkpoint_on_items: 10, checkpoint_interval: nil)
        results = []
        session.checkpoint(data: { processed: results })
        35.times do |i|
          results << "item-\#{i}"
          session.tick
        end
        Process.kill(:KILL, Process.pid)
      RUBY
      _out, _err, status = run_ruby(script)
      expect(status.termsig).to eq(Signal.list["KILL"])
      state = described_class.new(task_id: "job").restore
      expect(state[:progress]).to eq(30)
      expect(state[:data][:processed]).to eq(Array.new(30) { |i| "item-#{i}" })
    end

    it "keeps following the object restore returned, as the document's resume snippet uses it" do
      s = session(checkpoint_on_items: 2, checkpoint_interval: nil)
      s.checkpoint(data: { processed: [] })
      results = session.restore[:data][:processed]
      s2 = session(checkpoint_on_items: 2, checkpoint_interval: nil)
      results = s2.restore[:data][:processed]
      2.times { |i| (results << i) && s2.tick }
      expect(session.restore[:data]).to eq(processed: [0, 1])
    end

    it "refuses, naming where, data that no longer encodes, and counts the tick again next time" do
      s = session(checkpoint_on_items: 1, checkpoint_interval: nil)
      results = []
      s.checkpoint(data: { processed: results })
      results << Time.now
      expect { s.tick }.to raise_error(TypeError, /data\[:processed\]\[0\] is a Time/)
      results.clear << "fine"
      expect(s.tick).to be(true)
      expect(s.restore[:data]).to eq(processed: ["fine"])
    end

    # Regression (issue 8): tick(2**62) five times wrapped the count.
    it "refuses progress past the largest count instead of wrapping it" do
      s = session(checkpoint_on_items: nil, checkpoint_interval: nil)
      3.times { s.tick(2**62) }
      expect { s.tick(2**62) }.to raise_error(ArgumentError, /past 18446744073709551615 items.*nothing was counted/)
      expect(s.progress).to eq(3 * (2**62))
    end
  end

  describe "#complete!" do
    # Regression (issue 8): complete! recorded the data of the last
    # checkpoint, so running the README's example again redid (and re-billed)
    # the last files.
    it "records the data as it is now, so a run of a completed task redoes nothing" do
      files = Array.new(25) { |i| "f#{i}.rb" }
      billed = []
      2.times do
        s = described_class.new(task_id: "refactor-app", budget: 5.0)
        done = s.restore&.dig(:data, :done) || []
        files.drop(done.size).each do |file|
          billed << file
          done << file
          s.track_cost(0.02)
          s.checkpoint(progress: done.size, items_total: files.size, data: { done: done }) if (done.size % 10).zero?
        end
        s.complete!
      end
      expect(billed).to eq(files)
      expect(session("refactor-app").restore).to include(status: "completed", data: { done: files })
    end

    it "writes a completed checkpoint" do
      s = session(checkpoint_on_items: nil)
      s.tick(12)
      state = s.complete!
      expect(state).to include(status: "completed", progress: 12, items_total: 12, percentage: 100.0)
      expect(read_checkpoint("task", 1)["status"]).to eq("completed")
    end
  end

  describe "#can_retry? across runs" do
    # Regression (issue 8): max_retries acted as a lifetime limit.
    it "counts failures since the task last made progress, across restarts" do
      s = session(max_retries: 2)
      s.checkpoint(progress: 1)
      2.times { s.checkpoint_error(RuntimeError.new("x")) }
      expect(s.can_retry?).to be(false)
      expect(session(max_retries: 2).can_retry?).to be(false)
      s.retry_from_checkpoint
      s.checkpoint(progress: 2)
      expect(s.can_retry?).to be(true)
      s.checkpoint_error(RuntimeError.new("y"))
      s.complete!
      later = session(max_retries: 2)
      later.checkpoint_error(RuntimeError.new("z"))
      expect(later.can_retry?).to be(true)
    end
  end

  describe "#checkpoint_error, #can_retry? and #retry_from_checkpoint" do
    it "records the error, keeps the good data and counts toward max_retries", :gc_stress do
      s = session(max_retries: 2)
      s.checkpoint(progress: 5, data: { good: true })
      error = begin
        raise KeyError, "missing"
      rescue KeyError => e
        e
      end
      state = s.checkpoint_error(error, "item-7", context: { attempt: 1 })
      expect(state).to include(status: "failed", data: { good: true })
      expect(state[:error]).to include(class: "KeyError", message: "missing", item: "item-7", context: { attempt: 1 })
      expect(state[:error][:backtrace].first).to include(__FILE__)
      expect(s.can_retry?).to be(true)
      s.checkpoint_error(error)
      expect(s.can_retry?).to be(false)
    end

    it "returns the latest good state and counts a retry" do
      s = session
      s.checkpoint(progress: 5, data: "good")
      s.tick(3)
      s.checkpoint_error(RuntimeError.new("x"))
      state = s.retry_from_checkpoint
      expect(state).to include(checkpoint: 3, data: "good", progress: 5, failures: 1, retries: 1)
      expect(read_checkpoint("task", 3)).to include("retry_of" => 1, "retries" => 1)
      expect(s.progress).to eq(5)
      expect(s.retries).to eq(1)
    end

    it "returns nil and starts over when there is no good checkpoint" do
      s = session
      s.tick(3)
      s.checkpoint_error("plain message")
      expect(s.retry_from_checkpoint).to be_nil
      expect(s.progress).to eq(0)
    end
  end

  describe "#rollback, step by step" do
    # Regression (issue 8): two rollbacks went 1 -> 2 -> 3.
    it "goes back one more step each time" do
      s = session
      3.times { |i| s.checkpoint(progress: i + 1, data: { step: i + 1 }) }
      expect(s.rollback).to include(checkpoint: 4, data: { step: 2 })
      expect(s.rollback).to include(checkpoint: 5, data: { step: 1 })
      expect(read_checkpoint("task", 5)["rollback_of"]).to eq(1)
      expect { s.rollback }.to raise_error(MASTER::CheckpointNotFoundError, /no good checkpoint before checkpoint 1/)
    end
  end

  describe "#dup and #clone" do
    it "are refused, saying how to get a second session for the task" do
      s = session
      [-> { s.dup }, -> { s.clone }].each do |copy|
        expect(&copy).to raise_error(TypeError, /cannot be copied.*SessionRecovery.new\(task_id: "task"\)/)
      end
    end
  end

  describe "#rollback" do
    it "writes the last good checkpoint anew, keeping history" do
      s = session
      s.checkpoint(progress: 1, data: "before")
      s.checkpoint(progress: 2, data: "after")
      s.checkpoint_error(RuntimeError.new("boom"))
      expect(s.rollback).to include(checkpoint: 4, data: "after", progress: 2)
      expect(s.rollback(to_checkpoint: 1)).to include(checkpoint: 5, data: "before", progress: 1)
      expect(checkpoint_numbers("task")).to eq([1, 2, 3, 4, 5])
      expect(read_checkpoint("task", 5)["rollback_of"]).to eq(1)
    end

    it "raises CheckpointNotFoundError when there is nothing to go back to" do
      expect { session.rollback }.to raise_error(MASTER::CheckpointNotFoundError, /no checkpoint to roll back/)
      session.checkpoint
      expect { session.rollback }.to raise_error(MASTER::CheckpointNotFoundError, /no good checkpoint before/)
    end
  end

  describe "#checkpoint_valid? and #reset" do
    it "reports the latest checkpoint intact, then forgets the task" do
      s = session(budget: 1.0)
      expect(s.checkpoint_valid?).to be(false)
      s.track_cost(0.5)
      s.checkpoint(progress: 3)
      expect(s.checkpoint_valid?).to be(true)
      s.reset
      expect(task_stored?("task")).to be(false)
      expect(s.progress).to eq(0)
      expect(s.budget_spent).to eq(0.0)
      expect(s.checkpoint_exists?).to be(false)
      expect(s.checkpoint[:checkpoint]).to eq(1)
    end
  end

  describe ".cleanup" do
    before do
      old = "2020-01-01T00:00:00Z"
      MASTER::SessionPersistence.save("old-running", { timestamp: old })
      MASTER::SessionPersistence.save("old-done", { timestamp: old, status: "completed" })
      MASTER::SessionPersistence.save("old-failed", { timestamp: old, status: "failed" })
      session("new-done").complete!
    end

    it "removes tasks older than older_than, keeping failed ones by default" do
      expect(described_class.cleanup(older_than: 86_400)).to eq(%w[old-done old-running])
    end

    it "accepts anything with to_i, and String durations" do
      duration = Struct.new(:to_i).new(86_400)
      expect(described_class.cleanup(older_than: duration, keep_failed: false))
        .to eq(%w[old-done old-failed old-running])
      expect(described_class.cleanup(older_than: "0s", keep_completed: true)).to eq([])
    end

    it "applies the configured retention with no arguments" do
      expect(described_class.cleanup).to eq(%w[old-done])
    end

    it "refuses negative ages" do
      expect { described_class.cleanup(older_than: -1) }.to raise_error(ArgumentError, /older_than/)
    end
  end
end
