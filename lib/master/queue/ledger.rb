# frozen_string_literal: true

module MASTER
  # The queue's ledger (see lib/master/queue.rb for the class).
  class Queue
    # The queue's own state, as checkpoints of its ledger task
    # `queue.<name>`: the run's tasks (names, budgets, statuses, spending),
    # so `resume` in a new process knows them and `bin/cli checkpoint list`
    # shows the queue's progress. Which worker runs what is the claims'
    # business (Queue::Run); the ledger is what people and `resume` read.

    # Saves the ledger now, or (with `every:`) only if the last save is
    # that many seconds old: many workers finishing tiny tasks must not
    # rewrite it for each. No Mutex (`checkpoint!` calls it from a `trap`
    # handler): two threads saving at once is harmless, the store orders them.
    def save_ledger(every: nil)
      return unless @run_started_at

      now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      return if every && @ledger_saved_at && now - @ledger_saved_at < every

      @ledger_saved_at = now
      write_ledger
    end

    private

    def write_ledger
      done = @tasks.count(&:finished?)
      spent = total_spent
      running = @run ? @run.held.map(&:name) : []
      SessionPersistence.save(@ledger_id, {
                                status: done == @tasks.size ? "completed" : "running",
                                message: running.empty? ? nil : "running #{running.join(', ')}",
                                progress: { items_processed: done, items_total: @tasks.size,
                                            percentage: @tasks.empty? ? 100.0 : (done * 100.0 / @tasks.size).round(2) },
                                budget: { allocated: budget, spent: spent,
                                          remaining: budget && (Queue.exact(budget) - Queue.exact(spent)).to_f },
                                state: { name: @name, run_started_at: @run_started_at.iso8601,
                                         run: @run&.number, tasks: @tasks.map(&:to_h) }
                              }, store: @store)
    end

    # Takes over the state of an unfinished run of this queue: statuses,
    # spending and any tasks this process has not added again.
    def load_interrupted_run
      return if @loaded

      @loaded = true
      document = SessionPersistence.load(@ledger_id, store: @store)
      return unless document && document[:status] != "completed" && document.dig(:state, :tasks)

      state = document[:state]
      @run_started_at = begin
        Time.iso8601(state[:run_started_at])
      rescue StandardError
        Time.now.utc
      end
      @budget ||= document.dig(:budget, :allocated)
      added = @tasks.to_h { |task| [task.task_id, task] }
      @saved_ids = state[:tasks].map { |saved| saved[:task_id] }
      @tasks = state[:tasks].map do |saved|
        task = added.delete(saved[:task_id]) || Task.new(self, saved[:name], saved[:task_id], saved[:budget], nil,
                                                         from_store: true)
        task.restore(saved)
        task
      end + added.values
      log("continuing an interrupted run: #{completed.size} of #{@tasks.size} tasks done, " \
          "$#{format('%.2f', total_spent)} spent", level: :info)
    end

    # A saved run is continued only with the tasks it holds: added again in
    # this process, or none added (resume in a new process). Anything else
    # is another program's or another version's run: never adopted.
    def check_saved_run
      return unless @saved_ids

      added = @tasks.reject(&:from_store?).map(&:task_id)
      return if added.empty? || added.sort == @saved_ids.sort

      saved_only = @saved_ids - added
      added_only = added - @saved_ids
      done = @tasks.count { |task| @saved_ids.include?(task.task_id) && task.completed? }
      raise QueueMismatchError,
            "queue #{@name.inspect} has an interrupted run saved (#{@saved_ids.size} tasks, #{done} done) " \
            "whose tasks are not the ones added here#{" (saved only: #{saved_only.join(', ')})" unless saved_only.empty?}" \
            "#{" (added only: #{added_only.join(', ')})" unless added_only.empty?}; nothing was run. To continue " \
            "it, add the same tasks (or none, and call resume); to start a new run, call discard_saved_run " \
            "first, or give this queue another name:"
    end
  end
end
