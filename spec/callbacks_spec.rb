# frozen_string_literal: true

# Callbacks are kept by Rust; `rake gc_stress` runs these with GC.stress on,
# so a callback that Rust held without marking would be collected.
RSpec.describe "Callbacks", :gc_stress do
  def build(**callbacks)
    # Procs made here and referenced from nowhere else once this returns.
    seen = []
    session = MASTER::SessionRecovery.new(
      task_id: "callbacks", checkpoint_on_items: 2, checkpoint_interval: nil,
      on_checkpoint: ->(state) { seen << [:checkpoint, state[:progress]] },
      on_resume: ->(state) { seen << [:resume, state[:progress]] },
      on_complete: ->(state) { seen << [:complete, state[:items_total], state[:budget][:spent]] },
      **callbacks
    )
    [session, seen]
  end

  it "calls on_checkpoint, on_resume and on_complete with the state hash" do
    session, seen = build
    GC.start
    session.checkpoint(progress: 1)
    session.tick
    session.tick # two items since the last checkpoint: due
    session.track_cost(0.25)
    session.complete!
    expect(seen).to eq([[:checkpoint, 1], [:checkpoint, 3], [:complete, 3, 0.25]])
    _again, seen_again = build
    expect(seen_again).to eq([[:resume, 3]])
  end

  it "calls on_resume once per session" do
    MASTER::SessionRecovery.new(task_id: "callbacks").checkpoint(progress: 3)
    count = 0
    session = MASTER::SessionRecovery.new(task_id: "callbacks", auto_resume: false,
                                          on_resume: ->(_state) { count += 1 })
    2.times { session.restore }
    expect(count).to eq(1)
  end

  it "accepts any object that responds to call" do
    recorder = Class.new do
      attr_reader :states

      def initialize
        @states = []
      end

      def call(state)
        @states << state[:checkpoint]
      end
    end.new
    session = MASTER::SessionRecovery.new(task_id: "callbacks", on_checkpoint: recorder)
    session.checkpoint
    expect(recorder.states).to eq([1])
  end

  it "lets a callback's exception reach the caller after the checkpoint is durable" do
    session, = build(on_checkpoint: ->(_state) { raise "callback failed" })
    expect { session.checkpoint(progress: 7) }.to raise_error(RuntimeError, "callback failed")
    expect(read_checkpoint("callbacks", 1)["progress"]["items_processed"]).to eq(7)
  end

  it "lets a callback checkpoint again without deadlock" do
    session = nil
    depth = 0
    session = MASTER::SessionRecovery.new(task_id: "callbacks", on_checkpoint: lambda { |_state|
      depth += 1
      session.checkpoint(message: "nested") if depth == 1
    })
    session.checkpoint
    expect(checkpoint_numbers("callbacks").size).to eq(2)
  end

  it "keeps callbacks alive through many collections" do
    session, seen = build
    20.times do |i|
      GC.start(full_mark: true, immediate_sweep: true)
      GC.compact if GC.respond_to?(:compact) && i == 10
      session.checkpoint(progress: i)
    end
    expect(seen.size).to eq(20)
  end

  it "checkpoints from a trap handler without deadlock" do
    session, = build
    reader, writer = IO.pipe
    previous = trap("USR1") do
      session.checkpoint(message: "from trap")
      writer.write("x")
    end
    Process.kill("USR1", Process.pid)
    expect(reader.wait_readable(5)).not_to be_nil
    expect(read_checkpoint("callbacks", 1)["message"]).to eq("from trap")
  ensure
    trap("USR1", previous || "DEFAULT")
  end
end
