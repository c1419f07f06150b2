# frozen_string_literal: true

require "time"

module MASTER
  # Tasks run in order, each with its own budget and SessionRecovery, with
  # the queue's own state checkpointed so an interrupted run continues in a
  # new process:
  #
  #   queue = MASTER::Queue.new(budget: 10.0)
  #   queue.add("Refactor users", budget: 2.0)
  #   queue.process { |task| run(task) }   # Ctrl-C, crash ...
  #   queue.resume                          # ... later: only what is not completed
  #
  # The queue's state is stored as checkpoints of the task "queue.<name>" in
  # the same store (so `bin/cli checkpoint list` shows it). Nothing here takes
  # a Mutex, so `checkpoint!` is safe inside a `trap` handler.
  #
  # It is also Ruby's thread queue (a ::Thread::Queue): code inside `module
  # MASTER` that writes `Queue.new` for one — MASTER v52's CLI, TTS and
  # Server do — gets `<<`, `push`, `pop`, `empty?`, `clear`, `size` as
  # Thread::Queue has them. No task method has a Thread::Queue method's name.
  class Queue < ::Thread::Queue
    OPTIONS = {
      budget: :optional_amount,
      name: :name,
      store: :store,
      checkpoint_dir: :path,
      checkpoint_interval: :seconds,
      checkpoint_on_items: :count,
      auto_resume: :boolean,
      resume_on_start: :boolean,
      handle_signals: :boolean,
      enforce_budget: :boolean,
      logger: :logger
    }.freeze

    # Signals the opt-in handler turns into "checkpoint, then stop".
    SIGNALS = %w[INT TERM].freeze

    attr_reader :name, :tasks

    # @param budget [Numeric, nil] dollars the whole queue may spend
    # @param name [String, nil] names the queue's state in the store; a new
    #   process resumes a queue by creating one with the same name. Without
    #   it, the program's file name ($PROGRAM_NAME): each script has its own.
    # @param handle_signals [Boolean] during process/resume, INT and TERM
    #   checkpoint the queue, then stop it (Interrupt / SignalException)
    # @param enforce_budget [Boolean] a running task's `track_cost` that
    #   takes the queue past its budget raises BudgetExceededError, which
    #   stops the queue (and a task's own budget is enforced by its session)
    def initialize(budget: nil, name: nil, **options)
      super()
      Options.check!(options, OPTIONS.except(:budget, :name), "MASTER::Queue.new")
      check_budget(budget)
      name = Queue.program_name if name.nil?
      name = name.to_s if name.is_a?(Symbol)
      Options.check_text!(name, "name")
      @name = name
      @ledger_id = "queue.#{Queue.slug(@name, what: 'name')}"
      @budget = budget
      @options = options
      @config = Config.settings
      @store = Config.store(options[:store], options[:checkpoint_dir])
      @logger = options.key?(:logger) ? options[:logger] : MASTER.logger
      @tasks = []
      @block = nil
      @current = nil
      @run_started_at = nil
      @loaded = false
      load_interrupted_run if option(:resume_on_start)
    end

    # Adds a task; its id is the description slugified
    # ("Extract services" → "extract-services").
    # @return [Task]
    def add(description, budget: nil, &block)
      Options.check_text!(description, "description")
      check_budget(budget, "budget of #{Options.shown(description)}")
      task = Task.new(self, description, Queue.slug(description), budget, block)
      clash = @tasks.find { |other| other.task_id == task.task_id }
      if clash && !clash.from_store?
        raise ArgumentError, "task #{Options.shown(description)} would have the same id (#{task.task_id}) as " \
                             "#{Options.shown(clash.name)}; give it another description"
      end
      clash ? clash.adopt(task) : (@tasks << task)
      clash || task
    end

    # Runs the pending tasks in order, each given to the block (or to its own
    # block from `add`). With `auto_resume`, first continues an interrupted
    # run of this queue. Without any block, returns an Enumerator.
    # @return [self]
    def process(&block)
      @block = block if block
      return enum_for(:process) unless runnable?

      load_interrupted_run if option(:auto_resume)
      run
    end

    # Continues an interrupted run of this queue (in this process or a new
    # one), skipping completed tasks.
    # @return [self]
    def resume(&block)
      @block = block if block
      return enum_for(:resume) unless runnable?

      load_interrupted_run
      run
    end

    # Persists the queue now: the running task's session and the queue's
    # state. Safe inside a `trap` handler, even while a task checkpoints.
    # @return [true]
    def checkpoint!
      @current&.session&.checkpoint(message: "checkpoint! of queue #{@name}")
      save_ledger
      true
    end

    # Dollars spent by this run's tasks, exactly added.
    def total_spent
      spent_exactly.to_f
    end

    # The queue's budget in dollars, or nil.
    def budget
      @budget&.to_f
    end

    def pending
      @tasks.reject(&:completed?)
    end

    def completed
      @tasks.select(&:completed?)
    end

    def failed
      @tasks.select(&:failed?)
    end

    # True when the last run stopped because the budget was spent.
    def stopped_for_budget?
      @stopped_for_budget == true
    end

    # Raises the queue's budget by `amount` dollars (and persists it), so a
    # queue stopped for its budget goes on with `resume`.
    # @return [Float] the new budget
    def increase_budget(amount)
      unless amount.is_a?(Numeric) && amount.real? && amount.finite? && amount.positive?
        raise ArgumentError, "amount must be a positive number of dollars; got #{Options.shown(amount)}"
      end

      @budget = (Queue.exact(@budget || 0) + Queue.exact(amount)).to_f
      check_budget(@budget)
      save_ledger
      budget
    end

    # True when a task's `track_cost` that takes the queue past its budget
    # stops it (`enforce_budget`).
    def enforce_budget?
      option(:enforce_budget) == true
    end

    # @private Raises BudgetExceededError when `task`'s spending took the
    # queue past its enforced budget; the task's session has recorded it.
    def check_spending(task)
      return unless enforce_budget? && @budget && spent_exactly > Queue.exact(@budget)

      message = "queue #{@name.inspect} is over its budget: spent $#{format('%.2f', total_spent)} of " \
                "$#{format('%.2f', @budget)} (recorded); call increase_budget, then resume, to go on"
      task.session&.checkpoint(message: message)
      error = BudgetExceededError.new(message)
      { task_id: task.task_id, spent: total_spent, limit: budget, queue: @name }.each do |field, value|
        error.instance_variable_set(:"@#{field}", value)
      end
      raise error
    end

    # Forgets this queue's saved run (its ledger), so the next `process`
    # starts a new one. The tasks' own checkpoints are kept.
    # @return [Boolean] whether there was one
    def discard_saved_run
      @loaded = true # nothing left to load
      @saved_ids = nil
      @run_started_at = nil
      @tasks = @tasks.reject(&:from_store?).each(&:forget_run)
      SessionPersistence.remove(@ledger_id, store: @store)
    end

    def inspect
      "#<MASTER::Queue #{@name.inspect} tasks=#{@tasks.size} pending=#{pending.size} " \
        "spent=#{total_spent}#{" budget=#{budget}" if @budget}>"
    end

    # The name of a queue created without `name:`: the running program's
    # file name, so two scripts in one directory never share a saved run.
    # (`ruby -e` and a script on standard input have no file: "default".)
    def self.program_name
      name = File.basename($PROGRAM_NAME.to_s, ".*").dup.force_encoding(Encoding::UTF_8)
      name.valid_encoding? && !name.start_with?("-") && name.match?(/[\p{L}\p{N}]/) ? name : "default"
    end

    # The most bytes a slug keeps: with "queue." in front it is still a
    # task id (at most 255 bytes).
    SLUG_BYTES = 200

    # "Extract services" → "extract-services", "Résumé" → "resume";
    # letters and digits of every script are kept ("日本語のタスク").
    def self.slug(text, what: "description")
      # The slug keeps at most 200 bytes, so the rest need not be read.
      head = text[0, 1000]
      head = head.dup.force_encoding(Encoding::UTF_8) if head.ascii_only?
      slug = +""
      head.unicode_normalize(:nfc).downcase.each_char do |char|
        slug << (char.match?(/[\p{L}\p{N}]/) ? fold(char) : "-")
      end
      slug = slug.squeeze("-").gsub(/\A-+|-+\z/, "")
      raise ArgumentError, "#{what} #{Options.shown(text)} has no letters or digits to name a task by" if slug.empty?

      slug = slug.chop while slug.bytesize > SLUG_BYTES
      slug.chomp("-")
    end

    # A Latin letter without its accents (é → e, ﬁ → fi); any other letter
    # or digit as it is (が keeps its mark: か is another word).
    def self.fold(char)
      plain = char.unicode_normalize(:nfkd).gsub(/\p{Mn}/, "")
      plain.match?(/\A[a-z0-9]+\z/) ? plain : char
    end
    private_class_method :fold

    # A Float of dollars as the exact decimal it prints as.
    def self.exact(amount)
      amount.is_a?(Float) ? Rational(amount.to_s) : Rational(amount)
    end

    # Options a task's SessionRecovery inherits from the queue.
    def session_options
      {
        store: @store,
        logger: @logger,
        **@options.slice(:checkpoint_interval, :checkpoint_on_items, :enforce_budget)
      }
    end

    def log(message, level: :warn)
      return unless @logger

      level = :warn unless @logger.respond_to?(level)
      @logger.public_send(level, "queue #{@name.inspect}: #{message}")
    end

    private

    def option(key)
      @options.key?(key) ? @options[key] : @config[key]
    end

    def check_budget(budget, name = "budget")
      Options.check_budget!(budget, name)
    end

    def runnable?
      @block || @tasks.any?(&:block)
    end

    def run
      check_saved_run
      @run_started_at ||= Time.now.utc
      @stopped_for_budget = false
      check_blocks
      with_signal_handlers do
        catch(:stopped_for_budget) do
          index = 0
          while (task = @tasks[index])
            index += 1
            next if task.completed?
            break if budget_spent_before?(task)

            run_task(task)
          end
        end
      end
      self
    ensure
      @current = nil
      save_ledger if @run_started_at
    end

    def check_blocks
      missing = pending.reject { |task| task.block || @block }
      return if missing.empty?

      raise ArgumentError, "task #{missing.first.name.inspect} has no block: pass one to process, " \
                           "resume or add"
    end

    def spent_exactly
      @tasks.sum(Rational(0)) { |task| Queue.exact(task.spent) }
    end

    def budget_spent_before?(task)
      return false unless @budget && spent_exactly >= Queue.exact(@budget)

      @stopped_for_budget = true
      left = pending.map(&:name)
      log("stopped before #{task.name.inspect}: spent $#{format('%.2f', total_spent)} of its " \
          "$#{format('%.2f', @budget)} budget; #{left.size} task#{'s' unless left.size == 1} not run " \
          "(#{left.join(', ')}). Call increase_budget, then resume, to go on.")
      true
    end

    def run_task(task)
      # A task this run already started (interrupted or failed) resumes its
      # own session; one never started begins afresh.
      task.start(fresh: task.pending?)
      @current = task
      save_ledger
      if task.session.status == "completed"
        task.finish("completed") # it finished just before the process died
        return
      end
      result = (task.block || @block).call(task)
      task.session.complete!
      task.finish("completed", result: result)
    rescue StandardError => e
      stop_for_budget(task, e) if e.is_a?(BudgetExceededError) && e.queue == @name
      task.session&.checkpoint_error(e)
      task.finish("failed", error: e)
      log("task #{task.name.inspect} failed (#{e.class}: #{e.message}); going on with the next one")
    ensure
      # An Interrupt or SystemExit leaves the task running, for resume to run
      # again from its session's checkpoint — which must hold what it spent.
      if task.running?
        interrupted(task)
      else
        @current = nil
      end
      save_ledger
    end

    # The queue's enforced budget stopped `task`: it is left to resume, not
    # failed, and the queue stops.
    def stop_for_budget(task, error)
      @stopped_for_budget = true
      log("stopped during #{task.name.inspect}: #{error.message}")
      throw :stopped_for_budget
    end

    def interrupted(task)
      task.session&.checkpoint(message: "interrupted; resume runs this task again")
    rescue StandardError => e
      log("could not checkpoint interrupted task #{task.name.inspect}: #{e.message}")
    end

    def with_signal_handlers
      return yield unless option(:handle_signals)

      previous = SIGNALS.to_h do |signal|
        [signal, trap(signal) do
          checkpoint!
          log("#{signal} received: queue checkpointed; call resume to go on")
          raise(signal == "INT" ? Interrupt : SignalException.new(signal))
        end]
      end
      begin
        yield
      ensure
        previous.each { |signal, handler| trap(signal, handler || "DEFAULT") }
      end
    end

    # The queue's state, as a checkpoint of its own ledger task.
    def save_ledger
      return unless @run_started_at

      done = completed.size
      spent = total_spent
      state = {
        name: @name,
        run_started_at: @run_started_at.iso8601,
        tasks: @tasks.map(&:to_h)
      }
      SessionPersistence.save(@ledger_id, {
                                status: done == @tasks.size ? "completed" : "running",
                                message: @current ? "running #{@current.name}" : nil,
                                progress: { items_processed: done, items_total: @tasks.size,
                                            percentage: @tasks.empty? ? 100.0 : (done * 100.0 / @tasks.size).round(2) },
                                budget: { allocated: budget, spent: spent,
                                          remaining: budget && (Queue.exact(budget) - Queue.exact(spent)).to_f },
                                state: state
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

    # One task of a queue. The block receives it; it answers the session's
    # everyday methods itself.
    class Task
      attr_reader :name, :task_id, :block, :session, :result, :error, :status

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
      end

      alias description name

      # This task's budget in dollars, or nil.
      def budget
        @budget&.to_f
      end

      # Dollars this task has spent.
      def spent
        @session ? @session.budget_spent : @spent
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

      %w[pending running completed failed].each do |state|
        define_method("#{state}?") { @status == state }
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
      end

      # @private
      def restore(saved)
        @status = saved[:status]
        @spent = saved[:spent].to_f
        @error = saved[:error]
      end

      # @private
      def start(fresh:)
        return @status = "running" if @session && !fresh # resumed in the same process

        @session = SessionRecovery.new(task_id: @task_id, budget: @budget, auto_resume: !fresh,
                                       **@queue.session_options)
        # A first checkpoint marks this run's start, so a completion left by
        # an earlier run is never mistaken for this one's.
        @session.checkpoint(progress: 0, message: "started by queue #{@queue.name}") if fresh
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
        @session or raise MASTER::Error, "task #{@name.inspect} has not started; it gets a session when the queue runs it"
      end
    end
  end
end
