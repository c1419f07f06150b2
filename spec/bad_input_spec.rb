# frozen_string_literal: true

# Bad input gets a clear error naming the argument and the value, and
# nothing is written.
RSpec.describe "Bad input" do
  def session(**options)
    MASTER::SessionRecovery.new(task_id: "task", **options)
  end

  def expect_nothing_written
    before = store_snapshot
    yield
    expect(store_snapshot).to eq(before)
  end

  describe "task ids" do
    ["", ".", "..", "../escape", "a/b", "/etc/passwd", "nul\0byte", ".hidden", "x" * 256, "tab\tid", "index.json"]
      .each do |id|
      it "refuses #{id.inspect[0, 40]} with ArgumentError naming task_id" do
        expect { MASTER::SessionRecovery.new(task_id: id) }.to raise_error(ArgumentError, /task_id/)
        expect { MASTER::SessionPersistence.save(id, {}) }.to raise_error(ArgumentError, /task_id/)
        expect(store_empty?).to be(true)
        expect(File.exist?(File.join(Dir.pwd, "..", "escape"))).to be(false)
      end
    end

    it "refuses nil and non-strings with TypeError" do
      expect { MASTER::SessionRecovery.new(task_id: nil) }.to raise_error(TypeError, /task_id must be a String; got nil/)
      expect { MASTER::SessionRecovery.new(task_id: 42) }.to raise_error(TypeError, /task_id.*42/)
    end

    it "accepts 255 bytes exactly" do
      expect(MASTER::SessionRecovery.new(task_id: "x" * 255).checkpoint[:checkpoint]).to eq(1)
    end
  end

  describe "data that would not round-trip through JSON" do
    {
      { when: Time.at(0) } => /data\[:when\] is a Time/,
      { files: ["a", "b", "c", Object.new] } => /data\[:files\]\[3\] is an Object/,
      { "score" => Float::NAN } => /data\["score"\] is NaN/,
      { inf: -Float::INFINITY } => /data\[:inf\] is -inf/,
      { r: 1r } => /data\[:r\] is a Rational.*to_f/,
      { big: 2**64 } => /data\[:big\] is an Integer wider than 64 bits/,
      { p: -> {} } => /data\[:p\] is a Proc/,
      { 1 => "x" } => /data has a Integer key|Integer key/,
      { bytes: "\xff\xfe".b } => /data\[:bytes\] is a binary \(ASCII-8BIT\) String.*Base64/,
      { latin: "caf\xe9".dup.force_encoding("ISO-8859-1") } => /data\[:latin\] is a String in ISO-8859-1/,
      { bad: "\xff".dup.force_encoding("UTF-8") } => /not valid UTF-8/,
      { "a" => 1, a: 2 } => /both "a" and :a/
    }.each do |data, message|
      it "refuses #{data.inspect[0, 50]}, naming where" do
        s = session
        s.checkpoint(data: { ok: true })
        expect_nothing_written do
          expect { s.checkpoint(data: data) }.to raise_error(an_instance_of(TypeError).or(an_instance_of(ArgumentError)), message)
        end
        expect(s.checkpoint[:data]).to eq(ok: true), "the session keeps its last good data"
      end
    end

    it "refuses 10,000 levels of nesting with ArgumentError, and a structure that contains itself" do
      deep = 10_000.times.reduce([]) { |inner, _| [inner] }
      expect_nothing_written do
        expect do
          session.checkpoint(data: deep)
        end.to raise_error(ArgumentError, /nests deeper than 100 levels \(at data\[0\]\[0\]/)
      end
      loop_hash = {}
      loop_hash[:self] = loop_hash
      expect { session.checkpoint(data: loop_hash) }.to raise_error(ArgumentError, /contains itself/)
    end

    it "accepts 100 levels" do
      deep = 99.times.reduce([]) { |inner, _| [inner] }
      expect(session.checkpoint(data: deep)[:data]).to eq(deep)
    end

    it "accepts a huge string and returns it intact" do
      big = "x" * 20_000_000
      expect(session.checkpoint(data: { big: big })[:data][:big].bytesize).to eq(20_000_000)
      expect(MASTER::SessionRecovery.new(task_id: "task").restore[:data][:big]).to eq(big)
    end

    # Regression (issue 8): checkpoint_error raised on a Pathname item, so no
    # failed checkpoint was written and the user's exception was buried.
    it "records a non-plain item or context by its inspect, with a note, and never raises" do
      at = Time.utc(2024, 2, 5)
      state = session.checkpoint_error(RuntimeError.new("x"), Pathname.new("app/models/user.rb"),
                                       context: { t: at, attempt: 2, "path" => "a.rb" })
      expect(state[:status]).to eq("failed")
      expect(state[:error]).to include(item: "#<Pathname:app/models/user.rb>",
                                       context: { t: at.inspect, attempt: 2, "path" => "a.rb" })
      expect(state[:error][:notes]).to include(/item is a Pathname, not plain data/, /context\[:t\] is a Time/)
      odd = session.checkpoint_error(42)
      expect(odd[:error]).to include(class: "Integer", message: "42")
      expect(odd[:error][:notes]).to include(/error is an Integer, not an Exception/)
      expect(MASTER::SessionRecovery.new(task_id: "task").restore[:error]).to eq(odd[:error])
    end

    it "keeps the caller's own exception the one that propagates" do
      raised = begin
        begin
          raise IOError, "the real problem"
        rescue IOError => e
          session.checkpoint_error(e, File.open(__FILE__), context: { io: $stdout, proc: -> {} })
          raise
        end
      rescue IOError => e
        e
      end
      expect(raised.message).to eq("the real problem")
      expect(raised.cause).to be_nil
      expect(session.restore[:error]).to include(class: "IOError", message: "the real problem")
    end
  end

  describe "other arguments" do
    it "refuses bad progress, items_total, message and checkpoint numbers" do
      s = session
      expect_nothing_written do
        expect { s.checkpoint(progress: -1) }.to raise_error(ArgumentError, /progress must not be negative; got -1/)
        expect { s.checkpoint(progress: 1.5) }.to raise_error(TypeError, /progress must be a non-negative Integer; got 1.5/)
        expect { s.checkpoint(progress: "5") }.to raise_error(TypeError, /progress.*"5" \(String\)/)
        expect { s.checkpoint(items_total: -3) }.to raise_error(ArgumentError, /items_total/)
        expect { s.checkpoint(message: 5) }.to raise_error(TypeError, /message must be a String; got 5/)
        expect { s.restore(0) }.to raise_error(ArgumentError, /checkpoint must be a checkpoint number/)
        expect { s.restore("1") }.to raise_error(TypeError, /checkpoint/)
        expect { s.rollback(to_checkpoint: -2) }.to raise_error(ArgumentError, /to_checkpoint/)
        expect { s.tick(-1) }.to raise_error(ArgumentError, /items must not be negative/)
        expect { s.tick("1") }.to raise_error(TypeError, /items/)
        expect { s.tick(1, 2) }.to raise_error(ArgumentError, /wrong number of arguments/)
      end
    end

    it "refuses unknown options and bad option values, naming them" do
      expect { session(checkpoint_intervall: 5) }.to raise_error(ArgumentError, /unknown option :checkpoint_intervall/)
      expect { session(checkpoint_interval: -5) }.to raise_error(ArgumentError, /checkpoint_interval.*got -5/)
      expect { session(checkpoint_on_items: 2.5) }.to raise_error(ArgumentError, /checkpoint_on_items.*2.5/)
      expect { session(warn_threshold: 80) }.to raise_error(ArgumentError, /warn_threshold.*0.8 means 80%.*got 80/)
      expect { session(auto_resume: "yes") }.to raise_error(ArgumentError, /`auto_resume` must be true or false; got "yes"/)
      expect do
        session(on_checkpoint: "puts")
      end.to raise_error(ArgumentError, /`on_checkpoint` must be something that responds to call/)
      expect { session(max_retries: -1) }.to raise_error(ArgumentError, /max_retries/)
      expect { session(logger: 5) }.to raise_error(ArgumentError, /logger/)
      expect { session(checkpoint_dir: "") }.to raise_error(ArgumentError, /checkpoint_dir/)
      expect(store_empty?).to be(true)
    end

    it "refuses negative, non-numeric and non-finite money" do
      s = session(budget: 1.0)
      expect { s.track_cost(-0.01) }.to raise_error(ArgumentError, /amount must not be negative.*-0.01/)
      expect { s.track_cost("0.25") }.to raise_error(ArgumentError, /amount must be a number of dollars.*"0.25" \(String\)/)
      expect { s.track_cost(nil) }.to raise_error(ArgumentError, /amount.*nil/)
      expect { s.track_cost(Float::NAN) }.to raise_error(ArgumentError, /amount must be a finite number/)
      # Regression (issue 8): a finite amount too large said "must be finite".
      expect { s.track_cost(1e300) }.to raise_error(ArgumentError, /amount is too large.*1\.0e\+300/)
      expect { s.increase_budget(0) }.to raise_error(ArgumentError, /amount must be a positive/)
      expect { session(budget: -5) }.to raise_error(ArgumentError, /budget must be a positive.*-5/)
      expect { session(budget: "5") }.to raise_error(ArgumentError, /budget/)
      expect(s.budget_spent).to eq(0.0)
    end

    it "refuses a non-Hash document for SessionPersistence.save" do
      expect { MASTER::SessionPersistence.save("t", [1]) }.to raise_error(TypeError, /data must be a Hash/)
      expect { MASTER::SessionPersistence.save("t", { checksum: "x" }) }.to raise_error(ArgumentError, /data\[:checksum\]/)
      expect { MASTER::SessionPersistence.save("t", { task_id: "u" }) }.to raise_error(ArgumentError, /task_id/)
      expect { MASTER::SessionPersistence.save("t", { timestamp: "yesterday" }) }.to raise_error(ArgumentError, /timestamp/)
      expect(store_empty?).to be(true)
    end
  end
end
