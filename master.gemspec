# frozen_string_literal: true

require_relative "lib/master/version"

Gem::Specification.new do |spec|
  spec.name = "master"
  spec.version = MASTER::VERSION
  spec.summary = "Session recovery for long-running Ruby work: crash-safe checkpoints, resume, budget"
  spec.description = "Checkpoints written crash-safely by a Rust core, resume after a crash or Ctrl-C, " \
                     "rollback and retry, budget tracking in exact dollars, a checkpointing task queue " \
                     "and a CLI to inspect and clean it all."
  spec.authors = ["MASTER developers"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir[
    "lib/**/*.rb", "lib/config/*.yml", "exe/*", "bin/cli", "ext/master/extconf.rb",
    "src/**/*.rs", "Cargo.toml", "Cargo.lock", "README.md", "sig/*.rbs"
  ].reject { |path| path.include?("/tests") || path.end_with?("/tests.rs") }
  spec.bindir = "exe"
  spec.executables = Dir["exe/*"].map { |path| File.basename(path) }
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/master/extconf.rb"]
end
