# frozen_string_literal: true

require "master/pub2"

RSpec.describe "The pub2 shim (require \"master/pub2\")" do
  after { Session.task_id = nil }

  describe "Session.load_state" do
    it "is nil when nothing was saved" do
      expect(Session.load_state).to be_nil
      expect(store_empty?).to be(true)
    end

    # Regression (issue 8): Session.load_state["user"] was nil, because
    # String keys came back as Symbols, so pub2 code did not run unchanged.
    it "returns the data last saved, every key and value of the kind it was saved as" do
      Session.save_state("files" => ["a.rb"], "meta" => { "round" => 1 })
      Session.save_state("files" => ["a.rb", "b.rb"], "meta" => { "round" => 2 }, "mode" => :fast, user: { "name" => "ann" })
      expect(Session.load_state).to eq("files" => ["a.rb", "b.rb"], "meta" => { "round" => 2 }, "mode" => :fast,
                                       user: { "name" => "ann" })
      expect(Session.load_state["meta"]["round"]).to eq(2)
    end

    it "returns data that is not a Hash as it was saved" do
      Session.save_state([1, "two", { "three" => 3 }, :four])
      expect(Session.load_state).to eq([1, "two", { "three" => 3 }, :four])
    end
  end

  describe "Session.save_state" do
    it "returns the data and keeps it as checkpoints of task pub2-session in the configured store" do
      data = { "progress" => 50 }
      expect(Session.save_state(data)).to equal(data)
      Session.save_state("progress" => 60)
      expect(checkpoint_files("pub2-session").size).to eq(2)
      expect(MASTER::SessionRecovery.new(task_id: "pub2-session").restore[:data]).to eq("progress" => 60)

      ENV["MASTER_CHECKPOINT_DIR"] = "elsewhere"
      Session.save_state("progress" => 70)
      expect(File.exist?("elsewhere/pub2-session/checkpoint_001.json")).to be(true)
      expect(Session.load_state).to eq("progress" => 70)
    end

    it "uses the task id it is given" do
      Session.task_id = "legacy-job"
      Session.save_state("step" => 1)
      expect(checkpoint_files("legacy-job").size).to eq(1)
      expect(File.exist?(task_dir("pub2-session"))).to be(false)
      Session.task_id = nil
      expect([Session.task_id, Session.load_state]).to eq(["pub2-session", nil])
      expect { Session.task_id = :job }.to raise_error(TypeError, /Session.task_id must be a String.*got :job/)
    end

    it "keeps the state in the store it is given" do
      Session.store = "memory://pub2-spec"
      Session.save_state("step" => 2)
      expect(MASTER::SessionPersistence.load("pub2-session", store: "memory://pub2-spec")).to include(state: { "step" => 2 })
      expect(Session.load_state).to eq("step" => 2)
      expect { Session.store = "ftp://nowhere" }.to raise_error(ArgumentError, /ftp/)
    ensure
      Session.store = nil
    end

    it "forgets the state when given nil" do
      Session.save_state("step" => 1)
      expect(Session.save_state(nil)).to be_nil
      expect(Session.load_state).to be_nil
      expect(File.exist?(task_dir("pub2-session"))).to be(false)
    end

    it "refuses data the store cannot keep, writing nothing" do
      Session.save_state("step" => 1)
      before = store_snapshot
      expect { Session.save_state("at" => Time.now) }.to raise_error(TypeError, /data\["at"\] is a Time/)
      expect { Session.task_id = "../escape" }.not_to raise_error
      expect { Session.save_state("step" => 2) }.to raise_error(ArgumentError, %r{task_id "../escape"})
      expect(store_snapshot).to eq(before)
    end
  end

  it "runs the old code of the user's document unchanged, and the new API finds its state" do
    old_code = SeedSnippets["Migration from pub2/pub3"].first.code.split("# New").first
    world = Struct.new(:data).new({ progress: 50 })
    expect(world.instance_eval(old_code)).to eq(progress: 50)
    expect(MASTER::SessionRecovery.new(task_id: Session.task_id).restore[:data]).to eq(progress: 50)
  end

  describe "in fresh processes" do
    def deprecation_lines(stderr)
      stderr.lines.grep(/deprecated/)
    end

    it "loads in one process what another saved, warning once in each" do
      _, saved_err, saved = run_ruby('require "master/pub2"; 3.times { |i| Session.save_state("round" => i) }')
      expect(saved).to be_success
      expect(deprecation_lines(saved_err)).to eq([
                                                   "master: warn: Session.save_state (pub2) is deprecated (called from -e:1); the new form is: " \
                                                   "session = MASTER::SessionRecovery.new(task_id: \"pub2-session\"); session.checkpoint(data: data); " \
                                                   "state = session.restore (state[:data] is what Session.load_state returned)\n"
                                                 ])
      out, loaded_err, loaded = run_ruby(%(require "master/pub2"\np Session.load_state\np Session.load_state))
      expect([out, loaded.success?]).to eq(["{\"round\"=>2}\n{\"round\"=>2}\n", true])
      expect(deprecation_lines(loaded_err).size).to eq(1)
      expect(loaded_err).to eq(deprecation_lines(loaded_err).join)
      expect(deprecation_lines(loaded_err).first).to include("Session.load_state (pub2) is deprecated (called from -e:2)")
    end

    it "leaves a Session the program already has alone, saying how to reach the shim" do
      out, err, status = run_ruby(<<~RUBY)
        class Session
          def self.mine = "the program's own"
        end
        require "master/pub2"
        puts Session.mine
        MASTER::Pub2::Session.save_state([1])
        p MASTER::Pub2::Session.load_state
      RUBY
      expect([out, status.success?]).to eq(["the program's own\n[1]\n", true])
      expect(err).to include("Session is already defined (Session), so the pub2 shim is not installed under that " \
                             "name; call MASTER::Pub2::Session.save_state and .load_state instead")
    end

    it "examples/pub2_migration.rb runs, old code next to new" do
      example = File.expand_path("../examples/pub2_migration.rb", __dir__)
      other_processes!
      out, err, status = Open3.capture3(RbConfig.ruby, "-I", StoreHelpers::LIB, example, chdir: Dir.pwd)
      expect(status).to be_success, err
      expect(out.scan(/# => (.*)$/).flatten.uniq).to eq(
        ['{:processed=>["app/models/role.rb"], :current_file=>"app/models/user.rb"}']
      )
      expect(out).to include("Migrated config/session_recovery.yml", "   | session_recovery:")
      expect(deprecation_lines(err).size).to eq(1)
      expect(Dir.children(".")).to eq([])
    end
  end
end
