//! Connections to the server: where they go (a URL, completed from the
//! standard PG* variables), a small pool that belongs to one process (a
//! forked child never touches its parent's sockets), reconnection after a
//! dropped connection, and the errors a caller sees — which never show a
//! password.

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// How long to wait for the server before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one statement may run before the server cancels it.
const STATEMENT_TIMEOUT: &str = "60s";
/// Connections kept for reuse; more are opened while threads need them.
const POOL_SIZE: usize = 8;
/// Statements kept prepared per connection; past this many (an app with
/// very many schemas) they are all closed and prepared again as used.
const PREPARED_PER_CONNECTION: usize = 256;

/// Where the store is: the server, and the schema its tables live in.
#[derive(Clone)]
pub(crate) struct Target {
    config: Config,
    /// `postgresql://user@host:port/db` — no password, for messages.
    pub shown: String,
    /// The URL without the schema, for sharing a pool of connections.
    pub server: String,
    pub schema: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({} schema {})", self.shown, self.schema)
    }
}

/// `schema=` is the store's own parameter; the server would refuse it.
const SCHEMA_PARAM: &str = "schema";
pub(crate) const DEFAULT_SCHEMA: &str = "master";

impl Target {
    /// The server a `postgresql://` or `postgres://` URL names, what it
    /// leaves out taken from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE
    /// (as libpq does), and the schema (`?schema=NAME`, default `master`).
    pub(super) fn parse(url: &str) -> Result<Target> {
        let (url, schema) = split_schema(url)?;
        let mut config = Config::from_str(&url).map_err(|e| {
            Error::invalid(format!(
                "store URL {} is not a PostgreSQL URL the gem can read ({e}); \
                 write it like postgresql://user@host:5432/database",
                redact(&url)
            ))
        })?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(host) if host.starts_with('/') => config.host_path(host),
                Some(host) => config.host(&host),
                None => config.host("localhost"),
            };
        }
        if config.get_ports().is_empty() {
            if let Some(port) = env("PGPORT") {
                let port = port.parse().map_err(|_| {
                    Error::invalid(format!("PGPORT must be a port number; got {port:?}"))
                })?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER").unwrap_or_else(crate::checkpoint::host_user_name);
            config.user(&user);
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_dbname().is_none() {
            let database = env("PGDATABASE")
                .unwrap_or_else(|| config.get_user().unwrap_or("postgres").to_owned());
            config.dbname(&database);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("master");
        let shown = shown(&config);
        Ok(Target {
            config,
            shown,
            server: url,
            schema,
        })
    }

    /// The schema, quoted for SQL.
    pub(super) fn schema_sql(&self) -> String {
        format!("\"{}\"", self.schema)
    }

    fn connect(&self) -> Result<Conn> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| self.error("connect to", &e))?;
        client
            .batch_execute(&format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
            .map_err(|e| self.error("set up a connection to", &e))?;
        Ok(Conn {
            client,
            prepared: Prepared::default(),
        })
    }

    /// A database error as the caller sees it: what could not be done, on
    /// which store (no password), and what to do about it.
    pub(super) fn error(&self, action: &str, e: &postgres::Error) -> Error {
        let detail = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            // "error connecting to server" says nothing without its cause
            // ("Connection refused (os error 111)").
            None => match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        };
        let hint = match e.code() {
            Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => format!(
                "the role {:?} lacks a privilege: grant it with GRANT USAGE, CREATE ON SCHEMA {schema} TO {user}; \
                 and GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {user} \
                 (creating the schema needs GRANT CREATE ON DATABASE {db} TO {user})",
                self.config.get_user().unwrap_or(""),
                schema = self.schema_sql(),
                user = self.config.get_user().unwrap_or("the_role"),
                db = self.config.get_dbname().unwrap_or("the_database"),
            ),
            Some(code) if *code == SqlState::QUERY_CANCELED => format!(
                "the statement ran past the {STATEMENT_TIMEOUT} statement timeout; check the server's load and locks"
            ),
            Some(code) if *code == SqlState::CANNOT_CONNECT_NOW => {
                "the server is starting up or shutting down; try again in a moment".into()
            }
            Some(code) if *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN => {
                "the server ended the connection (it was restarted, or the backend terminated); \
                 the next call connects again"
                    .into()
            }
            _ if e.is_closed() || e.as_db_error().is_none() => {
                "check that the server is running and reachable (the URL, or PGHOST/PGPORT), then try again".into()
            }
            _ => "check the server's log for more".into(),
        };
        Error::Database {
            action: format!("{action} {}", self.shown),
            detail,
            hint,
        }
    }
}

/// The URL without our `schema` parameter, and the schema.
fn split_schema(url: &str) -> Result<(String, String)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), DEFAULT_SCHEMA.to_owned()));
    };
    let mut schema = DEFAULT_SCHEMA.to_owned();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((SCHEMA_PARAM, value)) => schema = value.to_owned(),
            _ => kept.push(pair),
        }
    }
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(Error::invalid(format!(
            "store URL names schema {schema:?}; a schema is up to 63 letters, digits and _ (not first a digit)"
        )));
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

/// `postgresql://user@host:port/db` for messages: never the password.
fn shown(config: &Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgresql://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// A URL as text with any password replaced, for a message about a URL
/// that did not parse.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|p| {
                    if p.starts_with("password=") {
                        "password=…"
                    } else {
                        p
                    }
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A connection, and the statements prepared on it. Each statement is
/// parsed and planned by the server once per connection, not per call: the
/// planning of the write's one statement costs more than its execution.
pub(crate) struct Conn {
    pub(super) client: Client,
    pub(super) prepared: Prepared,
}

impl Conn {
    /// The connection as `Db`, outside any transaction.
    pub(super) fn db(&mut self) -> Db<'_, Client> {
        Db {
            client: &mut self.client,
            prepared: &mut self.prepared,
        }
    }
}

/// Statements prepared on one connection, by their SQL.
#[derive(Default)]
pub(crate) struct Prepared(HashMap<String, Statement>);

/// A connection or a transaction on it, running each SQL text as the
/// statement prepared for it.
pub(crate) struct Db<'a, C> {
    pub(super) client: &'a mut C,
    pub(super) prepared: &'a mut Prepared,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Db<'_, C> {
    fn statement(&mut self, sql: &str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.0.get(sql) {
            return Ok(statement.clone());
        }
        if self.prepared.0.len() >= PREPARED_PER_CONNECTION {
            self.prepared.0.clear();
        }
        let statement = self.client.prepare(sql)?;
        self.prepared.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: Params,
    ) -> std::result::Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params,
    ) -> std::result::Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    pub(super) fn query_one(
        &mut self,
        sql: &str,
        params: Params,
    ) -> std::result::Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: Params,
    ) -> std::result::Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }
}

/// Connections of this process to one server.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} idle)", self.idle().clients.len())
    }
}

/// The idle connections and the process they belong to.
struct Idle {
    pid: u32,
    clients: Vec<Conn>,
}

impl Default for Idle {
    fn default() -> Idle {
        Idle {
            pid: std::process::id(),
            clients: Vec::new(),
        }
    }
}

impl Pool {
    /// The idle connections of this process. A child forked with some keeps
    /// them from being used or closed: their sockets are the parent's, and
    /// closing one would end the parent's session too.
    fn idle(&self) -> MutexGuard<'_, Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        if idle.pid != pid {
            for conn in std::mem::take(&mut idle.clients) {
                std::mem::forget(conn);
            }
            idle.pid = pid;
        }
        idle
    }

    /// Runs `work` on a connection. With `retry` (work that may run twice:
    /// reads), a connection found closed (the server restarted, the backend
    /// was terminated) is replaced and `work` run once more; a write settles
    /// a lost connection itself (`PostgresStore::write`).
    pub(super) fn with<T>(
        &self,
        target: &Target,
        action: &str,
        retry: bool,
        mut work: impl FnMut(&mut Conn) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let attempts = if retry { 2 } else { 1 };
        for attempt in 0..attempts {
            // The retry never takes an idle connection: after a lost one
            // there are none (`forget_idle`), and one returned meanwhile
            // by another thread may date from before the loss too.
            let idle = if attempt == 0 {
                self.idle().clients.pop()
            } else {
                None
            };
            let mut conn = match idle {
                Some(conn) if !conn.client.is_closed() => conn,
                _ => target.connect()?,
            };
            match work(&mut conn) {
                Ok(value) => {
                    self.give_back(conn);
                    return Ok(value);
                }
                Err(e) => {
                    if !lost(&e, &conn) {
                        self.give_back(conn);
                        return Err(target.error(action, &e));
                    }
                    // The server restarted or ended backends: the idle
                    // connections were opened before, and are most likely
                    // gone too. Trying them one by one would fail this call
                    // (and the next) on each; they are dropped instead.
                    self.forget_idle();
                    if attempt + 1 == attempts {
                        return Err(target.error(action, &e));
                    }
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Drops every idle connection of this process.
    fn forget_idle(&self) {
        let stale = std::mem::take(&mut self.idle().clients);
        drop(stale);
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle();
        if idle.clients.len() < POOL_SIZE {
            idle.clients.push(conn);
        }
    }
}

/// True when `e` ended the connection it came from: closed, broken, or a
/// FATAL error (the backend was terminated, the server is shutting down or
/// restarting), after which the connection cannot be used again.
fn lost(e: &postgres::Error, conn: &Conn) -> bool {
    use postgres::error::Severity;
    if e.is_closed() || conn.client.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            ) || db.code().code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(db.code())
        }
        // Reading or writing the socket failed: whatever it held is unknown.
        None => std::error::Error::source(e).is_some_and(|cause| cause.is::<std::io::Error>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let target =
            Target::parse("postgresql://ann:s3cret@db.example:6543/jobs?schema=fleet").unwrap();
        assert_eq!(target.shown, "postgresql://ann@db.example:6543/jobs");
        assert_eq!(target.schema, "fleet");
        assert!(!format!("{target:?}").contains("s3cret"));
        assert_eq!(
            redact("postgres://ann:s3cret@host/db?password=x&sslmode=disable"),
            "postgres://ann@host/db?password=…&sslmode=disable"
        );
        let err = Target::parse("postgresql://ann:s3cret@host/db?bogus=1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(Target::parse("postgresql://h/db?schema=1x").is_err());
        assert!(Target::parse("postgresql://h/db?schema=a;drop").is_err());
    }
}
