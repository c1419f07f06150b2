# frozen_string_literal: true

require_relative "../master"

module MASTER
  # The pub2 session API on top of SessionRecovery, so pub2 code runs
  # unchanged while it is migrated:
  #
  #   require "master/pub2"
  #   Session.save_state(data)   # a checkpoint of task "pub2-session"
  #   Session.load_state         # => that data, as saved; nil if none
  #
  # The state lives in the configured store (`store`/`checkpoint_dir`, or
  # `Session.store = "postgresql://…"`) like any task,
  # so `bin/cli checkpoint show pub2-session` shows it and the new API reads
  # it. Deprecated: the first call in a process logs one warning through
  # MASTER.logger showing the new form.
  module Pub2
    DEFAULT_TASK_ID = "pub2-session"

    # pub2's `Session`, installed as the top-level `Session` unless the
    # program already has one.
    module Session
      @task_id = nil
      @store = nil
      @warned = false
      @lock = Mutex.new

      class << self
        # The task the state is kept under: "pub2-session" unless set.
        def task_id
          @task_id || DEFAULT_TASK_ID
        end

        # Keeps the state under another task id (nil: the default again).
        def task_id=(id)
          unless id.nil? || id.is_a?(String)
            raise TypeError,
                  "Session.task_id must be a String (or nil for #{DEFAULT_TASK_ID.inspect}); got #{MASTER::Options.shown(id)}"
          end

          @task_id = id
        end

        # The store the state is kept in (a path, memory://NAME or a
        # postgresql:// URL); nil, the default, is the configured one.
        attr_reader :store

        def store=(store)
          MASTER::Config.store(store) unless store.nil? # refused now, not at the next save
          @store = store
        end

        # Saves `data` as the task's next checkpoint. Saving nil removes the
        # task's checkpoints, so load_state answers nil again.
        # @return data
        def save_state(data)
          deprecated("save_state", caller_locations(1, 1).first)
          session = SessionRecovery.new(task_id: task_id, auto_resume: false, store: @store)
          data.nil? ? session.reset : session.checkpoint(data: data)
          data
        end

        # The data last saved, every key and value of the kind it was saved
        # as, or nil if nothing was saved.
        def load_state
          deprecated("load_state", caller_locations(1, 1).first)
          state = SessionRecovery.new(task_id: task_id, auto_resume: false, store: @store).restore
          state && state[:data]
        end

        private

        # One warning per process, naming the first call site.
        def deprecated(method, location)
          first = @lock.synchronize { !@warned && (@warned = true) }
          return unless first

          MASTER.logger&.warn(
            "Session.#{method} (pub2) is deprecated (called from #{location&.path}:#{location&.lineno}); " \
            "the new form is: session = MASTER::SessionRecovery.new(task_id: #{task_id.inspect}); " \
            "session.checkpoint(data: data); state = session.restore (state[:data] is what " \
            "Session.load_state returned)"
          )
        end
      end
    end
  end
end

if !Object.const_defined?(:Session, false)
  Session = MASTER::Pub2::Session
elsif !Session.equal?(MASTER::Pub2::Session)
  MASTER.logger&.warn(
    "require \"master/pub2\": Session is already defined (#{Session.inspect}), so the pub2 shim is not " \
    "installed under that name; call MASTER::Pub2::Session.save_state and .load_state instead"
  )
end
