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

module StoreHelpers
  LIB = File.expand_path("../../lib", __dir__)

  def store_dir
    File.join(Dir.pwd, ".master_checkpoints")
  end

  def task_dir(task_id)
    File.join(store_dir, task_id)
  end

  def checkpoint_file(task_id, number)
    File.join(task_dir(task_id), format("checkpoint_%03d.json", number))
  end

  def checkpoint_files(task_id)
    Dir[File.join(task_dir(task_id), "checkpoint_*.json")].sort
  end

  def read_checkpoint(task_id, number)
    JSON.parse(File.read(checkpoint_file(task_id, number)))
  end

  # Every file and directory under the store, for "nothing was written".
  def store_snapshot(dir = store_dir)
    return [] unless File.exist?(dir)

    Dir.glob("**/*", File::FNM_DOTMATCH, base: dir).reject { |p| p.end_with?(".") }.sort.map do |path|
      full = File.join(dir, path)
      [path, File.directory?(full) ? :dir : File.binread(full)]
    end
  end

  # Runs Ruby code in a fresh process with the gem loaded, in the current
  # directory. Returns [stdout, stderr, status].
  def run_ruby(code, env: {}, timeout: 60)
    Open3.capture3(env, RbConfig.ruby, "-I", LIB, "-rmaster", "-e", code, chdir: Dir.pwd)
  end

  # A child process running `code` in the background; returns its pid.
  def spawn_ruby(code, env: {}, out: File::NULL, err: File::NULL)
    Process.spawn(env, RbConfig.ruby, "-I", LIB, "-rmaster", "-e", code, chdir: Dir.pwd, out: out, err: err)
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
    text = File.binread(path)
    index = text.index("\"state\":") + 10
    text[index] = text[index] == "x" ? "y" : "x"
    File.binwrite(path, text)
  end

  def truncate_file(path)
    bytes = File.binread(path)
    File.binwrite(path, bytes[0, bytes.size / 2])
  end
end
