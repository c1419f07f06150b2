//! The store's tables, in their own schema (`master` unless the URL says
//! `?schema=NAME`) so they sit beside an application's: created on first
//! use and migrated in numbered steps, each recorded in
//! `schema_migrations`, under an advisory lock so that many processes
//! starting at once migrate once.

use postgres::Client;

/// The steps, in order; a step is never changed once released, only added.
/// `{s}` is the schema.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE {s}.checkpoints (
        task_id       text    NOT NULL,
        number        bigint  NOT NULL,
        -- The exact sealed document the file store writes: psql | jq reads it.
        document      text    NOT NULL,
        -- md5 of the document as written, and whether it still matches: a
        -- document changed since (by hand, say) is not intact, and no
        -- reader reports it as the latest; kept by the server on every
        -- change, so list reads a flag instead of hashing documents.
        doc_md5       text    NOT NULL,
        intact        boolean GENERATED ALWAYS AS (md5(document) = doc_md5) STORED,
        -- Which write made it, to settle a commit whose outcome was lost.
        write_id      text    NOT NULL,
        PRIMARY KEY (task_id, number)
    );
    -- One row per task: its summary as its newest checkpoint left it (what
    -- list returns), so neither list nor cleanup parses a document. Only
    -- the key is indexed and pages keep room, so the update each write
    -- makes stays on its page (a HOT update) and costs little.
    CREATE TABLE {s}.tasks (
        task_id       text    PRIMARY KEY,
        latest        bigint  NOT NULL,
        summary       text    NOT NULL
    ) WITH (fillfactor = 70);
    "#,
    ),
    (
        2,
        r#"
    -- Queue claims: which worker runs a task, until when (nanoseconds on
    -- the server's clock), with which fencing token (src/store/claims.rs).
    CREATE TABLE {s}.claims (
        task_id       text    PRIMARY KEY,
        claim         text    NOT NULL  -- the claim as JSON (claims::Claim)
    );
    -- Each queue's current run.
    CREATE TABLE {s}.queue_runs (
        queue         text    PRIMARY KEY,
        run           text    NOT NULL  -- the run as JSON (claims::QueueRun)
    );
    "#,
    ),
];

/// A key of `pg_advisory_xact_lock` the store's migrations take: one
/// schema's migrations run one at a time, across every process.
fn migration_lock_sql(schema: &str) -> String {
    format!("SELECT pg_advisory_xact_lock(hashtextextended('master migrations ' || '{schema}', 0))")
}

/// Creates the schema and its tables, or brings them up to date.
pub(super) fn migrate(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let s = format!("\"{schema}\"");
    let mut tx = client.transaction()?;
    tx.batch_execute(&migration_lock_sql(schema))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))?;
    let applied: Vec<i32> = tx
        .query(&format!("SELECT version FROM {s}.schema_migrations"), &[])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(&sql.replace("{s}", &s))?;
        tx.execute(
            &format!("INSERT INTO {s}.schema_migrations (version) VALUES ($1)"),
            &[version],
        )?;
    }
    tx.commit()
}
