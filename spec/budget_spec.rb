# frozen_string_literal: true

RSpec.describe "Budget tracking" do
  def session(**options)
    MASTER::SessionRecovery.new(task_id: "budget", **options)
  end

  it "adds money up exactly" do
    s = session(budget: 1.0)
    1000.times { s.track_cost(0.001) }
    expect(s.budget_spent).to eq(1.0)
    expect(s.budget_remaining).to eq(0.0)
    expect(s.over_budget?).to be(false)
  end

  it "accepts Integer, Rational and BigDecimal amounts" do
    require "bigdecimal"
    s = session(budget: 10)
    s.track_cost(1)
    s.track_cost(1/4r)
    s.track_cost(BigDecimal("0.1"))
    expect(s.budget_spent).to eq(1.35)
  end

  it "answers the budget questions" do
    s = session(budget: 10.0, warn_threshold: 0.8)
    s.track_cost(0.25)
    expect(s.track_cost(0.50)).to eq(0.75)
    expect([s.budget_limit, s.budget_spent, s.budget_remaining, s.budget_used_percent]).to eq([10.0, 0.75, 9.25, 7.5])
    expect([s.over_budget?, s.near_budget_limit?]).to eq([false, false])
    s.track_cost(7.25)
    expect([s.over_budget?, s.near_budget_limit?]).to eq([false, true])
    s.track_cost(3)
    expect([s.over_budget?, s.budget_remaining]).to eq([true, -1.0])
    expect(s.budget_used_percent).to eq(110.0)
  end

  it "logs one warning at the threshold and one when exceeded" do
    s = session(budget: 1.0)
    5.times { s.track_cost(0.3) }
    warnings = MASTER.logger.warnings
    expect(warnings.size).to eq(2)
    expect(warnings[0]).to match(/task "budget" has used 90.0% of its budget \(\$0.90 of \$1.00\)/)
    expect(warnings[1]).to match(/task "budget" is over budget: spent \$1.20 of \$1.00; call increase_budget/)
  end

  it "without a budget, predicates are false and remaining is nil" do
    s = session
    s.track_cost(100)
    expect([s.over_budget?, s.near_budget_limit?, s.budget_remaining, s.budget_limit]).to eq([false, false, nil, nil])
    expect(s.budget_used_percent).to eq(0.0)
  end

  it "persists spending with the next checkpoint" do
    s = session(budget: 5.0)
    s.track_cost(2.13)
    expect(session(budget: 5.0).budget_spent).to eq(0.0)
    s.checkpoint
    expect(read_checkpoint("budget", 1)["budget"]).to eq("allocated" => 5.0, "spent" => 2.13, "remaining" => 2.87)
    expect(session(budget: 5.0).budget_spent).to eq(2.13)
  end

  it "increase_budget raises the limit and persists it" do
    s = session(budget: 2.0)
    s.track_cost(2.5)
    expect(s.increase_budget(5.0)).to eq(7.0)
    expect(s.over_budget?).to be(false)
    s.checkpoint
    expect(session.budget_limit).to eq(7.0)
  end

  # Regression (issue 8): BudgetExceededError existed but nothing raised it.
  describe "enforce_budget: true" do
    it "records and persists the amount that passes the limit, then raises, and so for every later one" do
      s = session(budget: 1.0, enforce_budget: true)
      s.checkpoint(data: { step: 1 })
      s.track_cost(0.9)
      expect do
        s.track_cost(0.2)
      end.to raise_error(MASTER::BudgetExceededError,
                         /over its budget: spent \$1.10 of \$1.00.*increase_budget/) { |e|
               expect([e.task_id, e.spent, e.limit]).to eq(["budget", 1.1, 1.0])
             }
      expect(MASTER::SessionRecovery.new(task_id: "budget").budget_spent).to eq(1.1)
      expect(MASTER::SessionPersistence.load("budget")).to include(state: { step: 1 })
      expect { s.track_cost(0.01) }.to raise_error(MASTER::BudgetExceededError)
      expect(s.budget_spent).to eq(1.11)
      s.increase_budget(1.0)
      expect(s.track_cost(0.1)).to eq(1.21)
    end

    it "is read from the configuration" do
      FileUtils.mkdir_p("config")
      File.write("config/session_recovery.yml", "session_recovery:\n  enforce_budget: true\n")
      expect { session(budget: 0.5).track_cost(1) }.to raise_error(MASTER::BudgetExceededError)
      expect { session(budget: 5, enforce_budget: false).track_cost(10) }.not_to raise_error
    end
  end

  # Regression (issue 8): MASTER_AUTO_RESUME=false started the spending at
  # $0 over a history that said $3.00, as if the money had been refunded.
  it "keeps money already spent when a task starts afresh" do
    s = session(budget: 5.0)
    s.track_cost(3.0)
    s.checkpoint(progress: 7)
    ENV["MASTER_AUTO_RESUME"] = "false"
    fresh = session(budget: 5.0)
    expect([fresh.progress, fresh.budget_spent, fresh.budget_remaining]).to eq([0, 3.0, 2.0])
    fresh.checkpoint(progress: 1)
    expect(MASTER::SessionPersistence.summary("budget")[:budget]).to eq(allocated: 5.0, spent: 3.0, remaining: 2.0)
  end
end
