# frozen_string_literal: true

# The gem against what a Ruby user would write instead (bench/ruby_baseline.rb,
# a copy of ../shared/bench/ruby_baseline.rb), side by side in one run.
# Each timed case alternates gem and baseline iteration by iteration, so both
# see the same disk weather, and reports medians and their ratio.
#
#   rake bench                    the full run (a few minutes)
#   BENCH_QUICK=1 rake bench      tiny sizes, for breakage only (what CI runs)
#   BENCH_DIR=/some/disk rake bench   where the stores live (default: a temp dir under Dir.pwd)
#   BENCH_ONLY=restore rake bench     only the cases whose section matches
#
# (Longer than most files here: one section per case, each reading on its own.)
require "master"
require "tmpdir"
require "fileutils"
require "json"
require "rbconfig"
require "etc"
require "time"
require_relative "ruby_baseline"

module Bench
  QUICK = ENV["BENCH_QUICK"] == "1"
  ONLY = ENV.fetch("BENCH_ONLY", nil) && Regexp.new(ENV.fetch("BENCH_ONLY", nil), Regexp::IGNORECASE)
  SCALE = QUICK ? 0.02 : 1.0
  ROWS = [] # rubocop:disable Style/MutableConstant -- the results, added as they come

  module_function

  def section?(name)
    ONLY.nil? || ONLY.match?(name)
  end

  def reps(n)
    [(n * SCALE).ceil, 3].max
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def median(samples)
    sorted = samples.sort
    sorted[sorted.size / 2]
  end

  # Times `gem` and `baseline` alternately; the blocks get the iteration
  # index. `settle`, if given, runs untimed before each timed block.
  def pair(name, count, target: nil, unit: "ms", gem_label: nil, settle: nil)
    gem_times = []
    base_times = []
    count.times do |i|
      settle&.call
      t = now
      yield(:gem, i)
      gem_times << (now - t)
      settle&.call
      t = now
      yield(:baseline, i)
      base_times << (now - t)
    end
    record(name, median(gem_times), median(base_times), target, unit, gem_label)
  end

  def record(name, gem, baseline, target, unit, note = nil)
    scale = { "ms" => 1e3, "ns" => 1e9, "MB" => 1.0 }.fetch(unit)
    ratio = gem / baseline
    met = target && (target.start_with?("<=") ? ratio <= target[2..].to_f : ratio >= target[2..].to_f)
    ROWS << [name, format("%.3f %s", gem * scale, unit), format("%.3f %s", baseline * scale, unit),
             format("%.3f", ratio), if target
                                      "#{target} #{met ? 'met' : 'MISSED'}"
                                    else
                                      ""
                                    end, note]
    puts format("%-46s %14s %14s %8s  %s", *ROWS.last.first(5))
  end

  def table
    header = "| case | gem | baseline | gem / baseline | target |\n| --- | --- | --- | --- | --- |\n"
    header + ROWS.map { |r| "| #{r[0]}#{" (#{r[5]})" if r[5]} | #{r[1]} | #{r[2]} | #{r[3]} | #{r[4]} |" }.join("\n")
  end
end

def empty_method; end

dir = Dir.mktmpdir("master-bench", ENV["BENCH_DIR"] || Dir.pwd)
at_exit { FileUtils.rm_rf(dir) }
cores = Etc.respond_to?(:nprocessors) ? Etc.nprocessors : "?"
puts "master #{MASTER::VERSION} bench on #{RUBY_DESCRIPTION}, #{cores} cores, store #{dir}"
puts format("%-46s %14s %14s %8s  %s", "case", "gem", "baseline", "ratio", "target")

# --- tick that writes nothing -------------------------------------------------
if Bench.section?("tick")
  session = MASTER::SessionRecovery.new(task_id: "tick", checkpoint_dir: File.join(dir, "tick"), logger: nil,
                                        checkpoint_on_items: 1_000_000_000, checkpoint_interval: 1e9)
  ticker = RubyBaseline::Ticker.new(every_items: 1_000_000_000, every_seconds: 1e9)
  calls = Bench.reps(2_000_000)
  loop_cost = Bench.median(Array.new(5) do
    t = Bench.now
    i = 0
    i += 1 while i < calls
    Bench.now - t
  end)
  tick_times = { gem: [], baseline: [], empty: [] }
  7.times do
    { gem: -> { session.tick }, baseline: -> { ticker.tick }, empty: -> { empty_method } }.each do |key, _|
      t = Bench.now
      i = 0
      case key
      when :gem then (session.tick
                      i += 1) while i < calls
      when :baseline then (ticker.tick
                           i += 1) while i < calls
      else (empty_method
            i += 1) while i < calls
      end
      tick_times[key] << ((Bench.now - t - loop_cost) / calls)
    end
  end
  Bench.record("tick that writes nothing (per call)", Bench.median(tick_times[:gem]), Bench.median(tick_times[:baseline]),
               "<=0.4", "ns", "an empty Ruby method call: #{format('%.1f', Bench.median(tick_times[:empty]) * 1e9)} ns")
end

# --- durable and async checkpoint, restore ------------------------------------
[10, 20_000].each do |n|
  next unless Bench.section?("checkpoint restore async durable")

  doc = RubyBaseline.document(n)
  state = doc[:state]
  store = File.join(dir, "store-#{n}")
  durable = MASTER::SessionRecovery.new(task_id: "durable-#{n}", checkpoint_dir: store, logger: nil)
  base_path = File.join(dir, "baseline-#{n}.json")
  count = Bench.reps(n > 1000 ? 100 : 300)
  Bench.pair("durable checkpoint, #{n} entries", count, target: "<=1.0") do |side, i|
    side == :gem ? durable.checkpoint(progress: i, data: state) : RubyBaseline.safe_write(base_path, doc)
  end

  async = MASTER::SessionRecovery.new(task_id: "async-#{n}", checkpoint_dir: store, logger: nil, async: true)
  # The background write is drained, untimed, before each timed call, so it
  # competes with neither side.
  Bench.pair("async checkpoint, #{n} entries: caller's thread", count, target: "<=0.1",
                                                                       settle: -> { async.flush }) do |side, i|
    side == :gem ? async.checkpoint(progress: i, data: state) : RubyBaseline.safe_write(base_path, doc)
  end
  Bench.pair("async checkpoint, #{n} entries: until durable", count) do |side, i|
    if side == :gem
      async.checkpoint(progress: i, data: state)
      async.flush
    else
      RubyBaseline.safe_write(base_path, doc)
    end
  end

  Bench.pair("restore, #{n} entries", Bench.reps(n > 1000 ? 100 : 1000), target: "<=1.0") do |side, _|
    side == :gem ? durable.restore : RubyBaseline.restore(base_path)
  end
end

# --- list and cleanup over many tasks ------------------------------------------
if Bench.section?("list cleanup")
  tasks = Bench::QUICK ? 200 : 10_000
  many = File.join(dir, "many")
  print "  (writing #{tasks} tasks for list/cleanup ...)"
  tasks.times do |i|
    MASTER::SessionPersistence.save(format("task-%05d", i), { progress: { items_processed: i, items_total: tasks },
                                                              budget: { allocated: 5.0, spent: 1.25 },
                                                              state: { files: Array.new(20) { |j| "file_#{j}.rb" } } },
                                    checkpoint_dir: many)
  end
  puts " done"
  parse_every_latest = lambda do |root|
    Dir.children(root).filter_map do |task|
      path = File.join(root, task)
      next unless File.directory?(path)

      latest = Dir.children(path).grep(/\Acheckpoint_\d+\.json\z/).max_by { |f| f[/\d+/].to_i }
      latest && RubyBaseline.restore(File.join(path, latest))
    end
  end
  MASTER::SessionPersistence.list(checkpoint_dir: many) # index.json as a user's store has it
  Bench.pair("list over #{tasks} tasks", Bench.reps(15), target: "<=0.05",
                                                         gem_label: "vs parsing every latest checkpoint") do |side, _|
    side == :gem ? MASTER::SessionPersistence.list(checkpoint_dir: many) : parse_every_latest.call(many)
  end
  Bench.pair("cleanup over #{tasks} tasks, removing none", Bench.reps(15)) do |side, _|
    if side == :gem
      MASTER::SessionPersistence.cleanup(older_than: 86_400, checkpoint_dir: many)
    else
      parse_every_latest.call(many).select { |doc| Time.now - Time.iso8601(doc[:timestamp]) > 86_400 }
    end
  end
end

# --- PostgreSQL: the gem's store against a hand-written pg store, same server ---
# MASTER_BENCH_DATABASE_URL (or MASTER_TEST_DATABASE_URL, which `rake bench`
# sets after starting a throwaway server) names the server. Each side has
# its own tables: the gem's in schema master_bench, the baseline's in public.
if Bench.section?("postgresql")
  url = ENV["MASTER_BENCH_DATABASE_URL"] || ENV.fetch("MASTER_TEST_DATABASE_URL", nil)
  if url.nil?
    puts "  (postgresql: skipped; set MASTER_BENCH_DATABASE_URL, or run it through rake bench)"
  else
    require "pg"
    pg_store = "#{url}#{url.include?('?') ? '&' : '?'}schema=master_bench"
    admin = PG.connect(url)
    admin.exec("SET client_min_messages TO warning")
    admin.exec("DROP SCHEMA IF EXISTS master_bench CASCADE")
    baseline = RubyBaseline::Pg.new(url)
    baseline.clear
    [10, 20_000].each do |n|
      doc = RubyBaseline.document(n)
      session = MASTER::SessionRecovery.new(task_id: "pg-#{n}", store: pg_store, logger: nil)
      count = Bench.reps(n > 1000 ? 100 : 500)
      Bench.pair("postgresql checkpoint, #{n} entries", count, target: "<=1.2",
                                                               gem_label: "vs its INSERT of the same document") do |side, i|
        side == :gem ? session.checkpoint(progress: i, data: doc[:state]) : baseline.write("pg-#{n}", doc)
      end
      Bench.pair("postgresql restore, #{n} entries", count, target: "<=1.0",
                                                            gem_label: "vs its SELECT + JSON.parse") do |side, _|
        side == :gem ? session.restore : baseline.restore("pg-#{n}")
      end
      Bench.pair("postgresql new session + restore, #{n} entries", Bench.reps(n > 1000 ? 50 : 300),
                 gem_label: "what a resumed job does; vs its SELECT + JSON.parse") do |side, _|
        if side == :gem
          MASTER::SessionRecovery.new(task_id: "pg-#{n}", store: pg_store, logger: nil).restore
        else
          baseline.restore("pg-#{n}")
        end
      end
    end

    # list over many tasks, each checkpoint a document of n file names: 10
    # (a tiny state) and 100 (about 4 KB, a small agent's).
    tasks = Bench::QUICK ? 200 : 10_000
    [10, 100].each do |n|
      baseline.clear
      admin.exec("TRUNCATE master_bench.checkpoints, master_bench.tasks")
      print "  (writing #{tasks} tasks of #{n} entries on PostgreSQL for list ...)"
      tasks.times do |i|
        id = format("task-%05d", i)
        doc = RubyBaseline.document(n).merge(task_id: id)
        MASTER::SessionPersistence.save(id, doc, store: pg_store)
        baseline.write(id, doc)
      end
      puts " done"
      Bench.pair("postgresql list over #{tasks} tasks, #{n} entries each", Bench.reps(15), target: "<=0.05",
                                                                                           gem_label: "vs its list") do |side, _|
        side == :gem ? MASTER::SessionPersistence.list(store: pg_store) : baseline.list
      end
    end
    baseline.clear
    baseline.close
    admin.exec("DROP SCHEMA IF EXISTS master_bench CASCADE")
    admin.close
  end
end

# --- many workers on one queue ---------------------------------------------------
# Tasks that wait 20 ms (a network call) and checkpoint once, run by 1, 4 and
# 8 workers in one process and by 2 processes of 4; the ratio is against one
# worker. Then what a queue adds per task (claim, session, complete, end of
# claim), from tasks that do nothing.
if Bench.section?("workers")
  stores = { "file" => File.join(dir, "workers") }
  pg_url = ENV["MASTER_BENCH_DATABASE_URL"] || ENV.fetch("MASTER_TEST_DATABASE_URL", nil)
  stores["postgresql"] = "#{pg_url}#{pg_url.include?('?') ? '&' : '?'}schema=master_bench_workers" if pg_url
  count = Bench::QUICK ? 16 : 160
  run_queue = lambda do |store, name, workers, wait|
    queue = MASTER::Queue.new(name: name, store: store, workers: workers, logger: nil)
    count.times { |i| queue.add("task #{i}") }
    started = Bench.now
    queue.process do |task|
      sleep(wait) if wait.positive?
      task.checkpoint(progress: 1)
    end
    Bench.now - started
  end
  stores.each do |kind, store|
    single = run_queue.call(store, "one-#{kind}", 1, 0.02)
    [4, 8].each do |workers|
      took = run_queue.call(store, "w#{workers}-#{kind}", workers, 0.02)
      Bench.record("#{kind}: #{count} tasks of 20 ms, #{workers} workers", took, single,
                   workers == 8 ? "<=0.167" : nil, "ms", "vs 1 worker; <= 0.167 is >= 6x")
    end
    child = <<~RUBY
      queue = MASTER::Queue.new(name: "two-procs-#{kind}", store: ARGV[0], workers: 4, logger: nil)
      #{count}.times { |i| queue.add("task \#{i}") }
      queue.process { |task| sleep 0.02; task.checkpoint(progress: 1) }
    RUBY
    started = Bench.now
    pids = Array.new(2) do
      Process.spawn(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-rmaster", "-e", child, store)
    end
    pids.each { |pid| Process.wait(pid) }
    Bench.record("#{kind}: #{count} tasks of 20 ms, 2 processes x 4 workers", Bench.now - started, single, nil, "ms",
                 "vs 1 worker")
    overhead = run_queue.call(store, "overhead-#{kind}", 1, 0) / count
    Bench.record("#{kind}: what the queue adds per task (claim to end of claim)", overhead, 0.02, nil, "ms",
                 "vs the 20 ms task")
  end
  MASTER::SessionPersistence.list(store: stores["postgresql"]) if stores["postgresql"] # the schema exists
  if pg_url
    require "pg"
    PG.connect(pg_url).tap do |c|
      c.exec("SET client_min_messages TO warning; DROP SCHEMA IF EXISTS master_bench_workers CASCADE")
    end.close
  end
end

# --- a large state (issue: cost what the caller uses) ---------------------------
# 500,000 rows, about 53 MB of JSON. Each gem call is timed against what the
# same step costs a user by hand: the write of the whole document, or its parse.
if Bench.section?("large")
  rows = Bench::QUICK ? 5_000 : 500_000
  large_state = { rows: Array.new(rows) do |i|
                          { id: i, path: format("app/models/file_%06d.rb", i), status: "done", tokens: 1234 + i, cost: 0.0012 }
                        end }
  large_store = File.join(dir, "large")
  large_doc = { task_id: "large", version: "52.0", timestamp: Time.now.utc.iso8601, progress: { items_processed: 1 },
                budget: { allocated: nil, spent: 0, remaining: nil }, state: large_state, metadata: {} }
  large_path = File.join(dir, "large.json")
  RubyBaseline.safe_write(large_path, large_doc)
  large = MASTER::SessionRecovery.new(task_id: "large", checkpoint_dir: large_store, logger: nil, max_checkpoints: 3)
  large.checkpoint(progress: 0, data: large_state)
  mb = File.size(large_path) / 1e6
  Bench.pair("large state (#{format('%.0f', mb)} MB): checkpoint(progress:), data carried over", Bench.reps(5),
             gem_label: "vs writing the whole document") do |side, i|
    side == :gem ? large.checkpoint(progress: i + 1) : RubyBaseline.safe_write(large_path, large_doc)
  end
  Bench.pair("large state: complete!", Bench.reps(5), gem_label: "vs writing the whole document") do |side, _|
    side == :gem ? large.complete! : RubyBaseline.safe_write(large_path, large_doc)
  end
  Bench.pair("large state: new session (auto_resume) + restore", Bench.reps(5),
             gem_label: "vs JSON.parse of the file") do |side, _|
    if side == :gem
      MASTER::SessionRecovery.new(task_id: "large", checkpoint_dir: large_store, logger: nil).restore
    else
      RubyBaseline.restore(large_path)
    end
  end
  cli = File.expand_path("../bin/cli", __dir__)
  Bench.pair("large state: bin/cli checkpoint show (3 checkpoints)", Bench.reps(3),
             gem_label: "vs JSON.parse of the file") do |side, _|
    if side == :gem
      system(RbConfig.ruby, cli, "checkpoint", "show", "large", "--dir", large_store, out: File::NULL, exception: true)
    else
      RubyBaseline.restore(large_path)
    end
  end
end

# --- the long job: the document's growing list, checkpointed every 10 items -----
if Bench.section?("long job")
  items = Bench::QUICK ? 2_000 : 50_000
  long_job = lambda do |name, **options|
    store = File.join(dir, "long-#{name}")
    session = MASTER::SessionRecovery.new(task_id: "long", checkpoint_dir: store, logger: nil, **options)
    written = 0
    started = Bench.now
    done = RubyBaseline.long_job(items, 10) do |list|
      number = session.checkpoint(data: { processed: list })[:checkpoint]
      written += File.size(File.join(store, "long", format("checkpoint_%03d.json", number)))
    end
    { time: Bench.now - started, written: written, done: done, store: store }
  end
  deltas = long_job.call("deltas")
  whole = long_job.call("whole", delta_threshold: 0)
  hand_path = File.join(dir, "long-hand.json")
  started = Bench.now
  RubyBaseline.long_job(items, 10) { |list| RubyBaseline.safe_write(hand_path, { state: { processed: list } }) }
  hand = Bench.now - started
  final = JSON.generate({ processed: deltas[:done] }).bytesize
  label = "long job (#{items} items, checkpoint every 10)"
  Bench.record("#{label}: total time", deltas[:time], whole[:time], "<=0.2", "ms", "vs the gem writing every state whole")
  Bench.record("#{label}: total time", deltas[:time], hand, nil, "ms", "vs File.write of JSON, fsynced")
  Bench.record("#{label}: checkpoint bytes written", deltas[:written] / 1e6, final / 1e6, "<=5", "MB",
               "vs the final state's size")
  Bench.record("#{label}: checkpoint bytes written, whole states", whole[:written] / 1e6, final / 1e6, nil, "MB",
               "vs the final state's size")
  whole_path = File.join(dir, "long-final.json")
  RubyBaseline.safe_write(whole_path, { state: { processed: deltas[:done] } })
  restore_label = "vs JSON.parse of the same state written whole"
  Bench.pair("#{label}: restore of its chained state", Bench.reps(20), target: "<=1.0", gem_label: restore_label) do |side, _|
    if side == :gem
      MASTER::SessionRecovery.new(task_id: "long", checkpoint_dir: deltas[:store], logger: nil,
                                  auto_resume: false).restore
    else
      RubyBaseline.restore(whole_path)
    end
  end

  big_mb = Bench::QUICK ? 1 : 50
  big = { rows: Array.new(big_mb * 20_000) { |i| format("row %08d of a large state, as a long job keeps it", i) } }
  big_store = File.join(dir, "message-only")
  session = MASTER::SessionRecovery.new(task_id: "big", checkpoint_dir: big_store, logger: nil)
  session.checkpoint(data: big)
  number = session.checkpoint(message: "halfway")[:checkpoint]
  size = File.size(File.join(big_store, "big", format("checkpoint_%03d.json", number)))
  state_mb = JSON.generate(big).bytesize / 1e6
  Bench.record("message-only checkpoint of a #{state_mb.round} MB state: bytes written", size / 1e6, state_mb, nil,
               "MB", "#{size} bytes; target < 1 MB: #{size < 1_000_000 ? 'met' : 'MISSED'}")
end

# --- peak memory of a 100 MB state ----------------------------------------------
if Bench.section?("memory")
  MB = Bench::QUICK ? 2 : 100
  memory_script = <<~RUBY
    require "master"
    require #{File.expand_path('ruby_baseline', __dir__).dump}
    def hwm = File.read("/proc/self/status")[/VmHWM:\\s+(\\d+)/, 1].to_i * 1024
    def rss = File.read("/proc/self/status")[/VmRSS:\\s+(\\d+)/, 1].to_i * 1024
    mode, dir = ARGV
    store = File.join(dir, "mem")
    path = File.join(dir, "mem.json")
    if mode.end_with?("write")
      state = { files: Array.new(#{MB} * 10_000) { |i| format("app/models/file_%090d.rb", i) } }
      GC.start
      before = rss
      if mode == "gem_write"
        MASTER::SessionRecovery.new(task_id: "mem", checkpoint_dir: store, logger: nil, max_checkpoints: 1).checkpoint(data: state)
      else
        RubyBaseline.safe_write(path, { state: state })
      end
    else
      GC.start
      before = rss
      result = mode == "gem_read" ? MASTER::SessionRecovery.new(task_id: "mem", checkpoint_dir: store, logger: nil, auto_resume: false).restore : RubyBaseline.restore(path)
    end
    puts hwm - before
  RUBY
  peaks = %w[gem_write baseline_write gem_read baseline_read].to_h do |mode|
    out = IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", memory_script, mode, dir], &:read)
    [mode, out.to_i / 1e6]
  end
  Bench.record("peak memory, checkpoint of a #{MB} MB state", peaks["gem_write"], peaks["baseline_write"], nil, "MB",
               "above the state itself")
  Bench.record("peak memory, restore of a #{MB} MB state", peaks["gem_read"], peaks["baseline_read"], nil, "MB")
end

puts
puts Bench.table
File.write(ENV["BENCH_TABLE"], "#{Bench.table}\n") if ENV["BENCH_TABLE"]
