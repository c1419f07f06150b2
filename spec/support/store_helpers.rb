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
# one by hand): `file` (the default), or `memory`, where every example gets
# its own in-process store through MASTER_STORE. Examples that look at the
# file store's files, or need a store shared with another process, are
# skipped on the stores that have neither, saying so.
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
    else raise "MASTER_TEST_STORE must be file or memory; got #{KIND.inspect}"
    end
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

  def read_checkpoint(task_id, number)
    JSON.parse(File.read(checkpoint_file(task_id, number)))
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

  def corrupt_one_character(path)
    files_only!
    text = File.binread(path)
    index = text.index("\"state\":") + 10
    text[index] = text[index] == "x" ? "y" : "x"
    File.binwrite(path, text)
  end

  def truncate_file(path)
    files_only!
    bytes = File.binread(path)
    File.binwrite(path, bytes[0, bytes.size / 2])
  end
end
