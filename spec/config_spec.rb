# frozen_string_literal: true

RSpec.describe MASTER::Config do
  def write_config(path, yaml)
    FileUtils.mkdir_p(File.dirname(path))
    File.write(path, yaml)
  end

  describe ".settings" do
    it "ships the seed's keys and defaults" do
      expect(described_class.settings.except(:store)).to eq(
        enabled: true, checkpoint_interval: 300, checkpoint_on_items: 10,
        checkpoint_dir: ".master_checkpoints", max_checkpoints: 10,
        auto_resume: true, resume_on_start: false, keep_failed: true, keep_successful: 7,
        track_costs: true, warn_threshold: 0.8, enforce_budget: false
      )
    end

    it "takes project overrides from config/session_recovery.yml" do
      write_config("config/session_recovery.yml", "session_recovery:\n  checkpoint_on_items: 50\n")
      expect(described_class.settings).to include(checkpoint_on_items: 50, checkpoint_interval: 300)
    end

    it "takes project overrides from lib/config/session_recovery.yml" do
      write_config("lib/config/session_recovery.yml", "session_recovery:\n  max_checkpoints: 3\n")
      expect(described_class.settings[:max_checkpoints]).to eq(3)
    end

    it "prefers the file named by MASTER_CONFIG" do
      write_config("config/session_recovery.yml", "session_recovery:\n  max_checkpoints: 3\n")
      write_config("custom.yml", "session_recovery:\n  max_checkpoints: 4\n")
      ENV["MASTER_CONFIG"] = "custom.yml"
      expect(described_class.settings[:max_checkpoints]).to eq(4)
      ENV["MASTER_CONFIG"] = "missing.yml"
      expect { described_class.settings }.to raise_error(MASTER::ConfigError, /MASTER_CONFIG names missing.yml/)
    end

    it "lets the environment win over files, read afresh each time" do
      write_config("config/session_recovery.yml", "session_recovery:\n  checkpoint_dir: from-file\n")
      ENV["MASTER_CHECKPOINT_DIR"] = "/var/lib/master/checkpoints"
      ENV["MASTER_AUTO_RESUME"] = "false"
      ENV["MASTER_CHECKPOINT_INTERVAL"] = "600"
      expect(described_class.settings).to include(checkpoint_dir: "/var/lib/master/checkpoints",
                                                  auto_resume: false, checkpoint_interval: 600)
      ENV["MASTER_AUTO_RESUME"] = "1"
      expect(described_class.settings[:auto_resume]).to be(true)
    end

    it "re-reads a file that changed" do
      write_config("config/session_recovery.yml", "session_recovery:\n  max_checkpoints: 3\n")
      expect(described_class.settings[:max_checkpoints]).to eq(3)
      write_config("config/session_recovery.yml", "session_recovery:\n  max_checkpoints: 12\n")
      File.utime(Time.now + 5, Time.now + 5, "config/session_recovery.yml")
      expect(described_class.settings[:max_checkpoints]).to eq(12)
    end
  end

  describe "validation" do
    {
      "checkpoint_interval: -5" => %r{config/session_recovery.yml: session_recovery.checkpoint_interval must be a number of seconds.*got -5},
      "auto_resume: maybe" => /auto_resume must be true or false; got "maybe"/,
      "warn_threshold: 80" => /warn_threshold must be a fraction.*got 80/,
      "checkpoint_on_items: 2.5" => /checkpoint_on_items must be a whole number/,
      "checkpoint_dir: ''" => /checkpoint_dir must be a non-empty directory path/,
      "keep_successful: -1" => /keep_successful must be a number of days/
    }.each do |line, message|
      it "fails fast on #{line}, naming file, key and value" do
        write_config("config/session_recovery.yml", "session_recovery:\n  #{line}\n")
        expect { MASTER::SessionRecovery.new(task_id: "t") }.to raise_error(MASTER::ConfigError, message)
      end
    end

    it "fails fast on bad environment values" do
      ENV["MASTER_CHECKPOINT_INTERVAL"] = "soon"
      expect { described_class.settings }.to raise_error(MASTER::ConfigError, /MASTER_CHECKPOINT_INTERVAL.*"soon"/)
      ENV["MASTER_CHECKPOINT_INTERVAL"] = "-1"
      expect { described_class.settings }.to raise_error(MASTER::ConfigError, /MASTER_CHECKPOINT_INTERVAL/)
      ENV.delete("MASTER_CHECKPOINT_INTERVAL")
      ENV["MASTER_AUTO_RESUME"] = "perhaps"
      expect do
        described_class.settings
      end.to raise_error(MASTER::ConfigError, /MASTER_AUTO_RESUME must be true or false; got "perhaps"/)
    end

    it "fails fast on broken YAML" do
      write_config("config/session_recovery.yml", "session_recovery: [unclosed\n")
      expect { described_class.settings }.to raise_error(MASTER::ConfigError, /not valid YAML/)
    end

    it "warns once about unknown keys" do
      write_config("config/session_recovery.yml", "session_recovery:\n  checkpoint_intervall: 5\n")
      2.times { described_class.settings }
      expect(MASTER.logger.warnings.grep(/unknown key `checkpoint_intervall`.*did you mean `checkpoint_interval`\?/).size).to eq(1)
    end

    # Regression (issue 8): the rough edges of configuration.
    it "warns once about a misspelled section, which would otherwise drop its settings without a word" do
      write_config("config/session_recovery.yml", "session_recovry:\n  max_checkpoints: 3\n")
      2.times { described_class.settings }
      expect(MASTER.logger.warnings.grep(/unknown section `session_recovry:` \(ignored.*did you mean `session_recovery:`\?/).size)
        .to eq(1)
      expect(described_class.settings[:max_checkpoints]).to eq(10)
    end

    it "reads YAML aliases and merge keys" do
      write_config("config/session_recovery.yml", <<~YAML)
        defaults: &defaults
          max_checkpoints: 4
        session_recovery:
          <<: *defaults
          checkpoint_on_items: 7
      YAML
      expect(described_class.settings).to include(max_checkpoints: 4, checkpoint_on_items: 7)
    end

    it "says MASTER_CONFIG names a directory when it does" do
      FileUtils.mkdir_p("conf")
      ENV["MASTER_CONFIG"] = "conf"
      expect { described_class.settings }.to raise_error(MASTER::ConfigError, /MASTER_CONFIG names conf, which is a directory/)
    end

    it "says so when a file has both sections, and reads the new one" do
      write_config("config/session_recovery.yml", "session_recovery:\n  max_checkpoints: 4\nsession:\n  max_checkpoints: 9\n")
      expect(described_class.settings[:max_checkpoints]).to eq(4)
      expect(MASTER.logger.warnings.grep(/both `session_recovery:` and the old `session:`/).size).to eq(1)
    end

    it "honours the old `session:` section with one deprecation warning" do
      write_config("config/session_recovery.yml", "session:\n  checkpoint_dir: \".checkpoints\"\n")
      2.times { described_class.settings }
      expect(described_class.settings[:checkpoint_dir]).to eq(".checkpoints")
      expect(MASTER.logger.warnings.grep(/`session:` section is deprecated/).size).to eq(1)
    end
  end

  describe "what each key does" do
    it "checkpoint_dir chooses the store" do
      files_only!("reads the file store a config file names")
      write_config("config/session_recovery.yml", "session_recovery:\n  checkpoint_dir: store-here\n")
      MASTER::SessionRecovery.new(task_id: "t").checkpoint
      expect(File.exist?("store-here/t/checkpoint_001.json")).to be(true)
    end

    it "enabled: false writes nothing but counts" do
      write_config("config/session_recovery.yml", "session_recovery:\n  enabled: false\n")
      s = MASTER::SessionRecovery.new(task_id: "t", budget: 1.0)
      s.checkpoint(progress: 5)
      s.track_cost(0.5)
      expect([s.progress, s.budget_spent]).to eq([5, 0.5])
      expect(store_empty?).to be(true)
    end

    it "track_costs: false records no spending" do
      write_config("config/session_recovery.yml", "session_recovery:\n  track_costs: false\n")
      s = MASTER::SessionRecovery.new(task_id: "t", budget: 1.0)
      s.track_cost(5)
      expect(s.budget_spent).to eq(0.0)
      expect(s.over_budget?).to be(false)
    end

    it "checkpoint_on_items and checkpoint_interval drive tick" do
      write_config("config/session_recovery.yml", "session_recovery:\n  checkpoint_on_items: 2\n")
      s = MASTER::SessionRecovery.new(task_id: "t")
      expect([s.tick, s.tick]).to eq([false, true])
    end

    it "warn_threshold sets near_budget_limit?" do
      write_config("config/session_recovery.yml", "session_recovery:\n  warn_threshold: 0.5\n")
      s = MASTER::SessionRecovery.new(task_id: "t", budget: 10.0)
      s.track_cost(5)
      expect(s.near_budget_limit?).to be(true)
    end

    it "keep_successful and keep_failed drive cleanup with no arguments" do
      write_config("config/session_recovery.yml", "session_recovery:\n  keep_successful: 0\n  keep_failed: false\n")
      MASTER::SessionRecovery.new(task_id: "done").complete!
      MASTER::SessionRecovery.new(task_id: "failed").checkpoint_error("x")
      MASTER::SessionRecovery.new(task_id: "running").checkpoint
      expect(MASTER::SessionRecovery.cleanup).to eq(%w[done failed])
    end
  end
end
