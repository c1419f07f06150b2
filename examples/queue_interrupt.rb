# frozen_string_literal: true

# A task queue interrupted with Ctrl-C and resumed. The queue runs in a child
# process with the trap handlers from the user's document; the parent sends
# it INT (as Ctrl-C would) during the third task, then resumes the queue —
# only the tasks not yet completed run, and the money spent carries over.
#
#   ruby -Ilib examples/queue_interrupt.rb
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "master"
$stdout.sync = true

def build_queue
  queue = MASTER::Queue.new(budget: 10.0, name: "example-queue")
  ["Refactor users", "Extract services", "Update tests", "Write docs"].each do |description|
    queue.add(description, budget: 3.0)
  end
  queue
end

def work(queue, task, label)
  task.track_cost(1.25) # what this task's API calls cost
  puts "[#{label}] #{task.name}: done, queue spent $#{format('%.2f', queue.total_spent)} of $#{format('%.2f', queue.budget)}"
end

MASTER::SessionPersistence.remove("queue.example-queue") # start the demo clean
reader, writer = IO.pipe
child = fork do
  reader.close
  $stdout.sync = true
  queue = build_queue
  trap("INT") do
    puts "\n[run 1] Gracefully shutting down..."
    queue.checkpoint!
    exit 0
  end
  queue.process do |task|
    writer.puts(task.task_id) # tell the parent which task is running
    sleep 60 if task.task_id == "update-tests" # Ctrl-C arrives here
    work(queue, task, "run 1")
  end
end
writer.close
Process.kill("INT", child) if reader.each_line.any? { |line| line.chomp == "update-tests" }
Process.wait(child)

queue = build_queue
queue.resume { |task| work(queue, task, "run 2") }
puts "Completed: #{queue.completed.map(&:name).join(', ')}; spent $#{format('%.2f', queue.total_spent)}"
