# frozen_string_literal: true

module MASTER
  class CLI
    # What the command line prints: the seed's `list` layout, `show`'s
    # table, JSON, colour on a terminal, and the one line a failure prints.
    module Render
      private

      def say(text)
        @output << text
        @output << "\n" unless text.end_with?("\n")
        true
      end

      def emit_json(value, options)
        say(options[:json] ? JSON.generate(jsonable(value)) : JSON.pretty_generate(jsonable(value)))
      end

      # Symbol keys become Strings, Times ISO 8601 strings.
      def jsonable(value)
        case value
        when Hash then value.to_h { |key, member| [key.to_s, jsonable(member)] }
        when Array then value.map { |member| jsonable(member) }
        when Time then value.getutc.iso8601
        else value
        end
      end

      # Success: the output, then the warnings the library gave.
      def finish
        @out.write(@output)
        @out.flush
        @warnings.lines.each { |line| @err.puts "master: warn: #{printable(line)}" }
        SUCCESS
      end

      # Failure: one line on stderr, nothing on stdout.
      def failed(status, error)
        message = error.is_a?(Exception) ? error.message : error.to_s
        message = "#{message}; see #{[@program, @context].compact.join(' ')} --help" if error.is_a?(OptionParser::ParseError)
        @err.puts "master: #{printable(message.gsub(/\s*\n\s*/, ' ').strip)}"
        status
      end

      def suggestion(word, words)
        return "" unless defined?(DidYouMean::SpellChecker)

        found = DidYouMean::SpellChecker.new(dictionary: words).correct(word).first
        found ? " (did you mean #{found}?)" : ""
      end

      def paint(text, color)
        @color && !text.empty? ? "\e[#{COLORS.fetch(color)}m#{text}\e[0m" : text
      end

      def plural(count, word)
        "#{count} #{word}#{'s' unless count == 1}"
      end

      def time_text(time)
        time.is_a?(Time) ? time.getutc.strftime(TIME_FORMAT) : "unknown time"
      end

      def money(amount)
        format("$%.2f", amount || 0)
      end

      # The seed's block for one task, with a progress bar.
      def task_block(row)
        lines = [paint(printable(row[:task_id]), :bold), "  Latest: #{time_text(row[:updated_at])} (#{state_text(row)})"]
        bar = progress_bar(row)
        lines << "  Progress: #{bar}" if bar
        lines << "  Budget: #{budget_text(row[:budget])}"
        lines << "  Worker: #{worker_text(row[:worker])}" if row[:worker]
        "#{lines.join("\n")}\n"
      end

      def worker_text(worker)
        lease = if worker[:lease_expired]
                  paint("lease expired #{time_text(worker[:lease_until])}", :red)
                else
                  "lease until #{time_text(worker[:lease_until])}"
                end
        "#{printable(worker[:host].to_s)} pid #{worker[:pid]} (#{printable(worker[:worker].to_s)} of queue " \
          "#{printable(worker[:queue].to_s)}) since #{time_text(worker[:since])}, #{lease}"
      end

      def state_text(row)
        case row[:status]
        when "completed" then paint("completed", :green)
        when "failed" then paint("failed", :red)
        else
          percentage = row.dig(:progress, :percentage)
          percentage ? "#{percentage.round}% complete" : plural(row.dig(:progress, :items_processed) || 0, "item")
        end
      end

      def progress_bar(row)
        percentage = row.dig(:progress, :percentage)
        return nil if percentage.nil? || row[:status] == "completed"

        filled = (percentage.clamp(0, 100) * BAR_WIDTH / 100).floor
        "[#{paint('#' * filled, :cyan)}#{'-' * (BAR_WIDTH - filled)}] #{percentage.round}%"
      end

      def budget_text(budget)
        spent = budget && budget[:spent]
        allocated = budget && budget[:allocated]
        return "#{money(spent)} (no limit)" if allocated.nil?

        text = "#{money(spent)} / #{money(allocated)}"
        spent.to_f > allocated ? paint(text, :red) : text
      end

      def progress_text(done, total)
        return plural(done || 0, "item") if total.nil?

        percentage = total.zero? ? 100 : (done.to_f * 100 / total).round
        "#{done}/#{total}, #{percentage}%"
      end

      def show_text(task, summary, entries, directory)
        # The summary is a cache that does not know its files were damaged since.
        intact = entries.any? { |entry| !entry[:damaged] }
        head = summary && intact ? task_block(summary) + summary_details(summary) : no_intact_text(task)
        table = [format("  %-5s %-19s  %-9s  %-16s %s", "#", "Time", "Status", "Progress", "Message").rstrip]
        table += entries.map { |entry| checkpoint_line(entry) }
        "#{head}  Files: #{directory}\n\n#{table.join("\n")}\n"
      end

      def summary_details(summary)
        good = summary[:latest_good_checkpoint] ? "##{summary[:latest_good_checkpoint]}" : "none"
        retries = summary[:retries] == 1 ? "1 retry" : "#{summary[:retries]} retries"
        text = "  Status: #{summary[:status]}; #{plural(summary[:checkpoints], 'checkpoint')} " \
               "(latest ##{summary[:latest_checkpoint]}, latest good #{good}); " \
               "#{plural(summary[:failures], 'failure')}, #{retries}\n"
        summary[:message] ? "#{text}  Message: #{printable(summary[:message])}\n" : text
      end

      def no_intact_text(task)
        "#{paint(printable(task), :bold)}\n  No intact checkpoint: every file is damaged; " \
          "`#{@program} checkpoint remove #{printable(task)}` deletes them.\n"
      end

      def checkpoint_line(entry)
        return format("  %-5d %s", entry[:number], paint("damaged: #{printable(entry[:problem])}", :red)) if entry[:damaged]

        progress = entry[:progress] || {}
        format("  %-5d %-19s  %-9s  %-16s %s", entry[:number], time_text(entry[:timestamp]), printable(entry[:status]),
               progress_text(progress[:items_processed], progress[:items_total]), printable(entry[:message])).rstrip
      end

      # Text from the store as one line with no terminal controls: a newline
      # or an escape sequence in a message is shown, never obeyed.
      def printable(text)
        text.to_s.gsub(/[\p{Cc}\u2028\u2029]/) { |char| char.inspect[1..-2] }
      end

      def describe_rule(options)
        age = options[:older_than_text]
        keep_failed = Config.settings[:keep_failed]
        if options[:completed]
          age ? "completed tasks older than #{age}" : "completed tasks of any age"
        elsif age
          "tasks last checkpointed more than #{age} ago#{', except failed ones' if keep_failed}"
        else
          "the configured retention: completed tasks older than #{plural(Config.settings[:keep_successful], 'day')}" \
            "#{', failed ones too' unless keep_failed}"
        end
      end

      def clean_text(removed, dir, options)
        what = describe_rule(options)
        if removed.empty?
          return options[:dry_run] ? "Nothing would be removed from #{dir} (#{what})" : "Nothing to clean in #{dir} (#{what})"
        end

        verb = options[:dry_run] ? "Would remove" : "Removed"
        (["#{verb} #{plural(removed.size, 'task')} from #{dir} (#{what}):"] + removed.map { |id| "  #{id}" }).join("\n")
      end

      def migration_text(result)
        file = result[:file]
        return "#{file} already uses `session_recovery:`; nothing changed" unless result[:migrated]

        text = +"Migrated #{file}: `session:` is now `session_recovery:`; every value is kept"
        if result[:checkpoint_dir]
          text << " (checkpoint_dir stays #{result[:checkpoint_dir].inspect}, so existing checkpoints are still found)"
        end
        text << ".\nThe old file is saved as #{result[:backup]}."
        text << " The new file is plain YAML: comments, if it had any, are only in the backup." unless result[:comments_kept]
        text
      end
    end
  end
end
