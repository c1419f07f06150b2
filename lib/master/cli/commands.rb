# frozen_string_literal: true

module MASTER
  class CLI
    # The subcommands of `bin/cli checkpoint`, one method each, and what they
    # share: which store, reading arguments, saying a task is unknown. They
    # read and write only through SessionRecovery and SessionPersistence.
    module Commands
      private

      def create(argv, options)
        parse("create", argv, options) do |o|
          o.on("--task T", "the task id (required)") { |task| options[:task] = task }
          o.on("--data JSON", "the task's data as JSON (left out: the last data is kept)") { |json| options[:data] = json }
          o.on("--progress N", Integer, "items processed so far") { |n| options[:progress] = n }
          o.on("--items-total N", Integer, "items in all") { |n| options[:items_total] = n }
          o.on("--message M", "a note stored with the checkpoint") { |message| options[:message] = message }
        end
        no_arguments!(argv)
        task = options[:task] or raise UsageError, "missing --task T; see #{@program} #{@context} --help"
        data = options.key?(:data) ? parse_data(options[:data]) : nil
        dir = store(options)
        unless Config.settings[:enabled]
          raise Failure, "checkpointing is turned off (enabled: false in the configuration); nothing was written"
        end

        # auto_resume: true so that what is not given carries over, whatever the config says.
        session = SessionRecovery.new(task_id: task, store: dir, auto_resume: true)
        state = session.checkpoint(data: data, progress: options[:progress],
                                   items_total: options[:items_total], message: options[:message])
        return emit_json(state, options) if options[:json]

        say("Wrote checkpoint #{state[:checkpoint]} of #{task} (#{progress_text(state[:progress],
                                                                                state[:items_total])}) in #{dir}")
      end

      def list(argv, options)
        parse("list", argv, options)
        no_arguments!(argv)
        dir = existing_store(options)
        rows = SessionPersistence.list(store: dir)
        rows.each { |row| add_worker(row, dir) }
        return emit_json(rows, options) if options[:json]
        return say("No checkpoints in #{dir}") if rows.empty?

        say(rows.map { |row| task_block(row) }.join("\n"))
      end

      def show(argv, options)
        parse("show", argv, options)
        task = one_argument!(argv, "TASK")
        dir = existing_store(options)
        # The damaged checkpoints are shown in the list below: no warnings for them.
        summary = quietly { SessionPersistence.summary(task, store: dir) }
        add_worker(summary, dir) if summary
        entries = SessionPersistence.history(task, store: dir)
        unknown_task!(task, dir) if summary.nil? && entries.empty?
        if options[:json]
          return emit_json({ task_id: task, directory: SessionPersistence.location(task, store: dir), summary: summary,
                             checkpoints: entries }, options)
        end

        say(show_text(task, summary, entries, SessionPersistence.location(task, store: dir)))
      end

      def resume(argv, options)
        parse("resume", argv, options) do |o|
          o.on("--latest", "the task checkpointed most recently") { options[:latest] = true }
          o.on("--checkpoint N", Integer, "that checkpoint instead of the newest intact one") { |n| options[:number] = n }
        end
        dir = existing_store(options)
        task = if options[:latest]
                 no_arguments!(argv)
                 latest_task(dir)
               else
                 one_argument!(argv, "TASK (or --latest)")
               end
        unknown_task!(task, dir) if SessionPersistence.checkpoints(task, store: dir).empty?

        state = restore(task, options[:number], dir)
        unknown_task!(task, dir) if state.nil?
        emit_json(state, options) # pretty unless --json asked for one line
      end

      def clean(argv, options)
        parse("clean", argv, options) do |o|
          o.on("--older-than AGE", "tasks last checkpointed longer ago than AGE (7d, 12h, 30m)") do |age|
            options[:older_than] = duration(age)
            options[:older_than_text] = age
          end
          o.on("--completed", "completed tasks, of any age") { options[:completed] = true }
          o.on("--dry-run", "list what would be removed; remove nothing") { options[:dry_run] = true }
        end
        no_arguments!(argv)
        dir = existing_store(options)
        rule = cleanup_rule(options)
        doomed = SessionPersistence.cleanup(**rule, dry_run: true, store: dir)
        removed = options[:dry_run] ? doomed : with_progress(dir, doomed) { SessionPersistence.cleanup(**rule, store: dir) }
        return emit_json({ store: dir, dry_run: options[:dry_run] == true, removed: removed }, options) if options[:json]

        say(clean_text(removed, dir, options))
      end

      def remove(argv, options)
        parse("remove", argv, options)
        task = one_argument!(argv, "TASK")
        dir = existing_store(options)
        count = SessionPersistence.checkpoints(task, store: dir).size
        unknown_task!(task, dir) unless SessionPersistence.remove(task, store: dir)
        return emit_json({ removed: task, checkpoints: count, store: dir }, options) if options[:json]

        say("Removed #{task} and its #{plural(count, 'checkpoint')} from #{dir}")
      end

      def cancel(argv, options)
        parse("cancel", argv, options)
        task = one_argument!(argv, "TASK")
        dir = existing_store(options)
        claim = Queue._cancel(dir, task)
        raise Failure, "task #{task.inspect} has finished already; there is nothing to cancel" unless claim

        running = claim[:state] == "running"
        return emit_json({ cancelled: task, running: running, store: dir }, options) if options[:json]

        if running
          say("Cancelled #{task}: its worker (#{claim[:host]} pid #{claim[:pid]}) stops it at its next step")
        else
          say("Cancelled #{task}: no worker runs it now, and none will")
        end
      end

      def migrate(argv, options)
        parse("migrate", argv, options)
        no_arguments!(argv)
        dir = existing_store(options)
        unless dir.start_with?("/")
          raise Failure, "the old MASTER v52 checkpoint files are in a directory, and the store is " \
                         "#{SessionPersistence.location(store: dir)}; name their directory with --dir DIR"
        end
        unless Config.settings[:enabled]
          raise Failure, "checkpointing is turned off (enabled: false in the configuration); nothing was imported"
        end

        result = with_migrate_progress(dir) { |progress| V52::Migration.new(dir, progress: progress).run }
        return emit_json(result, options) if options[:json]

        say(migrate_text(result))
      end

      def migrate_text(result)
        if result[:old_files].zero?
          return "No MASTER v52 checkpoint files (checkpoint_<epoch>.json) in #{result[:store]}; nothing to import"
        end

        lines = if result[:imported].empty?
                  ["Nothing new to import from #{result[:store]} into task #{result[:task]}."]
                else
                  ["Imported #{plural(result[:imported].size, 'MASTER v52 checkpoint file')} from #{result[:store]} " \
                   "into task #{result[:task]}. The files are kept, recorded as imported in " \
                   "#{File.basename(result[:record])}: SessionRecovery.new reads their checkpoints from the task now."]
                end
        lines << "#{plural(result[:already_imported].size, 'file')} already imported." unless result[:already_imported].empty?
        unless result[:damaged].empty?
          lines << "#{plural(result[:damaged].size, 'damaged file')} skipped: #{result[:damaged].join(', ')}."
        end
        unless result[:rewritten].empty?
          lines << "#{plural(result[:rewritten].size, 'newer checkpoint')} of #{result[:task]} written again after them, " \
                   "so the newest stay last."
        end
        lines.join("\n")
      end

      # Shows "imported 30 of 120" on stderr while importing many files, when
      # stderr is a terminal.
      def with_migrate_progress(dir)
        return yield(nil) unless @err.tty?

        shown = false
        result = yield(lambda do |done, total|
          next if total < MIGRATE_PROGRESS_FROM

          shown = true
          @err.print "\rmaster: migrating #{dir}: imported #{done} of #{total}"
        end)
        result
      ensure
        @err.print "\r\e[K" if shown
      end

      # From this many files to write, migrate shows its progress.
      MIGRATE_PROGRESS_FROM = 20

      def migrate_config(argv, options)
        parse("migrate-config", argv, options)
        file = one_argument!(argv, "FILE")
        result = ConfigMigration.new(file).run
        return emit_json(result, options) if options[:json]

        say(migration_text(result))
      end

      # --- helpers: store, input ---------------------------------------------

      # The store the command line names (--store, --dir) or the configured one.
      def store(options)
        { dir: "a directory", store: "a store (a directory or a URL)" }.each do |flag, what|
          raise UsageError, "--#{flag} needs #{what}; see #{@program} #{@context} --help" if options[flag]&.strip&.empty?
        end
        Config.store(options[:store], options[:dir])
      end

      # The store to read: a --dir (or a file store --store) that names no
      # directory is a mistake to say, not an empty store.
      def existing_store(options)
        store = store(options)
        given = options[:dir] || options[:store]
        return store if given.nil? || !store.start_with?("/") || File.directory?(store)

        what = File.exist?(store) ? "it is not a directory" : "check the path"
        flag = options[:dir] ? "--dir" : "--store"
        raise Failure, "there is no checkpoint store at #{store} (#{flag} #{given}): #{what}"
      end

      def parse_data(json)
        JSON.parse(json, symbolize_names: true)
      rescue JSON::ParserError => e
        raise UsageError, "--data is not valid JSON (#{e.message.lines.first.strip.sub(/\A\d+: /, '')}); " \
                          "give an object such as '{\"done\": 12}'"
      end

      # A duration of the command line: a number and a unit, read as the
      # library reads one (Options.seconds).
      def duration(text)
        raise ArgumentError unless text.match?(/[smhdw]\s*\z/i)

        Options.seconds(text, "--older-than")
      rescue ArgumentError
        raise UsageError, "bad duration #{Options.shown(text)} for --older-than; give a number and a unit: " \
                          "45s, 30m, 12h, 7d or 2w (at most 100 years)"
      end

      # A running queue task's worker: which machine and process holds its
      # claim, since when, and until when its lease runs.
      def add_worker(row, dir)
        return unless row[:status] == "running"

        claim = Queue._claim_of(dir, row[:task_id])
        return unless claim && claim[:state] == "running"

        row[:worker] = { host: claim[:host], pid: claim[:pid], worker: claim[:worker], queue: claim[:queue],
                         since: claim[:claimed_at], lease_until: claim[:expires_at],
                         lease_expired: claim[:expires_at] < Time.now }
      end

      def unknown_task!(task, dir)
        raise Failure, "unknown task #{task.inspect} in #{dir}; see #{@program} checkpoint list"
      end

      # The restored state of the task, with the library's errors about it
      # said in one short line.
      def restore(task, number, dir)
        SessionRecovery.new(task_id: task, store: dir, auto_resume: false).restore(number)
      rescue CheckpointNotFoundError
        raise Failure, "task #{task.inspect} has no checkpoint #{number}; see #{@program} checkpoint show #{task}"
      rescue CorruptCheckpointError => e
        problem = if number
                    "checkpoint #{number} of task #{task.inspect} is damaged (#{damage(e)})"
                  else
                    "task #{task.inspect} has no intact checkpoint left in #{dir}"
                  end
        raise Failure, "#{problem}; see #{@program} checkpoint show #{task}"
      end

      # What is wrong with a damaged checkpoint.
      def damage(error)
        error.reason || error.message
      end

      def quietly
        logger = MASTER.logger
        MASTER.logger = nil
        yield
      ensure
        MASTER.logger = logger
      end

      def latest_task(dir)
        newest = SessionPersistence.list(store: dir).first
        raise Failure, "no checkpoints in #{dir}, so nothing to resume; see #{@program} checkpoint list" unless newest

        newest[:task_id]
      end

      # --- helpers: clean ----------------------------------------------------

      # What `clean` asks SessionPersistence.cleanup for (which applies the
      # rule, and the configured retention when given no age).
      def cleanup_rule(options)
        if options[:completed]
          { older_than: options[:older_than] || 0, keep_failed: true, keep_running: true }
        elsif options[:older_than]
          { older_than: options[:older_than] }
        else
          {}
        end
      end

      # Shows "removed 3 of 40 tasks" on stderr while the store works, when
      # stderr is a terminal.
      def with_progress(dir, task_ids)
        return yield unless @err.tty? && !task_ids.empty?

        show = ->(n) { @err.print "\rmaster: cleaning #{dir}: removed #{n} of #{task_ids.size} tasks" }
        show.call(0)
        gone = -> { task_ids.count { |id| SessionPersistence.checkpoints(id, store: dir).empty? } }
        watcher = Thread.new do
          loop do
            sleep 0.1
            show.call(gone.call)
          end
        end
        result = yield
        watcher.kill.join
        show.call(gone.call)
        result
      ensure
        if watcher
          watcher.kill
          @err.print "\r\e[K"
        end
      end
    end
  end
end
