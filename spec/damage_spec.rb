# frozen_string_literal: true

RSpec.describe "Damaged checkpoints" do
  def session
    MASTER::SessionRecovery.new(task_id: "task", auto_resume: false)
  end

  before do
    s = session
    s.checkpoint(progress: 1, data: { step: "one" })
    s.checkpoint(progress: 2, data: { step: "two" })
  end

  { "truncated" => :truncate_checkpoint, "one character changed" => :corrupt_checkpoint }.each do |damage, method|
    context "when the latest is #{damage}" do
      before { send(method, "task", 2) }

      # Regression (issue 8): with only the newest damaged, checkpoint_valid?
      # was false and the document's "Corrupt Checkpoint" snippet reset the
      # task, deleting the intact checkpoint 1.
      it "leaves checkpoint_valid? true (checkpoint 1 is there to resume from), so the document's snippet restores" do
        s = session
        restored = if s.checkpoint_valid?
                     s.restore
                   else
                     puts "Checkpoint corrupt, starting fresh"
                     s.reset
                   end
        expect(restored).to include(checkpoint: 1, data: { step: "one" })
        expect(checkpoint_numbers("task")).to eq([1, 2])
      end

      it "is skipped by restore, with a warning naming it" do
        expect(session.restore).to include(checkpoint: 1, data: { step: "one" })
        expect(MASTER.logger.warnings.join).to match(/skipping damaged checkpoint 2 \(.*checkpoint_002.json\): /)
      end

      # Regression (issue 8): list, show, summary and the caches still
      # reported the damaged checkpoint as the latest.
      it "is not reported as the latest by any reader" do
        MASTER::SessionPersistence.list # the index as a store has it, then damage
        send(method, "task", 2) if method == :corrupt_checkpoint
        expect(MASTER::SessionPersistence.summary("task")).to include(latest_checkpoint: 1,
                                                                      progress: include(items_processed: 1))
        expect(MASTER::SessionPersistence.list.map { |r| [r[:task_id], r[:latest_checkpoint]] }).to eq([["task", 1]])
        expect(session.last_checkpoint_time).to eq(session.restore[:timestamp])
        other_processes!
        out, _err, status = Open3.capture3(RbConfig.ruby, File.expand_path("../bin/cli", __dir__),
                                           "checkpoint", "list", "--json")
        expect(status).to be_success
        expect(JSON.parse(out).map { |r| r["latest_checkpoint"] }).to eq([1])
      end

      it "is skipped when a new session resumes" do
        expect(MASTER::SessionRecovery.new(task_id: "task").progress).to eq(1)
      end

      it "does not stop the next checkpoint" do
        expect(session.checkpoint[:checkpoint]).to eq(3)
        expect(session.checkpoint_valid?).to be(true)
      end

      it "is skipped by SessionPersistence.load" do
        expect(MASTER::SessionPersistence.load("task")).to include(sequence: 1, state: { step: "one" })
      end
    end
  end

  it "raises CorruptCheckpointError when no checkpoint is intact" do
    truncate_checkpoint("task", 1)
    overwrite_checkpoint("task", 2, "{\"hand\": \"edited\"}")
    expect { session.restore }.to raise_error(MASTER::CorruptCheckpointError, /2 checkpoint file\(s\) and none is intact/) { |e|
      # Regression (issue 8): the message nested three times and suggested
      # restoring "an older one" when there was none.
      expect(e.message.scan("is damaged").size).to eq(0)
      expect(e.message).not_to include("older one")
      expect([e.task_id, e.number, e.reason]).to eq(["task", 2, "no intact checkpoint"])
      expect(e.path).to end_with("checkpoint_002.json")
    }
    expect(session.checkpoint_valid?).to be(false)
    expect { MASTER::SessionPersistence.load("task") }.to raise_error(MASTER::CorruptCheckpointError)
    resumed = MASTER::SessionRecovery.new(task_id: "task")
    expect(resumed.progress).to eq(0)
    expect(MASTER.logger.warnings.last).to match(/no intact checkpoint to resume from; starting fresh/)
  end

  it "restore(n) of a damaged checkpoint raises CorruptCheckpointError naming the file" do
    corrupt_checkpoint("task", 1)
    expect do
      session.restore(1)
    end.to raise_error(MASTER::CorruptCheckpointError, /checkpoint_001.json is damaged \(checksum mismatch/) { |e|
             expect([e.task_id, e.number, e.path]).to eq(["task", 1, checkpoint_location("task", 1)])
             expect(e.reason).to start_with("checksum mismatch")
           }
  end

  it "rebuilds a missing or damaged index.json and metadata.json" do
    files_only!("damages the file store's caches")
    File.delete(File.join(store_dir, "index.json"))
    File.write(File.join(task_dir("task"), "metadata.json"), "garbage")
    rows = MASTER::SessionPersistence.list
    expect(rows.map { |r| [r[:task_id], r[:latest_checkpoint], r[:progress][:items_processed]] }).to eq([["task", 2, 2]])
    expect(JSON.parse(File.read(File.join(store_dir, "index.json")))["tasks"].keys).to eq(["task"])
  end
end
