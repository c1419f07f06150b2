# frozen_string_literal: true

# A resumable job on the default store (.master_checkpoints in the current
# directory). It runs the job in a child process and kills it with SIGKILL
# part-way, as a crash or an OOM kill would; then runs it again, and the
# second run picks up at the last checkpoint instead of starting over.
#
#   ruby -Ilib examples/resumable_job.rb
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "master"

TASK = "resumable-job"
ITEMS = (1..30).map { |i| "app/models/model_#{i}.rb" }
COST_PER_ITEM = 0.01 # dollars, as an API call might cost

def run_job(label, stop_after: nil)
  session = MASTER::SessionRecovery.new(
    task_id: TASK, budget: 1.0,
    on_resume: lambda { |state|
      puts "[#{label}] resuming at item #{state[:progress]} from checkpoint #{state[:checkpoint]} " \
           "(spent $#{format('%.2f', state[:budget][:spent])})"
    }
  )
  state = session.restore || { data: { done: [] } }
  done = state[:data][:done]
  ITEMS.drop(session.progress).each do |file|
    done << file.upcase # the real work would go here
    session.track_cost(COST_PER_ITEM)
    session.checkpoint(progress: done.size, data: { done: done }) if (done.size % 5).zero?
    next unless stop_after && done.size == stop_after

    puts "[#{label}] killed with SIGKILL after item #{done.size}"
    $stdout.flush
    Process.kill("KILL", Process.pid)
  end
  final = session.complete!
  puts "[#{label}] completed #{final[:items_total]} items; spent $#{format('%.2f', final[:budget][:spent])} " \
       "of $#{format('%.2f', final[:budget][:allocated])}"
end

MASTER::SessionRecovery.new(task_id: TASK, auto_resume: false).reset # start the demo clean
puts "[run 1] processing #{ITEMS.size} items, a checkpoint every 5"
Process.wait(fork { run_job("run 1", stop_after: 13) })
run_job("run 2")
store = MASTER::Config.checkpoint_dir
files = Dir.children(File.join(store, TASK)).sort
puts "Store: #{store}/#{TASK}/ holds #{files.join(', ')}"
