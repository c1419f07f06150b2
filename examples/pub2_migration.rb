# frozen_string_literal: true

# Moving from pub2 to MASTER v52: the old code next to its new form, run one
# after the other on a throw-away store, then the old config file migrated.
#
#   ruby -Ilib examples/pub2_migration.rb
#
# Step 1 runs pub2 code unchanged through the shim (it logs one deprecation
# warning on stderr); step 2 is the same work in the new form; step 3 reads
# what the shim saved with the new API, which is how to carry state over;
# step 4 rewrites an old `session:` config file with bin/cli.
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "master"
require "master/pub2"
require "rbconfig"
require "tmpdir"

CLI = File.expand_path("../bin/cli", __dir__)
data = { processed: ["app/models/role.rb"], current_file: "app/models/user.rb" }

Dir.mktmpdir("pub2-migration") do |dir|
  Dir.chdir(dir) do
    puts "1. Old (pub2), through require \"master/pub2\":"
    # --- old ---------------------------------------------------------------
    Session.save_state(data)
    state = Session.load_state
    # ------------------------------------------------------------------------
    puts "   Session.load_state                 # => #{state.inspect}"

    puts "2. New (MASTER v52+):"
    # --- new ---------------------------------------------------------------
    session = MASTER::SessionRecovery.new(task_id: "my-task")
    session.checkpoint(data: data)
    state = session.restore
    # ------------------------------------------------------------------------
    puts "   session.restore[:data]             # => #{state[:data].inspect}"

    puts "3. What the shim saved, read with the new API (task #{Session.task_id.inspect}):"
    carried = MASTER::SessionRecovery.new(task_id: Session.task_id).restore
    puts "   restore[:data]                     # => #{carried[:data].inspect}"
    puts "   bin/cli checkpoint list now shows: #{MASTER::SessionPersistence.list.map { |row| row[:task_id] }.sort.join(', ')}"

    puts "4. The old config file, migrated:"
    Dir.mkdir("config")
    File.write("config/session_recovery.yml", <<~YAML)
      # pub2 settings
      session:
        checkpoint_dir: ".checkpoints"   # kept as is: the checkpoints are there
        checkpoint_interval: 300
    YAML
    system(RbConfig.ruby, CLI, "checkpoint", "migrate-config", "config/session_recovery.yml", exception: true)
    puts File.read("config/session_recovery.yml").gsub(/^/, "   | ")
  end
end
