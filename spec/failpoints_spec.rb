# frozen_string_literal: true

# Each step of a write fails in turn (ENOSPC, EIO, EACCES), in a build of
# the extension with the `failpoints` cargo feature (`rake compile_failpoints`;
# `rake spec` builds it). The failed call must raise a clear MASTER::Error,
# leave the previous checkpoint current and readable and no temp file, and
# the next checkpoint must succeed.
RSpec.describe "Failure injection in the write path" do
  before { files_only!("injects failures into the file store") }

  FAILPOINT_LIB = File.expand_path("../tmp/failpoints/lib", __dir__)
  # Checkpoints go through temp file, fsync, rename, directory fsync; the
  # two caches are rewritten in place (they are checked on every read).
  POINTS = %w[
    checkpoint.create checkpoint.write checkpoint.fsync checkpoint.rename checkpoint.dirsync
    metadata.write index.lock index.write
  ].freeze
  ERRNOS = { "ENOSPC" => /No space left on device.*free some disk space/,
             "EIO" => %r{Input/output error.*the disk reported an I/O error},
             "EACCES" => /Permission denied.*check that this user owns the checkpoint directory/ }.freeze

  SCRIPT = <<~'RUBY'
    require "json"
    points, errnos = JSON.parse(ARGV[0]), JSON.parse(ARGV[1])
    points.product(errnos).each do |point, errno|
      task = "#{point.tr('.', '-')}-#{errno.downcase}"
      session = MASTER::SessionRecovery.new(task_id: task, logger: nil)
      session.checkpoint(progress: 1, data: { v: 1 })
      MASTER.failpoints = "#{point}=#{errno}*1"
      error = begin
        session.checkpoint(progress: 2, data: { v: 2 })
        nil
      rescue StandardError => e
        e
      end
      MASTER.failpoints = ""
      after_failure = MASTER::SessionRecovery.new(task_id: task, auto_resume: false, logger: nil).restore
      files = Dir.children(File.join(".master_checkpoints", task)).sort
      summary = MASTER::SessionPersistence.summary(task)
      listed = MASTER::SessionPersistence.list.find { |row| row[:task_id] == task }
      next_one = session.checkpoint(progress: 3, data: { v: 3 })
      puts JSON.generate(
        point: point, errno: errno,
        error_class: error&.class&.name, error_ancestors: error&.class&.ancestors&.map(&:to_s),
        message: error&.message,
        restored: after_failure && { checkpoint: after_failure[:checkpoint], data: after_failure[:data] },
        files: files, summary_latest: summary[:latest_checkpoint], listed_latest: listed[:latest_checkpoint],
        next_checkpoint: next_one[:checkpoint],
        next_restored: MASTER::SessionRecovery.new(task_id: task, logger: nil).restore[:data]
      )
    end
  RUBY

  before(:all) do
    unless File.exist?(File.join(FAILPOINT_LIB, "master", "master.so"))
      raise "the failpoints build is missing: run `rake compile_failpoints` (rake spec does)"
    end

    Dir.mktmpdir("master-failpoints") do |dir|
      out, err, status = Open3.capture3(RbConfig.ruby, "-I", FAILPOINT_LIB, "-rmaster", "-e", SCRIPT,
                                        JSON.generate(POINTS), JSON.generate(ERRNOS.keys), chdir: dir)
      raise "failpoint run failed: #{err}" unless status.success?

      @results = out.lines.map { |line| JSON.parse(line, symbolize_names: true) }
    end
  end

  it "tries every point with every errno" do
    expect(@results.size).to eq(POINTS.size * ERRNOS.size)
  end

  POINTS.each do |point|
    ERRNOS.each do |errno, message|
      context "#{point} failing with #{errno}" do
        subject(:result) { @results.find { |r| r[:point] == point && r[:errno] == errno } }

        it "raises a MASTER::StoreError that says what happened and what to do" do
          expect(result[:error_class]).to eq("MASTER::StoreError")
          expect(result[:error_ancestors]).to include("MASTER::Error")
          expect(result[:message]).to match(message)
        end

        it "leaves the previous checkpoint current, readable and alone" do
          expect(result[:restored]).to eq(checkpoint: 1, data: { v: 1 })
          expect(result[:files]).to eq(%w[checkpoint_001.json metadata.json])
          expect([result[:summary_latest], result[:listed_latest]]).to eq([1, 1])
        end

        it "lets the next checkpoint succeed" do
          expect(result[:next_checkpoint]).to eq(2)
          expect(result[:next_restored]).to eq(v: 3)
        end
      end
    end
  end
end
