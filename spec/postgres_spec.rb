# frozen_string_literal: true

# What only the PostgreSQL store does; its behaviour otherwise is the whole
# suite, run with MASTER_TEST_STORE=postgresql.
RSpec.describe "The PostgreSQL store" do
  before { skip("runs on the postgresql store; this run's store is #{StoreHelpers::KIND}") unless postgresql? }

  def postgresql?
    StoreHelpers::KIND == "postgresql"
  end

  def schema
    ENV.fetch("MASTER_STORE")[/[?&]schema=(\w+)/, 1]
  end

  def connect
    require "pg"
    PG.connect(ENV.fetch("MASTER_TEST_DATABASE_URL")).tap { |c| c.exec("SET client_min_messages TO warning") }
  end

  it "lets other threads run while a write waits on the server" do
    MASTER::SessionRecovery.new(task_id: "warm-up").checkpoint # the schema exists
    holder = connect
    holder.exec("BEGIN")
    holder.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ["#{schema}/task"])
    writer = Thread.new { MASTER::SessionRecovery.new(task_id: "task").checkpoint(progress: 1) }
    counted = 0
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.3
    counted += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    expect(writer).to be_alive # waiting on the lock the other connection holds
    expect(counted).to be > 10_000
    holder.exec("COMMIT")
    expect(writer.value).to include(checkpoint: 1, progress: 1)
  ensure
    holder&.close
  end

  it "keeps the exact sealed document, which psql and jq read" do
    MASTER::SessionRecovery.new(task_id: "task").checkpoint(progress: 3, data: { "file" => :done })
    text = stored_text("task", 1)
    expect(text).to match(/,"checksum":"crc32:\h{8}"\}\n\z/)
    document = JSON.parse(text)
    expect(document).to include("task_id" => "task", "sequence" => 1, "state" => { "file" => "done" })
    expect(read_checkpoint("task", 1)).to eq(document)
  end

  it "never shows the password of its URL" do
    url = "postgresql://ann:s3cret@127.0.0.1:1/none?connect_timeout=2"
    expect { MASTER::SessionRecovery.new(task_id: "task", store: url) }
      .to raise_error(MASTER::StoreError) { |e|
        expect(e.message).to include("postgresql://ann@127.0.0.1:1/none")
        expect(e.message).not_to include("s3cret")
      }
    out, err, status = Open3.capture3(RbConfig.ruby, File.expand_path("../bin/cli", __dir__),
                                      "checkpoint", "list", "--store", url)
    expect(status.exitstatus).to eq(1)
    expect(out + err).not_to include("s3cret")
    expect(err).to include("ann@127.0.0.1:1")
  end

  it "names the grant a role lacks" do
    MASTER::SessionRecovery.new(task_id: "task").checkpoint
    admin = connect
    role = "master_spec_#{Process.pid}"
    admin.exec("CREATE ROLE #{role} LOGIN")
    url = ENV.fetch("MASTER_STORE").sub(%r{//[^@/]*@}, "//#{role}@")
    expect { MASTER::SessionPersistence.list(store: url) }
      .to raise_error(MASTER::StoreError, /permission denied.*GRANT USAGE, CREATE ON SCHEMA "#{schema}" TO #{role}/)
  ensure
    admin&.exec("DROP ROLE IF EXISTS #{role}")
    admin&.close
  end

  it "creates its tables once when many processes start at once" do
    other_processes!
    pids = Array.new(4) do |i|
      spawn_ruby("MASTER::SessionRecovery.new(task_id: 'racer-#{i}').checkpoint(progress: #{i})")
    end
    expect(pids.map { |pid| Process.wait2(pid).last }).to all(be_success)
    versions = database_rows("SELECT version FROM %s.schema_migrations").map { |r| r["version"] }
    expect(versions.sort).to eq(%w[1 2]) # each step once
    expect(MASTER::SessionPersistence.list.map { |row| row[:task_id] }.sort).to eq(%w[racer-0 racer-1 racer-2 racer-3])
  end
end
