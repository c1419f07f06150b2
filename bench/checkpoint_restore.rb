# frozen_string_literal: true

# Durable checkpoint and restore against the pure-Ruby baselines, side by
# side in one run, on the same documents. Medians of REPS runs each.
#
#   ruby -Ilib bench/checkpoint_restore.rb          (REPS=50 by default)
require "master"
require "tmpdir"
require "fileutils"
require_relative "ruby_baseline"

REPS = Integer(ENV.fetch("REPS", "50"))

def median_ms(reps)
  times = Array.new(reps) do |i|
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield i
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
  end
  times.sort[times.size / 2] * 1000
end

Dir.mktmpdir("master-bench", ENV["BENCH_DIR"] || Dir.pwd) do |dir|
  printf("%-34s %12s %12s %8s\n", "case", "gem (ms)", "Ruby (ms)", "ratio")
  [10, 20_000].each do |n|
    doc = RubyBaseline.document(n)
    data = doc[:state]
    session = MASTER::SessionRecovery.new(task_id: "bench-#{n}", checkpoint_dir: File.join(dir, "store"),
                                          max_checkpoints: 10, logger: nil)
    path = File.join(dir, "baseline-#{n}.json")
    gem_write = median_ms(REPS) { session.checkpoint(progress: n, data: data) }
    ruby_write = median_ms(REPS) { RubyBaseline.safe_write(path, doc) }
    printf("%-34s %12.3f %12.3f %8.2f\n", "durable checkpoint n=#{n}", gem_write, ruby_write, gem_write / ruby_write)
    gem_read = median_ms(REPS) { session.restore }
    ruby_read = median_ms(REPS) { RubyBaseline.restore(path) }
    printf("%-34s %12.3f %12.3f %8.2f\n", "restore n=#{n}", gem_read, ruby_read, gem_read / ruby_read)
  end
end
