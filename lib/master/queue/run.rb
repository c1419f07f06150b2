# frozen_string_literal: true

module MASTER
  class Queue
    # One run of a queue in this process: `workers` threads (the calling
    # thread alone when 1) claim the queue's tasks from the store one at a
    # time, under a lease a heartbeat renews, and run them; any number of
    # processes running the same queue share the run the same way. It ends
    # when every task is finished — completed, failed or cancelled — by
    # some worker: it waits for tasks other workers hold, and takes over
    # those whose lease expires. The store decides every claim
    # (src/store/claims.rs); this only orchestrates.
    class Run
      # How often a worker waiting for tasks held elsewhere looks again, at
      # most: it takes over one whose lease expires, and ends when all are.
      MAX_POLL = 0.2
      # How often the queue's own state (its ledger) is saved during a run.
      LEDGER_EVERY = 1.0

      attr_reader :number

      # `retry_failed` names the tasks that failed before this run started:
      # `resume` runs each once more.
      def initialize(queue, number, workers:, lease:, retry_failed: [])
        @queue = queue
        @number = number
        @workers = workers
        @lease = lease
        @retry = retry_failed.to_h { |task_id| [task_id, true] }
        @afresh = {} # task_id => true: retried failures start afresh
        @elsewhere = {} # task_id => when its lease runs out: held by another process
        @held = {} # task_id => Task, claimed by this process
        @lock = Mutex.new
        @stop = false
      end

      # Runs the workers until every task is finished, the budget stops
      # the queue, or an exception (Interrupt, SystemExit) ends the run.
      def call
        heartbeat = Thread.new { beat }
        heartbeat.report_on_exception = false
        @workers == 1 ? work("w1") : run_threads
      ensure
        @stop = true
        heartbeat&.wakeup if heartbeat&.alive?
        heartbeat&.join
      end

      # The tasks this process holds claims of now. Without the Mutex:
      # `checkpoint!` asks from a `trap` handler, and Hash#values is one
      # step under the GVL.
      def held
        @held.values
      end

      # With a budget: reads the claim of every unfinished task this process
      # does not hold, for what its holder last reported spending (each
      # holder reports at its heartbeats, a third of a lease apart, and when
      # it ends the task). Called before every claim, at every heartbeat and
      # (Queue#check_spending, with enforce_budget) at every track_cost, so
      # this process sees the others' spending at most a third of a lease
      # late. A store read per such task: without a budget, nothing reads.
      def refresh_spending
        return unless @queue.budget

        @queue.tasks.each do |task|
          next if task.finished? || @lock.synchronize { @held.key?(task.task_id) }

          claim = Queue._claim_of(@queue.store, task.task_id)
          next unless claim && claim[:run] == @number && claim[:queue] == @queue.name

          # A failure `resume` retries is not finished for this run yet.
          @lock.synchronize { @retry.key?(task.task_id) } ? task.observe_spending(claim) : task.observe(claim)
        end
      rescue StandardError => e
        @queue.log("could not read the other workers' spending: #{e.message}")
      end

      private

      def run_threads
        threads = Array.new(@workers) do |i|
          Thread.new do
            Thread.current.report_on_exception = false
            work("w#{i + 1}")
          end
        end
        begin
          threads.each(&:join)
        rescue Exception => e # rubocop:disable Lint/RescueException -- every worker stops, then it goes on up
          # No worker claims more; an interrupt reaches every running task,
          # which checkpoints and releases its claim.
          @stop = true
          threads.each do |t|
            t.raise(e) if t.alive? && !e.is_a?(StandardError)
            t.join
          rescue Exception # rubocop:disable Lint/RescueException -- the first one goes on up
            nil
          end
          raise
        end
      end

      # One worker: claim, run, repeat; wait while others hold what is left.
      def work(worker)
        until @stop || @queue.stopped_for_budget?
          case (task = next_task(worker))
          when :done then return
          when :wait then sleep(poll_interval)
          else run_task(task)
          end
        end
      end

      def poll_interval
        [@lease / 4.0, MAX_POLL].min
      end

      # The next task this worker claims, or :wait (workers elsewhere hold
      # what is left), or :done (every task is finished, or held by this
      # process's other workers, which finish them). Tasks another process
      # held at the last look are asked again only when nothing else is
      # left: a look costs a store transaction per task.
      def next_task(worker)
        refresh_spending
        waiting = false
        deferred = []
        @queue.tasks.each do |task|
          next if task.finished? || @lock.synchronize { @held.key?(task.task_id) }
          next deferred << task if held_elsewhere?(task)
          return :done if @queue.budget_spent_before?(task)

          case try_claim(task, worker)
          when :held then waiting = true
          when Task then return task
          end
        end
        deferred.each do |task|
          case try_claim(task, worker)
          when :held then waiting = true
          when Task then return task
          end
        end
        waiting ? :wait : :done
      end

      # The task, claimed for this worker; or :held (by another worker), or
      # nil (finished, or lost to another thread of this process).
      def try_claim(task, worker)
        again = @lock.synchronize { @retry.delete(task.task_id) } || false
        outcome, claim = Queue._claim(@queue.store, task.task_id, @queue.name, @number, worker, @lease, again)
        task.observe(claim)
        case outcome
        when :taken
          @lock.synchronize { @afresh[task.task_id] = true } if again
          hold(task, claim) ? task : nil
        when :held
          @lock.synchronize { @elsewhere[task.task_id] = claim[:expires_at] }
          :held
        end
      end

      # Another process held the task at the last look, and its lease has
      # not run out since.
      def held_elsewhere?(task)
        until_time = @lock.synchronize { @elsewhere[task.task_id] }
        return false unless until_time
        return true if Time.now < until_time

        @lock.synchronize { @elsewhere.delete(task.task_id) }
        false
      end

      def hold(task, claim)
        @lock.synchronize do
          task.claimed(claim, @lease)
          @held[task.task_id] = task
        end
      end

      def release(task)
        @lock.synchronize { @held.delete(task.task_id) }
      end

      def run_task(task)
        claim = task.claim
        afresh = @lock.synchronize { @afresh.delete(task.task_id) }
        task.start(fresh: afresh == true || !written_in_run?(task, claim))
        @queue.save_ledger(every: LEDGER_EVERY)
        if task.session.status == "completed"
          finish(task, "completed") # it finished just before its worker died
          return
        end
        result = (task.block || @queue.block).call(task)
        task.session.complete!
        finish(task, "completed", result: result)
      rescue LeaseLostError => e
        lost(task, e)
      rescue CancelledError => e
        record_failure(task, e)
        finish(task, "cancelled", error: e)
      rescue StandardError => e
        if e.is_a?(BudgetExceededError) && e.queue == @queue.name
          @queue.stop_for_budget(task, e)
          return
        end
        record_failure(task, e)
        finish(task, "failed", error: e)
        @queue.log("task #{task.name.inspect} failed (#{e.class}: #{e.message}); going on with the next one")
      ensure
        # An Interrupt, SystemExit or the budget leaves the task running:
        # checkpointed, its claim released so any worker resumes it at once.
        interrupted(task) if task.running? && @lock.synchronize { @held.key?(task.task_id) }
        @queue.save_ledger(every: LEDGER_EVERY)
      end

      # The first claim of a task in its run starts it afresh, and so does a
      # retry of a failure; a later one (a takeover, or after an
      # interruption) resumes the task's checkpoint if this run wrote one —
      # newer than the one it had when the run first took it (the claim's
      # base) — and starts afresh if not.
      def written_in_run?(task, claim)
        return false if claim[:attempt] <= 1

        newest = SessionPersistence.checkpoints(task.task_id, store: @queue.store).max
        !newest.nil? && (claim[:base].nil? || newest > claim[:base])
      end

      def record_failure(task, error)
        task.session&.checkpoint_error(error)
      rescue LeaseLostError => e
        lost(task, e)
      end

      def finish(task, status, result: nil, error: nil)
        return task.disowned unless release(task) # lost meanwhile: the new holder finishes it

        ended = Queue._end_claim(@queue.store, task.task_id, task.claim[:token], status, spent_text(task))
        ended ? task.finish(status, result: result, error: error) : task.disowned
      end

      # The task is another worker's now: nothing of it is recorded here.
      def lost(task, error)
        release(task)
        task.disowned
        task.finish("pending") if task.running?
        @queue.log("task #{task.name.inspect} was taken from this worker (#{error.message})", level: :info)
      end

      def interrupted(task)
        task.session&.checkpoint(message: "interrupted; resume runs this task again")
      rescue StandardError => e
        @queue.log("could not checkpoint interrupted task #{task.name.inspect}: #{e.message}")
      ensure
        Queue._end_claim(@queue.store, task.task_id, task.claim[:token], nil, spent_text(task)) if release(task)
        task.disowned
      end

      def spent_text(task)
        Queue.exact(task.spent).to_f.to_s
      end

      # Renews every claim this process holds, a third of a lease apart
      # (reporting each task's spending); tells tasks that were cancelled or
      # lost; reads the others' spending; keeps the run live.
      def beat
        due = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        until @stop
          # A third of a lease from the last beat's start, not its end.
          due += @lease / 3.0
          now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          now < due ? sleep(due - now) : due = now # late (a pause): from now on
          break if @stop

          held.each do |task|
            case Queue._renew(@queue.store, task.task_id, task.claim[:token], @lease, spent_text(task))
            when :held then task.renewed(@lease)
            when :cancel
              task.renewed(@lease)
              task.cancel!
            else task.lost!("its claim was taken over or expired")
            end
          rescue StandardError => e
            @queue.log("could not renew the claim of #{task.name.inspect}: #{e.message}")
          end
          refresh_spending
          keep_live
          @queue.save_ledger(every: LEDGER_EVERY)
        end
      end

      # The run is live while this process works in it: a `process` started
      # now, elsewhere, joins it instead of starting another.
      def keep_live
        until_ns = Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond) + (@lease * 1e9).to_i
        Queue._touch_run(@queue.store, @queue.ledger_id, @number, until_ns, false)
      rescue StandardError => e
        @queue.log("could not mark the run live: #{e.message}")
      end
    end
  end
end
