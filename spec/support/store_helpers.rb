# frozen_string_literal: true

# A logger that keeps what it is told, for examples that expect warnings.
class RecordingLogger
  attr_reader :warnings

  def initialize
    @warnings = []
  end

  def warn(message)
    @warnings << message
  end

  def info(_message); end

  def error(message)
    @warnings << message
  end
end

# The suite runs once per store (`rake spec` does; MASTER_TEST_STORE picks
# one by hand): `file` (the default); `memory`, where every example gets its
# own in-process store through MASTER_STORE; `postgresql`, where every
# example gets its own schema on the server MASTER_TEST_DATABASE_URL names.
# Examples that look at the file store's files, or need a store shared with
# another process, are skipped on the stores that have neither, saying so.
module StoreHelpers
  LIB = File.expand_path("../../lib", __dir__)
  KIND = ENV.fetch("MASTER_TEST_STORE", "file")

  module_function

  # The MASTER_STORE value of one example's private store, or nil for the
  # default file store under the example's own directory.
  def example_store(index)
    case KIND
    when "file" then nil
    when "memory" then "memory://spec-#{Process.pid}-#{index}"
    when "postgresql" then postgres_store("spec_#{Process.pid}_#{index}")
    else raise "MASTER_TEST_STORE must be file, memory or postgresql; got #{KIND.inspect}"
    end
  end

  # The test server's URL with its own schema.
  def postgres_store(schema)
    url = ENV.fetch("MASTER_TEST_DATABASE_URL") do
      raise "MASTER_TEST_STORE=postgresql needs MASTER_TEST_DATABASE_URL (rake spec starts a server and sets it)"
    end
    (@schemas ||= []) << schema
    "#{url}#{url.include?('?') ? '&' : '?'}schema=#{schema}"
  end

  # Drops the schemas the examples made (a server the user gave is theirs).
  def drop_test_schemas
    return if @schemas.nil? || @schemas.empty?

    require "pg"
    connection = PG.connect(ENV.fetch("MASTER_TEST_DATABASE_URL"))
    connection.exec("SET client_min_messages TO warning")
    @schemas.each { |schema| connection.exec("DROP SCHEMA IF EXISTS #{connection.quote_ident(schema)} CASCADE") }
    connection.close
  end

  def file_store?
    KIND == "file"
  end

  def shared_store?
    KIND != "memory"
  end

  # Skips the example unless the store under test keeps files.
  def files_only!(why = "looks at the file store's files")
    skip("#{why}; this run's store is #{KIND}") unless StoreHelpers.file_store?
  end

  def store_dir
    files_only!
    File.join(Dir.pwd, ".master_checkpoints")
  end

  def task_dir(task_id)
    File.join(store_dir, task_id)
  end

  def checkpoint_file(task_id, number)
    File.join(task_dir(task_id), format("checkpoint_%03d.json", number))
  end

  def checkpoint_files(task_id)
    Dir[File.join(task_dir(task_id), "checkpoint_*.json")]
  end

  # Where the store says checkpoint `number` of a task is, as errors name it.
  def checkpoint_location(task_id, number)
    return checkpoint_file(task_id, number) if StoreHelpers.file_store?

    separator = KIND == "memory" ? "/" : "#"
    "#{ENV.fetch('MASTER_STORE')}#{separator}#{task_id}/#{format('checkpoint_%03d.json', number)}"
  end

  # The numbers of a task's stored checkpoints, oldest first.
  def checkpoint_numbers(task_id)
    if StoreHelpers.file_store?
      checkpoint_files(task_id).map { |f| File.basename(f)[/\d+/].to_i }.sort
    else
      MASTER::SessionPersistence.checkpoints(task_id).sort
    end
  end

  # True when the store holds anything of the task.
  def task_stored?(task_id)
    return File.exist?(task_dir(task_id)) if StoreHelpers.file_store?

    MASTER::SessionPersistence.list.any? { |row| row[:task_id] == task_id }
  end

  # A checkpoint as stored, parsed as JSON: the file, or the database row's
  # document; the memory store keeps no text, so its read, through JSON.
  def read_checkpoint(task_id, number)
    case KIND
    when "file" then JSON.parse(File.read(checkpoint_file(task_id, number)))
    when "postgresql" then JSON.parse(stored_text(task_id, number))
    else JSON.parse(JSON.generate(MASTER::SessionPersistence.read(task_id, number)))
    end
  end

  # The stored text of a checkpoint (file or row), for damaging it.
  def stored_text(task_id, number)
    return File.binread(checkpoint_file(task_id, number)) if StoreHelpers.file_store?

    stored_text_reachable!
    row = database_rows("SELECT document FROM %s.checkpoints WHERE task_id = $1 AND number = $2", task_id, number)
    row.first&.fetch("document") || raise("no stored checkpoint #{number} of #{task_id}")
  end

  # Replaces a checkpoint's stored text behind the gem's back, as a disk
  # error or a hand edit would.
  def overwrite_checkpoint(task_id, number, text)
    case KIND
    when "file" then File.binwrite(checkpoint_file(task_id, number), text)
    when "postgresql"
      database_rows("UPDATE %s.checkpoints SET document = $3 WHERE task_id = $1 AND number = $2", task_id, number, text)
    else stored_text_reachable!
    end
  end

  # Skips the example on the memory store, which keeps objects, not text.
  def stored_text_reachable!
    skip("reaches a stored checkpoint's text; the memory store keeps none") if KIND == "memory"
  end

  # One character of the checkpoint's state changed.
  def corrupt_checkpoint(task_id, number)
    text = stored_text(task_id, number).dup
    index = text.index("\"state\":") + 10
    text[index] = text[index] == "x" ? "y" : "x"
    overwrite_checkpoint(task_id, number, text)
  end

  # The checkpoint cut in half.
  def truncate_checkpoint(task_id, number)
    text = stored_text(task_id, number)
    overwrite_checkpoint(task_id, number, text[0, text.size / 2])
  end

  # Runs SQL on the example's schema (`%s` in the text) of the test server.
  def database_rows(sql, *params)
    require "pg"
    @database ||= PG.connect(ENV.fetch("MASTER_TEST_DATABASE_URL"))
    schema = ENV.fetch("MASTER_STORE")[/[?&]schema=(\w+)/, 1]
    @database.exec_params(format(sql, @database.quote_ident(schema)), params).to_a
  end

  # Everything in the store, for "nothing was written": every file and
  # directory of the file store; each task's checkpoints, read back, on the
  # others.
  def store_snapshot(dir = nil)
    return stored_documents unless StoreHelpers.file_store? || dir

    dir ||= store_dir
    return [] unless File.exist?(dir)

    Dir.glob("**/*", File::FNM_DOTMATCH, base: dir).reject { |p| p.end_with?(".") }.sort.map do |path|
      full = File.join(dir, path)
      [path, File.directory?(full) ? :dir : File.binread(full)]
    end
  end

  # Runs Ruby code in a fresh process with the gem loaded, in the current
  # directory. Returns [stdout, stderr, status].
  def run_ruby(code, env: {})
    other_processes!
    Open3.capture3(env, RbConfig.ruby, "-I", LIB, "-rmaster", "-e", code, chdir: Dir.pwd)
  end

  # A child process running `code` in the background; returns its pid.
  def spawn_ruby(code, env: {}, out: File::NULL, err: File::NULL)
    other_processes!
    Process.spawn(env, RbConfig.ruby, "-I", LIB, "-rmaster", "-e", code, chdir: Dir.pwd, out: out, err: err)
  end

  # The checkpoints of every task of a store that is not files.
  def stored_documents
    MASTER::SessionPersistence.list.map do |row|
      [row[:task_id], MASTER::SessionPersistence.checkpoints(row[:task_id]).map do |n|
        MASTER::SessionPersistence.read(row[:task_id], n)
      rescue MASTER::Error => e
        e.class
      end]
    end
  end

  # True when the example's store holds nothing (and, for files, does not exist).
  def store_empty?
    StoreHelpers.file_store? ? !File.exist?(store_dir) : stored_documents.empty?
  end

  # Skips the example unless other processes can see the store under test.
  def other_processes!
    skip("needs a store other processes see; this run's store is #{KIND}") unless StoreHelpers.shared_store?
  end

  def wait_for(timeout: 30, interval: 0.01)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    until (result = yield)
      raise "timed out after #{timeout}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep interval
    end
    result
  end
end
