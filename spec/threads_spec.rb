# frozen_string_literal: true

RSpec.describe "Threads on one session" do
  it "lose no tick and no cost across eight threads" do
    session = MASTER::SessionRecovery.new(task_id: "threads", budget: 100.0,
                                          checkpoint_on_items: 500, checkpoint_interval: nil)
    threads = Array.new(8) do
      Thread.new do
        1000.times do
          session.tick
          session.track_cost(0.001)
        end
      end
    end
    threads.each(&:join)
    expect(session.progress).to eq(8000)
    expect(session.budget_spent).to eq(8.0)
    state = session.checkpoint
    expect(state[:progress]).to eq(8000)
    expect(state[:budget][:spent]).to eq(8.0)
    progress = MASTER::SessionPersistence.checkpoints("threads").map do |n|
      MASTER::SessionPersistence.read("threads", n)[:progress][:items_processed]
    end
    expect(progress).to eq(progress.sort), "checkpoints on disk never go back in time"
  end

  it "let other threads run while a checkpoint is written" do
    session = MASTER::SessionRecovery.new(task_id: "gvl")
    big = { items: Array.new(200_000) { |i| "app/models/file_#{i}.rb" } }
    counter = 0
    ticker = Thread.new do
      loop do
        counter += 1
        Thread.pass
      end
    end
    5.times { session.checkpoint(data: big) }
    ticker.kill
    expect(counter).to be > 0
  end
end
