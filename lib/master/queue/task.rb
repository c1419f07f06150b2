# frozen_string_literal: true

module MASTER
  class Queue
    # One task of a queue. The block receives it; it answers the session's
    # everyday methods itself, and stops the task (CancelledError,
    # LeaseLostError) when it was cancelled or its claim lost.
    class Task
      attr_reader :name, :task_id, :block, :session, :result, :error, :status, :claim

      def initialize(queue, name, task_id, budget, block, from_store: false)
        @queue = queue
        @name = name
        @task_id = task_id
        @budget = budget
        @block = block
        @from_store = from_store
        @status = "pending"
        @spent = 0.0
        @session = nil
        @own = false
        @claim = nil
      end

      alias description name

      # This task's budget in dollars, or nil.
      def budget
        @budget&.to_f
      end

      # Dollars this task has spent: while this process holds it (or after
      # this process finished it), as its session says; otherwise as the
      # store's claim says — what the worker holding it last reported, and
      # once it is finished, what its checkpoints recorded.
      def spent
        @session && @own ? @session.budget_spent : @spent
      end

      # Adds a cost to this task's session; with `enforce_budget`, raises
      # BudgetExceededError once the queue (or the task) is past its budget.
      def track_cost(amount)
        spent = ensure_started.track_cost(amount)
        @queue.check_spending(self)
        spent
      end

      def checkpoint(**options)
        ensure_started.checkpoint(**options)
      end

      def tick(items = 1)
        ensure_started.tick(items)
      end

      %w[pending running completed failed cancelled].each do |state|
        define_method("#{state}?") { @status == state }
      end

      # Completed, failed or cancelled: never run again in this run.
      def finished?
        %w[completed failed cancelled].include?(@status)
      end

      def from_store?
        @from_store
      end

      # @private a re-added task takes the saved one's place, with its block
      def adopt(added)
        @block = added.block
        @budget = added.budget || @budget
        @from_store = false
      end

      # @private back to pending, as if no run had seen it
      def forget_run
        @status = "pending"
        @spent = 0.0
        @error = nil
        @session = nil
        @own = false
        @claim = nil
      end

      # @private a failed task `resume` runs again, afresh
      def retry!
        @status = "pending"
        @error = nil
      end

      # @private
      def restore(saved)
        @status = saved[:status]
        @spent = saved[:spent].to_f
        @error = saved[:error]
      end

      # @private what the store says of this task's claim in the run: its
      # spending, and whether another worker finished it
      def observe(claim)
        observe_spending(claim)
        return unless FINAL.include?(claim[:state]) && !finished?

        @status = claim[:state]
      end

      # @private the spending the store's claim reports, unless this process
      # holds the task (its session knows better): a running claim's never
      # lowers what was seen (its holder reports at each heartbeat); a
      # finished claim's is what its last holder recorded, exactly.
      def observe_spending(claim)
        return if @own

        @spent = FINAL.include?(claim[:state]) ? claim[:spent].to_f : [@spent, claim[:spent].to_f].max
      end

      FINAL = %w[completed failed cancelled].freeze
      private_constant :FINAL

      # @private this worker lost the task: its session is no longer the
      # task's; what the task spent is the store's from now on, starting
      # from what this worker's session had.
      def disowned
        @spent = @session.budget_spent if @session && @own
        @own = false
      end

      # @private this worker holds the task under `claim`, until `lease`
      # seconds from now unless renewed
      def claimed(claim, lease)
        @claim = claim
        @lost = nil
        @cancel = false
        @deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + lease
      end

      # @private the heartbeat renewed the claim
      def renewed(lease)
        @deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + lease
      end

      # @private asked to stop (`Queue#cancel`, in any process)
      def cancel!
        @cancel = true
      end

      # @private the claim is no longer this worker's
      def lost!(reason)
        @lost = reason
      end

      # @private starts the task's session: afresh, or (`fresh: false`)
      # resuming its newest checkpoint in the store. Always a new session,
      # even when this process ran the task before: another worker may have
      # held it since (a takeover, then a handback), and its checkpoints —
      # steps and spending — are the task's; the old session's are not.
      def start(fresh:)
        @session = SessionRecovery.new(task_id: @task_id, budget: @budget, auto_resume: !fresh,
                                       **@queue.session_options)
        @session.send(:_fence, @claim[:token]) if @claim
        @own = true
        @status = "running"
      end

      # @private
      def finish(status, result: nil, error: nil)
        @status = status
        @result = result
        @error = error && "#{error.class}: #{error.message}"
      end

      def to_h
        { task_id: @task_id, name: @name, budget: budget, status: @status, spent: spent, error: @error }
      end

      def inspect
        "#<MASTER::Queue::Task #{@task_id} #{@status}#{" budget=#{budget}" if @budget} spent=#{spent}>"
      end

      private

      def ensure_started
        session = @session or
          raise MASTER::Error, "task #{@name.inspect} has not started; it gets a session when the queue runs it"
        stop_if_asked
        session
      end

      # Cancelled, or the claim lost (taken over, or expired by this
      # process's own clock — a paused worker learns it here, before it
      # writes): the task stops before doing more.
      def stop_if_asked
        raise stopping(CancelledError, "task #{@task_id.inspect} was cancelled; it stops here") if @cancel

        reason = @lost
        if @claim && !reason && Process.clock_gettime(Process::CLOCK_MONOTONIC) > @deadline
          reason = "its lease expired before the heartbeat renewed it (was the process paused?)"
        end
        return unless reason

        raise stopping(LeaseLostError, "task #{@task_id.inspect} is no longer this worker's: #{reason}; " \
                                       "the worker that holds it now resumes it from its last checkpoint")
      end

      def stopping(kind, message)
        kind.new(message).tap { |e| e.instance_variable_set(:@task_id, @task_id) }
      end
    end
  end
end
