# frozen_string_literal: true

RSpec.describe MASTER::SessionPersistence do
  describe ".save and .load" do
    it "round-trips every key given, adding the envelope", :gc_stress do
      data = { notes: "café", list: [1, 2.5, nil, true], nested: { deep: { "k" => "v" } } }
      expect(described_class.save("legacy", data)).to eq(1)
      loaded = described_class.load("legacy")
      expect(loaded).to include(notes: "café", list: [1, 2.5, nil, true], nested: { deep: { "k" => "v" } })
      expect(loaded).to include(task_id: "legacy", version: "52.0", sequence: 1, status: "running", state: {})
      expect(loaded[:metadata]).to include(pid: Process.pid)
      expect(loaded).not_to have_key(:checksum)
    end

    it "brings back every key as saved, of the kind it was saved as" do
      data = { progress: 50, metadata: [1], notes: { a: 1, "b" => :c }, "user" => { "name" => "ann" } }
      described_class.save("t", data)
      expect(described_class.load("t")).to include(data)
      expect(described_class.load("t")["user"]).to eq("name" => "ann")
      expect(MASTER::SessionRecovery.new(task_id: "t").progress).to eq(50)
    end

    # Regression (issue 8): status: "weird" and budget: { spent: "lots" }
    # were stored, then read back as running and $0.00.
    it "refuses a member the store reads when it holds something else, writing nothing" do
      { { status: "weird" } => /data\[:status\] must be "running", "completed" or "failed".*got "weird"/,
        { budget: { spent: "lots" } } => /data\[:budget\] must be .*got \{"spent":"lots"\}/,
        { progress: -1 } => /data\[:progress\]/,
        { message: 5 } => /data\[:message\] must be a String or nil/ }.each do |data, message|
        expect { described_class.save("t", data) }.to raise_error(ArgumentError, message)
      end
      expect(store_empty?).to be(true)
      described_class.save("t", { status: :completed, budget: { allocated: 5, spent: 2.13 } })
      expect(described_class.summary("t")).to include(status: "completed", budget: include(spent: 2.13))
      expect(described_class.load("t")[:status]).to eq(:completed)
    end

    it "keeps envelope members that were given" do
      described_class.save("t", { timestamp: "2024-02-05T23:30:00Z", state: { current_file: "x.rb" },
                                  progress: { items_processed: 45, items_total: 100, percentage: 45.0 } })
      expect(described_class.load("t")).to include(timestamp: "2024-02-05T23:30:00Z", state: { current_file: "x.rb" },
                                                   progress: { items_processed: 45, items_total: 100, percentage: 45.0 })
      expect(MASTER::SessionRecovery.new(task_id: "t").progress).to eq(45)
    end

    it "loads the latest of several and nil for none" do
      described_class.save("t", { n: 1 })
      described_class.save("t", { n: 2 })
      expect(described_class.load("t")[:n]).to eq(2)
      expect(described_class.load("nothing")).to be_nil
    end

    it "uses checkpoint_dir: for another store" do
      described_class.save("t", { n: 1 }, checkpoint_dir: "other")
      expect(described_class.load("t")).to be_nil
      expect(described_class.load("t", checkpoint_dir: "other")[:n]).to eq(1)
    end
  end

  describe ".list" do
    it "returns one summary per task, newest first", :gc_stress do
      described_class.save("old", { timestamp: "2020-01-01T00:00:00Z" })
      MASTER::SessionRecovery.new(task_id: "new", budget: 5.0).tap { |s| s.track_cost(2.13) }
                             .checkpoint(progress: 45, items_total: 100)
      rows = described_class.list
      expect(rows.map { |r| r[:task_id] }).to eq(%w[new old])
      expect(rows.first).to include(status: "running", latest_checkpoint: 1, checkpoints: 1,
                                    progress: { items_processed: 45, items_total: 100, percentage: 45.0 },
                                    budget: { allocated: 5.0, spent: 2.13, remaining: 2.87 })
      expect(rows.first[:updated_at]).to be_a(Time)
    end

    it "warns about a task with no intact checkpoint instead of hiding it silently" do
      described_class.save("broken", { n: 1 })
      File.write(checkpoint_file("broken", 1), "{}")
      # The caches only check that the files they name exist; once they are
      # rebuilt, the damage shows.
      File.delete(File.join(store_dir, "index.json"), File.join(task_dir("broken"), "metadata.json"))
      expect(described_class.list).to eq([])
      expect(MASTER.logger.warnings.last).to match(/task "broken" has 1 checkpoint\(s\) and none is intact/)
    end

    # Regression (issue 8): "newest first" followed the one-second timestamp
    # and then the name, not which task was written last.
    it "orders by when each task was last written, to the nanosecond" do
      %w[zeta alpha mid].each { |id| MASTER::SessionRecovery.new(task_id: id).checkpoint(progress: 1) }
      expect(described_class.list.map { |r| r[:task_id] }).to eq(%w[mid alpha zeta])
      MASTER::SessionRecovery.new(task_id: "zeta").checkpoint(progress: 2)
      expect(described_class.list.map { |r| r[:task_id] }).to eq(%w[zeta mid alpha])
    end

    it "is empty for a store that does not exist, and creates nothing" do
      expect(described_class.list).to eq([])
      expect(store_empty?).to be(true)
    end
  end

  describe ".cleanup" do
    it "removes old tasks and returns their ids" do
      described_class.save("old", { timestamp: "2020-01-01T00:00:00Z", status: "completed" })
      described_class.save("recent", { status: "completed" })
      expect(described_class.cleanup(older_than: 3600)).to eq(["old"])
      expect(described_class.list.map { |r| r[:task_id] }).to eq(["recent"])
    end

    it "keeps running tasks when asked, whatever their age" do
      described_class.save("old-running", { timestamp: "2020-01-01T00:00:00Z" })
      described_class.save("old-done", { timestamp: "2020-01-01T00:00:00Z", status: "completed" })
      expect(described_class.cleanup(older_than: 0, keep_running: true)).to eq(["old-done"])
      expect { described_class.cleanup(older_than: 0, keep_running: "no") }.to raise_error(ArgumentError, /keep_running/)
    end

    it "refuses unknown options" do
      expect { described_class.cleanup(older_than: 1, keep_everything: true) }.to raise_error(ArgumentError, /keep_everything/)
    end
  end

  describe "the store on disk" do
    it "is private: directories 0700, files 0600" do
      described_class.save("t", { n: 1 })
      expect(File.stat(store_dir).mode & 0o777).to eq(0o700)
      expect(File.stat(task_dir("t")).mode & 0o777).to eq(0o700)
      expect(File.stat(checkpoint_file("t", 1)).mode & 0o777).to eq(0o600)
      expect(File.stat(File.join(store_dir, "index.json")).mode & 0o777).to eq(0o600)
    end

    it "never follows a symlink planted inside it" do
      outside = File.join(Dir.pwd, "outside")
      Dir.mkdir(outside)
      FileUtils.mkdir_p(store_dir)
      File.symlink(outside, File.join(store_dir, "victim"))
      expect { described_class.save("victim", { n: 1 }) }.to raise_error(MASTER::StoreError, /symbolic link/)
      expect { MASTER::SessionRecovery.new(task_id: "victim") }.to raise_error(MASTER::StoreError, /never follows links/)
      expect(Dir.children(outside)).to eq([])
    end
  end
end
