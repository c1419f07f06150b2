# frozen_string_literal: true

require "time"
require_relative "queue/task"
require_relative "queue/run"
require_relative "queue/ledger"

module MASTER
  # Tasks run in order, each with its own budget and SessionRecovery, with
  # the queue's own state checkpointed so an interrupted run continues in a
  # new process; any number of workers — threads (`workers:`), processes,
  # machines on one PostgreSQL store — share a queue of the same name, each
  # task claimed by one worker at a time (see Queue::Run):
  #
  #   queue = MASTER::Queue.new(budget: 10.0)
  #   queue.add("Refactor users", budget: 2.0)
  #   queue.process { |task| run(task) }   # Ctrl-C, crash ...
  #   queue.resume                          # ... later: only what is not completed
  #
  # The queue's state is stored as checkpoints of the task "queue.<name>" in
  # the same store (so `bin/cli checkpoint list` shows it). Nothing
  # `checkpoint!` calls takes a Mutex, so it is safe inside a `trap` handler.
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
      workers: :workers,
      lease: :lease,
      logger: :logger
    }.freeze

    # A task's lease, in seconds, when `lease:` is not given.
    DEFAULT_LEASE = 30

    # Signals the opt-in handler turns into "checkpoint, then stop".
    SIGNALS = %w[INT TERM].freeze

    attr_reader :name, :tasks, :store, :ledger_id, :block

    # @param budget [Numeric, nil] dollars the whole queue may spend
    # @param name [String, nil] names the queue's state in the store; a new
    #   process resumes a queue by creating one with the same name. Without
    #   it, the program's file name ($PROGRAM_NAME): each script has its own.
    # @param handle_signals [Boolean] during process/resume, INT and TERM
    #   checkpoint the queue, then stop it (Interrupt / SignalException)
    # @param enforce_budget [Boolean] a running task's `track_cost` that
    #   takes the queue past its budget raises BudgetExceededError, which
    #   stops the queue (and a task's own budget is enforced by its session)
    # @param workers [Integer] tasks run at once in this process (threads)
    # @param lease [Numeric] seconds a worker holds a task without renewing
    #   (a heartbeat renews it every third of that); a dead worker's task
    #   is taken over once its lease expires
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
      @run = nil
      @run_started_at = nil
      @loaded = false
      load_interrupted_run if option(:resume_on_start)
    end

    # Adds a task; its id is the description slugified
    # ("Extract services" → "extract-services"). Adding the same description
    # again returns the task already added (every worker process adds the
    # same tasks).
    # @return [Task]
    def add(description, budget: nil, &block)
      Options.check_text!(description, "description")
      check_budget(budget, "budget of #{Options.shown(description)}")
      task = Task.new(self, description, Queue.slug(description), budget, block)
      clash = @tasks.find { |other| other.task_id == task.task_id }
      return clash if clash && !clash.from_store? && clash.name == description && budget.nil? && block.nil?

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
      run(resume: option(:auto_resume) == true)
    end

    # Continues an interrupted run of this queue (in this process or a new
    # one), skipping completed tasks.
    # @return [self]
    def resume(&block)
      @block = block if block
      return enum_for(:resume) unless runnable?

      load_interrupted_run
      run(resume: true)
    end

    # Persists the queue now: the running tasks' sessions and the queue's
    # state. Safe inside a `trap` handler, even while a task checkpoints.
    # @return [true]
    def checkpoint!
      running = @run ? @run.held : []
      running.each { |task| task.session&.checkpoint(message: "checkpoint! of queue #{@name}") }
      save_ledger
      true
    end

    # Stops task `task_id` at its next `tick`, `checkpoint` or `track_cost`,
    # in whichever process runs it (CancelledError); a task not started is
    # never run. It is recorded as cancelled, and the queue goes on.
    # @return [Boolean] false when the task had finished already
    def cancel(task_id)
      Options.check_text!(task_id, "task_id")
      claim = Queue._cancel(@store, task_id)
      return false unless claim

      @run&.held&.find { |task| task.task_id == task_id }&.cancel!
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

    def cancelled
      @tasks.select(&:cancelled?)
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

    # @private The enforced budget stopped `task`: it is left to resume, not
    # failed, and no worker of this process claims another task.
    def stop_for_budget(task, error)
      @stopped_for_budget = true
      log("stopped during #{task.name.inspect}: #{error.message}")
    end

    # @private True (and said once) when the budget is spent before `task`.
    def budget_spent_before?(task)
      return false unless @budget && spent_exactly >= Queue.exact(@budget)

      unless @stopped_for_budget
        left = pending.map(&:name)
        log("stopped before #{task.name.inspect}: spent $#{format('%.2f', total_spent)} of its " \
            "$#{format('%.2f', @budget)} budget; #{left.size} task#{'s' unless left.size == 1} not run " \
            "(#{left.join(', ')}). Call increase_budget, then resume, to go on.")
      end
      @stopped_for_budget = true
    end

    # @private Raises BudgetExceededError when `task`'s spending took the
    # queue past its enforced budget; the task's session has recorded it.
    def check_spending(task)
      return unless enforce_budget? && @budget

      @run&.refresh_spending
      return unless spent_exactly > Queue.exact(@budget)

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

    # @private
    def self.exact_or_zero(amount)
      amount.nil? ? Rational(0) : exact(amount)
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

    def run(resume:)
      check_saved_run
      check_blocks
      @run_started_at ||= Time.now.utc
      @stopped_for_budget = false
      lease = option(:lease) || DEFAULT_LEASE
      failures = resume ? failed.each(&:retry!).map(&:task_id) : []
      @run = Run.new(self, Queue._enter_run(@store, @ledger_id, resume, lease),
                     workers: option(:workers) || 1, lease: lease, retry_failed: failures)
      save_ledger
      with_signal_handlers { @run.call }
      Queue._touch_run(@store, @ledger_id, @run.number, 0, true) if @tasks.all?(&:finished?)
      self
    ensure
      save_ledger if @run_started_at
      @run = nil
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
  end
end
