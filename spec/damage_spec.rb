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

  { "truncated" => :truncate_file, "one character changed" => :corrupt_one_character }.each do |damage, method|
    context "when the latest is #{damage}" do
      before { send(method, checkpoint_file("task", 2)) }

      it "is reported by checkpoint_valid?" do
        expect(session.checkpoint_valid?).to be(false)
      end

      it "is skipped by restore, with a warning naming it" do
        expect(session.restore).to include(checkpoint: 1, data: { step: "one" })
        expect(MASTER.logger.warnings.join).to match(/skipping checkpoint 2: checkpoint .*checkpoint_002.json is damaged/)
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
    truncate_file(checkpoint_file("task", 1))
    File.write(checkpoint_file("task", 2), "{\"hand\": \"edited\"}")
    expect { session.restore }.to raise_error(MASTER::CorruptCheckpointError, /no intact checkpoint left/)
    expect { MASTER::SessionPersistence.load("task") }.to raise_error(MASTER::CorruptCheckpointError)
    resumed = MASTER::SessionRecovery.new(task_id: "task")
    expect(resumed.progress).to eq(0)
    expect(MASTER.logger.warnings.last).to match(/no intact checkpoint to resume from; starting fresh/)
  end

  it "restore(n) of a damaged checkpoint raises CorruptCheckpointError naming the file" do
    corrupt_one_character(checkpoint_file("task", 1))
    expect { session.restore(1) }.to raise_error(MASTER::CorruptCheckpointError, /checkpoint_001.json is damaged \(checksum mismatch/)
  end

  it "rebuilds a missing or damaged index.json and metadata.json" do
    File.delete(File.join(store_dir, "index.json"))
    File.write(File.join(task_dir("task"), "metadata.json"), "garbage")
    rows = MASTER::SessionPersistence.list
    expect(rows.map { |r| [r[:task_id], r[:latest_checkpoint], r[:progress][:items_processed]] }).to eq([["task", 2, 2]])
    expect(JSON.parse(File.read(File.join(store_dir, "index.json")))["tasks"].keys).to eq(["task"])
  end
end
