# frozen_string_literal: true

require "master"
require "tmpdir"
require "fileutils"
require "json"
require "time"
require "open3"
require "pathname"
require "rbconfig"
require "socket"
require "tempfile"

Dir[File.join(__dir__, "support", "**", "*.rb")].each { |file| require file }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.order = :random
  Kernel.srand config.seed
  config.include StoreHelpers
  config.after(:suite) { StoreHelpers.drop_test_schemas }

  # Every example runs in its own empty directory, so the default store
  # (.master_checkpoints under Dir.pwd) is private to it, with no MASTER_*
  # variables and a logger that records instead of printing.
  examples = 0
  config.around do |example|
    saved_env = ENV.to_h.select { |key, _| key.start_with?("MASTER_") && !key.start_with?("MASTER_TEST_") }
    saved_env.each_key { |key| ENV.delete(key) }
    store = StoreHelpers.example_store(examples += 1)
    ENV["MASTER_STORE"] = store if store
    Dir.mktmpdir("master-spec") do |dir|
      Dir.chdir(dir) do
        MASTER::Config.reset!
        MASTER.logger = RecordingLogger.new
        example.run
      ensure
        MASTER.logger = nil
      end
    end
  ensure
    ENV.delete_if { |key, _| key.start_with?("MASTER_") && !key.start_with?("MASTER_TEST_") }
    saved_env.each { |key, value| ENV[key] = value }
  end

  # `rake gc_stress` runs the examples that hand Ruby objects to Rust with
  # GC.stress on, so an object Rust holds but does not mark is freed at once.
  if ENV["GC_STRESS"]
    config.around(:each, :gc_stress) do |example|
      GC.stress = true
      example.run
    ensure
      GC.stress = false
    end
  end
end
