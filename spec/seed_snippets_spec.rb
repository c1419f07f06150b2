# frozen_string_literal: true

# Every SessionRecovery / SessionPersistence snippet of the user's document,
# run unchanged. The names a snippet takes for granted (items, process_item,
# dangerous_operation, ...) are provided by SnippetWorld, as the user's own
# code would provide them.
RSpec.describe "The user's document, run as written" do
  class SnippetWorld
    attr_reader :processed, :attempts, :items

    def initialize(items: (1..25).to_a, failures: 0)
      @items = items
      @processed = []
      @failures_left = failures
      @attempts = 0
    end

    def run(snippet)
      instance_eval(snippet.code, SeedSnippets::PATH, snippet.line)
    end

    def process_item(item)
      @processed << item
      item * 2
    end

    def results
      @processed.map { |item| item * 2 }
    end

    def process_all_items(items)
      items.each { |item| process_item(item) }
    end

    def dangerous_operation
      @attempts += 1
      raise IOError, "disk went away" if (@failures_left -= 1) >= 0

      :ok
    end

    def current_item
      "app/models/user.rb"
    end

    def execute_task(task)
      task.track_cost(task.budget / 2)
      @processed << task.task_id
      :executed
    end

    def retry_count
      @attempts
    end

    # "Resuming from Checkpoint" uses the session of "Basic Checkpointing".
    def session
      @session ||= MASTER::SessionRecovery.new(task_id: "refactor-users-module", budget: 5.0)
    end
  end

  def snippet(heading, index = 0)
    SeedSnippets[heading].fetch(index)
  end

  it "Basic Checkpointing: checkpoints every 10 items, then completes" do
    world = SnippetWorld.new
    world.run(snippet("Basic Checkpointing"))
    expect(world.processed).to eq((1..25).to_a)
    expect(checkpoint_numbers("refactor-users-module").size).to eq(3)
    second = read_checkpoint("refactor-users-module", 2)
    expect(second["progress"]["items_processed"]).to eq(20)
    expect(second["state"]["processed"]).to eq((1..20).map { |i| i * 2 })
    expect(read_checkpoint("refactor-users-module", 3)["status"]).to eq("completed")
  end

  it "Basic Checkpointing: an error is checkpointed, then re-raised" do
    world = SnippetWorld.new(items: [1, 2, :boom])
    def world.process_item(item)
      raise ArgumentError, "cannot process #{item}" if item == :boom

      super
    end
    expect { world.run(snippet("Basic Checkpointing")) }.to raise_error(ArgumentError, /cannot process boom/)
    failed = read_checkpoint("refactor-users-module", 1)
    expect(failed["status"]).to eq("failed")
    expect(failed["error"]).to include("class" => "ArgumentError", "item" => "boom")
  end

  it "Resuming from Checkpoint: continues from the restored position" do
    first = SnippetWorld.new
    first.session.checkpoint(progress: 10, data: { processed: (1..10).map { |i| i * 2 } })

    resumed = SnippetWorld.new
    expect { resumed.run(snippet("Resuming from Checkpoint")) }
      .to output(/Found checkpoint from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/).to_stdout
    expect(resumed.processed).to eq((11..25).to_a)
  end

  it "Resuming from Checkpoint: starts fresh without a checkpoint" do
    world = SnippetWorld.new
    world.run(snippet("Resuming from Checkpoint"))
    expect(world.processed).to eq((1..25).to_a)
  end

  it "Queue with Recovery: runs the three tasks with their budgets, then resume finds nothing left" do
    world = SnippetWorld.new
    expect { world.run(snippet("Queue with Recovery")) }
      .to output("Spent: $1.0 / $10.0\nSpent: $2.5 / $10.0\nSpent: $3.25 / $10.0\n").to_stdout
    expect(world.processed).to eq(%w[refactor-users extract-services update-tests])
  end

  it "Integration with Queue System: with no block anywhere, process and resume return Enumerators" do
    world = SnippetWorld.new
    result = world.run(snippet("Integration with Queue System"))
    expect(result).to be_a(Enumerator)
    expect(store_empty?).to be(true)
  end

  it "Graceful Shutdown: installs handlers that checkpoint the queue and exit 0" do
    out, err, status = run_ruby(<<~RUBY)
      queue = MASTER::Queue.new(budget: 1.0)
      queue.add("Sleeper")
      #{snippet('Graceful Shutdown').code}
      queue.process { |task| Process.kill("TERM", Process.pid); sleep 5 }
    RUBY
    expect(status.exitstatus).to eq(0), err
    expect(out).to eq("\nTerminating with checkpoint...\n")
    expect(MASTER::SessionPersistence.load("queue.default")[:state][:tasks].first[:status]).to eq("running")
  end

  it "Budget Tracking: remaining 9.25 and 7.5% used, no warning" do
    expect { SnippetWorld.new.run(snippet("Budget Tracking")) }.to output("9.25\n7.5\n").to_stdout
  end

  it "Automatic Checkpoint Intervals: tick checkpoints every 100 items" do
    world = SnippetWorld.new(items: (1..250).to_a)
    world.run(snippet("Automatic Checkpoint Intervals"))
    expect(checkpoint_numbers("process-large-dataset").size).to eq(2)
    expect(read_checkpoint("process-large-dataset", 2)["progress"]["items_processed"]).to eq(200)
  end

  it "Error Recovery: records the error with its context and retries" do
    world = SnippetWorld.new(failures: 1)
    world.run(snippet("Error Recovery"))
    failed = read_checkpoint("risky-task", 1)
    expect(failed["status"]).to eq("failed")
    expect(failed["error"]["class"]).to eq("IOError")
    expect(failed["error"]["message"]).to eq("disk went away")
    expect(failed["error"]["context"]).to eq("item" => "app/models/user.rb", "attempt" => 1)
  end

  it "Error Recovery: re-raises once retries are used up" do
    MASTER::SessionRecovery.new(task_id: "risky-task").tap do |s|
      3.times { s.checkpoint_error(RuntimeError.new("earlier")) }
    end
    expect { SnippetWorld.new(failures: 1).run(snippet("Error Recovery")) }.to raise_error(IOError)
  end

  it "Progress Callbacks: each callback gets the state hash", :gc_stress do
    world = SnippetWorld.new
    output = capture_stdout do
      session = world.run(snippet("Progress Callbacks"))
      session.checkpoint(progress: 3)
      session.track_cost(0.5)
      session.complete!
      MASTER::SessionRecovery.new(
        task_id: "long-task",
        on_resume: ->(state) { puts "Resuming from: #{state[:progress]} items" }
      )
    end
    expect(output).to eq("Checkpoint: 3 items\nCompleted: 3 items\nTotal cost: $0.5\nResuming from: 3 items\n")
  end

  it "Best Practices / Budget Management: warn_threshold is accepted" do
    expect { SnippetWorld.new.run(snippet("2. Budget Management")) }.not_to output.to_stdout
  end

  it "Best Practices / Error Handling: checkpoint, fail, roll back, re-raise" do
    world = SnippetWorld.new(failures: 1)
    expect { world.run(snippet("3. Error Handling")) }.to raise_error(IOError, "disk went away")
    statuses = (1..3).map { |n| read_checkpoint("refactor-users-module", n)["status"] }
    expect(statuses).to eq(%w[running failed running])
    expect(read_checkpoint("refactor-users-module", 1)["message"]).to eq("Before dangerous operation")
    expect(read_checkpoint("refactor-users-module", 3)["rollback_of"]).to eq(1)
  end

  it "Best Practices / Cleanup: removes week-old completed tasks, keeps failed ones" do
    old = "2020-01-01T00:00:00Z"
    MASTER::SessionPersistence.save("old-done", { timestamp: old, status: "completed" })
    MASTER::SessionPersistence.save("old-failed", { timestamp: old, status: "failed" })
    MASTER::SessionRecovery.new(task_id: "fresh").complete!
    result = SnippetWorld.new.run(snippet("4. Cleanup"))
    expect(result).to eq(["old-done"])
    expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }.sort).to eq(%w[fresh old-failed])
  end

  describe "Best Practices / Testing" do
    def create_session
      MASTER::SessionRecovery.new(task_id: "testing-snippet")
    end

    def restore_session
      MASTER::SessionRecovery.new(task_id: "testing-snippet")
    end

    snippet = SeedSnippets["5. Testing"].first
    module_eval(snippet.code, SeedSnippets::PATH, snippet.line)
  end

  it "Troubleshooting / Corrupt Checkpoint: detects the damage and starts fresh" do
    MASTER::SessionRecovery.new(task_id: "my-task").checkpoint(data: { x: 1 })
    corrupt_checkpoint("my-task", 1)
    expect { SnippetWorld.new.run(snippet("Corrupt Checkpoint")) }
      .to output("Checkpoint corrupt, starting fresh\n").to_stdout
    expect(task_stored?("my-task")).to be(false)
  end

  it "Troubleshooting / Corrupt Checkpoint: restores an intact one" do
    MASTER::SessionRecovery.new(task_id: "my-task").checkpoint(data: { x: 1 })
    expect { SnippetWorld.new.run(snippet("Corrupt Checkpoint")) }.not_to output.to_stdout
    expect(checkpoint_numbers("my-task").size).to eq(1)
  end

  it "Troubleshooting / Budget Exceeded: prints spent and limit, then raises the limit" do
    MASTER::SessionRecovery.new(task_id: "my-task", budget: 2.0).tap do |s|
      s.track_cost(2.5)
      s.checkpoint
    end
    expect { SnippetWorld.new.run(snippet("Budget Exceeded")) }.to output("Spent: $2.5\nLimit: $2.0\n").to_stdout
  end

  it "Migration: the new form saves and restores data" do
    world = SnippetWorld.new
    def world.data
      { progress: 50, files: ["a.rb"] }
    end
    code = snippet("Migration from pub2/pub3").code.lines.drop_while { |l| !l.include?("# New") }.join
    state = world.instance_eval(code)
    expect(state[:data]).to eq(progress: 50, files: ["a.rb"])
  end

  it "API Reference: the SessionRecovery signatures, called as listed" do
    task_id = "api-reference"
    options = { checkpoint_interval: 60 }
    session = MASTER.module_eval("binding", __FILE__, __LINE__).tap do |b|
      b.local_variable_set(:task_id, task_id)
      b.local_variable_set(:options, options)
    end.eval(snippet("SessionRecovery Class").code.lines.grep(/SessionRecovery\.new/).join)
    expect(session).to be_a(MASTER::SessionRecovery)
    expect(session.checkpoint(data: {}, message: nil)[:checkpoint]).to eq(1)
    expect(session.restore).to be_a(Hash)
    expect(session.checkpoint_exists?).to be(true)
    expect(session.budget_spent).to eq(0.0)
    expect(session.budget_remaining).to be_nil
    expect(session.over_budget?).to be(false)
    expect(session.can_retry?).to be(true)
    session.checkpoint
    expect(session.rollback(to_checkpoint: nil)[:checkpoint]).to eq(3)
    session.complete!
  end

  it "API Reference: the SessionPersistence signatures, called as listed" do
    b = MASTER.module_eval("binding", __FILE__, __LINE__)
    b.local_variable_set(:checkpoint_id, "api-persistence")
    b.local_variable_set(:data, { answer: 42 })
    b.local_variable_set(:older_than, 3600)
    b.local_variable_set(:options, { keep_failed: true })
    lines = snippet("SessionPersistence Class").code.lines.grep(/\ASessionPersistence\./)
    results = lines.map { |line| b.eval(line.sub(/ -> .*/, "")) }
    expect(results[0]).to eq(1)
    expect(results[1]).to include(answer: 42, task_id: "api-persistence")
    expect(results[2].map { |row| row[:task_id] }).to eq(["api-persistence"])
    expect(results[3]).to eq([])
  end

  def capture_stdout
    original = $stdout
    $stdout = StringIO.new
    yield
    $stdout.string
  ensure
    $stdout = original
  end
end
