//! The PostgreSQL backend: one database shared by every process of a bot run as shard ranges
//! (DESIGN.md, "Scale-out"), selected with `DATABASE_URL=postgres://…`. Same tables, same
//! guarantees and the same answers as the [SQLite backend](super::sqlite); the conformance suite
//! (`tests/support/conformance.rs`) runs every behaviour test against both.
//!
//! Decisions:
//! - **tokio-postgres, driven by the backend's own one-thread runtime.** The [`Backend`] API is
//!   synchronous and is called from tokio's blocking pool (through [`Store::call`]) as well as from
//!   plain threads (the command line, tests, benchmarks). Each call blocks on
//!   [`Handle::block_on`] of a small runtime owned by the backend, whose single worker thread
//!   drives every connection's socket. `Handle::block_on` is allowed on any thread that is not
//!   itself running async tasks, which a `spawn_blocking` thread is not, so no call can hit
//!   "Cannot start a runtime from within a runtime" (tested from inside a multi-thread runtime).
//!   The sync `postgres` crate was not used: each of its clients owns a private runtime and
//!   *blocks on it when dropped*, so the last [`Store`](super::Store) clone dropped inside the
//!   bot's runtime would panic at shutdown; here the runtime is shut down without blocking and
//!   connections close on a helper thread. sqlx's PostgreSQL driver was not used either: about
//!   twice the crates and three times the added build time, an async-only API that would still
//!   need this bridge, and a pool of its own we do not need (measured in Cargo.toml). No TLS:
//!   connect over a Unix socket, a private network or a tunnel (`sslmode=require` is refused).
//! - **A small pool** of [`POOL_SIZE`] connections: concurrent deliveries call the store at once,
//!   and a claim must not wait behind another server's. Connections open on demand and the most
//!   recently used one is reused. A caller finding all of them busy waits (on its blocking
//!   thread, not the runtime) up to [`CHECKOUT_TIMEOUT`]. Every statement is prepared once per
//!   connection and cached.
//! - **Reconnects.** A connection the server closed (restart, `pg_terminate_backend`, a proxy's
//!   idle timeout) is dropped from the pool, and the call that met it runs again once on a new
//!   connection, provided nothing of it can have been applied: a read always, a write (always a
//!   transaction) only if the connection failed before its COMMIT was sent. The idle connections are closed too before
//!   that retry, since what closed one (a restart) has most likely closed them all. A failure during COMMIT is reported, not
//!   retried, because the transaction may have been applied (a claim retried then would report
//!   the caller's own claim as another's). A statement that gets no answer within
//!   [`CALL_TIMEOUT`] fails the call and its connection is closed.
//! - **How the guarantees hold.** A claim is one transaction: it takes a per-server advisory lock
//!   (`pg_advisory_xact_lock(high, low)` of the server id, so two processes claiming *different*
//!   periods of one feed cannot both advance its rotation from the same state, as SQLite's single
//!   writer guarantees there), returns an existing claim (or skip) if any, then inserts the
//!   `feed_post` row with `INSERT … ON CONFLICT DO NOTHING RETURNING …`: the primary key (server,
//!   feed channel, period) decides whatever the code path or the process, and the rotation is
//!   saved in the same transaction only when the row was inserted. The writes that check a
//!   server's limits (adding a feed, saving its insights, adding a suggestion, deciding one)
//!   take the same per-server lock first, so the
//!   count they check stays true until they commit; each transaction takes at most that one
//!   lock, so none can deadlock. Answers, votes and daily totals use row locks instead: a vote
//!   locks its answer row (`FOR UPDATE`), so votes on one answer run in turn and each sees the
//!   one before; totals are `INSERT … ON CONFLICT DO UPDATE` increments, and a batch of answers
//!   updates its totals rows in key order, so concurrent batches cannot deadlock; recording
//!   answers reads each server's gaps flag `FOR SHARE`, so a concurrent `set_gaps(off)` clears
//!   what it wrote too; pruning and turning gaps off, which update many answer rows in no set
//!   order, take one advisory lock ([`QUESTIONS_LOCK`]) so that two cannot deadlock (as do the
//!   per-server cap on kept questions and storing their vectors). Every other write is one
//!   transaction too, even a single `UPDATE … RETURNING`: then "the connection broke before COMMIT was sent" is a sure sign
//!   that nothing was applied, which is what makes retrying it safe.
//! - **Migrations** are the embedded files `migrations/postgres/NNNN_*.sql`, applied in order in
//!   one transaction that first takes `pg_advisory_xact_lock(`[`MIGRATION_LOCK`]`)`: a second
//!   process starting at the same moment waits, then finds the schema current and changes
//!   nothing. Applied versions are rows of `insight_bot_schema`, which also marks the schema as
//!   insight-bot's. Under that lock, before anything is written, the current schema (the first of
//!   the connection's `search_path`) is checked: tables but no `insight_bot_schema` is another
//!   program's schema ([`StoreError::PgNotOurs`]), and a version above this build's is
//!   [`StoreError::TooNew`]; both are refused and left unchanged.
//! - **Types.** Instants are `timestamptz`, written truncated to the millisecond as the SQLite
//!   backend stores them, so both backends return identical values. Discord ids are `bigint`, the
//!   u64 reinterpreted as i64 (lossless both ways; real snowflakes are below 2^63). Schedules are
//!   the text an admin types, parsed back as the SQLite backend does (`store::feed_row`): a row
//!   that no longer parses is [`StoreError::BadRow`] for that server, and `active_feeds` /
//!   `unconfirmed_posts` log and skip it. A period's start and a pause's end are `date`s. The rotation state and an insight's lists are `jsonb`,
//!   its vectors `bytea`; insight ids are `text COLLATE "C"`, so they sort as SQLite and Rust
//!   sort them whatever the database's collation.
//! - **The password is never shown.** [`Backend::describe`] and every error name the database by
//!   its URL with the password replaced ([`redact_password`]), and error details from the driver
//!   are scrubbed of the password as well.
//!
//! Layout: this file holds the backend itself (the pool and its sessions, connecting,
//! migrations, the read/write/transaction helpers, errors, the value conversions every table
//! shares, the per-server advisory lock) and the one `impl Backend`, whose methods delegate to a
//! file per domain: `weekly.rs` (feeds' settings, claims, the post log, threads, rotation),
//! `collections.rs` (servers' own insights, server settings, suggestions) and `feedback.rs`
//! (answers, votes, usage totals, gaps, pruning, the secret). Each domain file keeps its own row
//! types and SQL.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{
    count_from_db, Backend, Claim, Decision, FeedSettings, FeedSpec, Gap, InsightSource, Limit,
    NewAnswer, NewSuggestion, Pause, PostRecord, PostSource, Pruned, SaveOutcome, ServerInsight,
    ServerSettings, StoreError, StoredVectors, Suggestion, UsageScope, UsageStats, Vote,
    VoteOutcome,
};
use crate::config::{redact_password, REDACTED};
use crate::weekly::feed::FeedId;
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::Period;

/// The assignments that clear a kept question: its vector goes with its text, always.
macro_rules! clear_question {
    () => {
        "question = NULL, question_vector = NULL, question_model = NULL"
    };
}

// Declared after `clear_question!` so the domain files can use it (macros are textually scoped).
mod collections;
mod feedback;
mod weekly;

/// The schema migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_server_insights.sql"),
    include_str!("../../../migrations/postgres/0003_usage.sql"),
    include_str!("../../../migrations/postgres/0004_gap_vectors.sql"),
    include_str!("../../../migrations/postgres/0005_server_packs.sql"),
    include_str!("../../../migrations/postgres/0006_weak_answers.sql"),
    include_str!("../../../migrations/postgres/0007_feeds.sql"),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock (single 64-bit key space) held while checking and migrating the schema:
/// 'iBot', like the SQLite file's application id. Claims lock in the two-key space, which
/// PostgreSQL keeps apart from this one.
pub const MIGRATION_LOCK: i64 = 0x6942_6F74;

/// The advisory lock (single 64-bit key space) that [`Backend::prune`] and turning gaps off
/// hold: both update many answer rows, in no set order, and every process prunes daily, so
/// without it two of them could deadlock.
pub const QUESTIONS_LOCK: i64 = MIGRATION_LOCK + 1;

/// Connections per backend: enough for the deliveries of one wake to claim and confirm in
/// parallel, few enough for several processes to share one server's default 100 connections.
pub const POOL_SIZE: usize = 4;

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one statement may wait for its answer before its connection is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call waits for a free connection when all [`POOL_SIZE`] are busy.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long dropping the backend waits for its connections to say goodbye to the server.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The PostgreSQL backend. Every method takes `&self` and may be called from many threads at once.
pub struct PostgresBackend {
    /// The URL without its password: what messages name.
    database: String,
    redactor: Redactor,
    config: tokio_postgres::Config,
    handle: Handle,
    runtime: OwnedRuntime,
    pool: Mutex<Pool>,
    /// Signalled whenever a connection is returned or closed.
    returned: Condvar,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The runtime, shut down without blocking however it is dropped: dropping a multi-thread
/// runtime normally waits for its threads, which panics inside another runtime.
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    /// Connections open or being opened, idle or not.
    open: usize,
}

/// One connection, with the statements prepared on it.
struct Conn {
    client: Client,
    /// The task driving the connection's socket on the backend's runtime.
    task: JoinHandle<()>,
    statements: HashMap<&'static str, Statement>,
}

/// Replaces the password in text that came from the driver or the server, should it ever quote
/// it, and joins an error's causes into one line.
#[derive(Clone)]
struct Redactor {
    password: Option<String>,
}

impl Redactor {
    fn new(config: &tokio_postgres::Config) -> Redactor {
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Redactor { password }
    }

    fn describe(&self, error: &(dyn std::error::Error + 'static)) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.scrub(text.replace('\n', "; "))
    }

    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(password) => text.replace(password.as_str(), REDACTED),
            None => text,
        }
    }
}

/// A failure inside a store call, before the database name is attached.
enum Fault {
    Pg(tokio_postgres::Error),
    /// No answer within [`CALL_TIMEOUT`].
    Timeout,
    BadRow {
        table: &'static str,
        guild_id: u64,
        detail: String,
    },
    NoClaim {
        feed: FeedId,
        period: Period,
    },
    Limit {
        what: Limit,
        limit: usize,
    },
}

impl From<tokio_postgres::Error> for Fault {
    fn from(e: tokio_postgres::Error) -> Self {
        Fault::Pg(e)
    }
}

impl PostgresBackend {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or any
    /// form tokio-postgres accepts, Unix socket directories included) and creates or updates its
    /// schema. A database holding another program's tables, or written by a newer version, is
    /// refused and left unchanged. Blocking: call it before the runtime starts, from
    /// `spawn_blocking`, or from a plain thread.
    pub fn connect(url: &str) -> Result<PostgresBackend, StoreError> {
        let database = redact_password(url);
        let connect_error = |detail: String| StoreError::PgConnect {
            database: database.clone(),
            detail,
        };
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // A URL that does not parse may not even have its password where `Redactor` finds
            // it: the cause is named without quoting the URL.
            connect_error(format!("the URL does not parse ({e})"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("insight-bot");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("insight-bot-pg")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| connect_error(format!("cannot start its I/O thread: {e}")))?;
        let backend = PostgresBackend {
            redactor: Redactor::new(&config),
            database,
            config,
            handle: runtime.handle().clone(),
            runtime: OwnedRuntime(Some(runtime)),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        };
        backend.migrate()?;
        Ok(backend)
    }

    // ---- connections ----

    fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        // Nothing panics while the lock is held (only pushes, pops and counts).
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for one call: an idle one, a new one while fewer than [`POOL_SIZE`] are
    /// open, or the next one returned.
    fn session(&self) -> Result<Session<'_>, StoreError> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut pool = self.lock_pool();
        loop {
            while let Some(conn) = pool.idle.pop() {
                if conn.client.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(Session::new(self, conn));
            }
            if pool.open < POOL_SIZE {
                pool.open += 1;
                drop(pool);
                return match self.open_connection() {
                    Ok(conn) => Ok(Session::new(self, conn)),
                    Err(e) => {
                        self.lock_pool().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Postgres {
                    database: self.database.clone(),
                    detail: format!(
                        "all {POOL_SIZE} connections stayed busy for {} s",
                        CHECKOUT_TIMEOUT.as_secs()
                    ),
                });
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn open_connection(&self) -> Result<Conn, StoreError> {
        let (client, connection) =
            self.handle
                .block_on(self.config.connect(NoTls))
                .map_err(|e| StoreError::PgConnect {
                    database: self.database.clone(),
                    detail: self.redactor.describe(&e),
                })?;
        let (database, redactor) = (self.database.clone(), self.redactor.clone());
        let task = self.handle.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(
                    %database,
                    "PostgreSQL connection closed: {}",
                    redactor.describe(&e)
                );
            }
        });
        Ok(Conn {
            client,
            task,
            statements: HashMap::new(),
        })
    }

    /// Takes a connection back after a call; one that broke or was left mid-transaction is
    /// closed instead (the server rolls back what it had not committed).
    fn check_in(&self, conn: Conn, reusable: bool) {
        let mut pool = self.lock_pool();
        if reusable && !conn.client.is_closed() {
            pool.idle.push(conn);
        } else {
            pool.open -= 1;
            drop(conn);
        }
        drop(pool);
        self.returned.notify_one();
    }

    fn discard_idle(&self) {
        let mut pool = self.lock_pool();
        let idle = std::mem::take(&mut pool.idle);
        pool.open -= idle.len();
        drop(pool);
        drop(idle);
        self.returned.notify_all();
    }

    /// Waits for `future` on the backend's runtime, for at most [`CALL_TIMEOUT`].
    fn wait<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Fault> {
        // The timer is created inside `block_on`, where the runtime's context is entered.
        match self
            .handle
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, future).await })
        {
            Ok(result) => result.map_err(Fault::Pg),
            Err(_elapsed) => Err(Fault::Timeout),
        }
    }

    // ---- calls ----

    /// Runs `f` on a connection (in a transaction when `transaction`), once more on a new
    /// connection if the first one turned out to be broken and nothing can have been committed.
    fn call<T>(
        &self,
        transaction: bool,
        mut f: impl FnMut(&mut Session<'_>) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        let mut retried = false;
        loop {
            let mut session = self.session()?;
            let result = if transaction {
                session.transaction(&mut f)
            } else {
                f(&mut session)
            };
            let fault = match result {
                Ok(value) => return Ok(value),
                Err(fault) => fault,
            };
            let retry = !retried && session.lost(&fault) && !session.commit_sent;
            drop(session);
            if !retry {
                return Err(self.error(fault));
            }
            tracing::warn!(
                database = %self.database,
                "the PostgreSQL connection was lost ({}); trying again on a new connection",
                self.error(fault)
            );
            // What closed one connection (a server restart, a proxy's idle timeout) has most
            // likely closed the idle ones too, whether or not their sockets have noticed yet:
            // the retry must not meet another dead one.
            self.discard_idle();
            retried = true;
        }
    }

    /// Runs reads, outside a transaction (each statement sees the latest commits).
    fn read<T>(
        &self,
        f: impl FnMut(&mut Session<'_>) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        self.call(false, f)
    }

    /// Runs writes in one transaction.
    fn write<T>(
        &self,
        f: impl FnMut(&mut Session<'_>) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        self.call(true, f)
    }

    /// Converts raw rows, logging and dropping the ones that no longer parse.
    fn keep_valid<R, T>(&self, rows: Vec<R>, convert: impl Fn(R) -> Result<T, Fault>) -> Vec<T> {
        rows.into_iter()
            .filter_map(|row| match convert(row) {
                Ok(value) => Some(value),
                Err(fault) => {
                    tracing::warn!("skipped: {}", self.error(fault));
                    None
                }
            })
            .collect()
    }

    fn error(&self, fault: Fault) -> StoreError {
        let database = self.database.clone();
        match fault {
            Fault::Pg(e) => StoreError::Postgres {
                database,
                detail: self.redactor.describe(&e),
            },
            Fault::Timeout => StoreError::Postgres {
                database,
                detail: format!(
                    "no answer within {} s; the connection was closed",
                    CALL_TIMEOUT.as_secs()
                ),
            },
            Fault::BadRow {
                table,
                guild_id,
                detail,
            } => StoreError::BadRow {
                database,
                table,
                guild_id,
                detail,
            },
            Fault::NoClaim { feed, period } => StoreError::NoClaim {
                database,
                feed,
                period,
            },
            Fault::Limit { what, limit } => StoreError::Limit { what, limit },
        }
    }

    // ---- migrations ----

    /// Checks the schema and applies the migrations it lacks, all in one transaction under
    /// [`MIGRATION_LOCK`]. Refusals happen before anything is written.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut session = self.session()?;
        let database = self.database.clone();
        let pg = |fault: Fault| self.error(fault);
        session.begin().map_err(pg)?;
        session
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(pg)?;
        let schema: Option<String> = session
            .query_one("SELECT current_schema()::text", &[])
            .and_then(|row| Ok(row.try_get(0)?))
            .map_err(pg)?;
        let Some(schema) = schema else {
            return Err(StoreError::PgMigrate {
                database,
                version: 1,
                detail: "no schema to create the tables in: none of the search_path exists".into(),
            });
        };
        let row = session
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
                                WHERE schemaname = $1 AND tablename = 'insight_bot_schema'), \
                        (SELECT count(*) FROM pg_catalog.pg_class c \
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))",
                &[&schema],
            )
            .map_err(pg)?;
        let (marked, relations): (bool, i64) = (
            row.try_get(0).map_err(Fault::Pg).map_err(pg)?,
            row.try_get(1).map_err(Fault::Pg).map_err(pg)?,
        );
        let version = if marked {
            let row = session
                .query_one(
                    "SELECT coalesce(max(version), 0)::bigint FROM insight_bot_schema",
                    &[],
                )
                .map_err(pg)?;
            row.try_get::<_, i64>(0).map_err(Fault::Pg).map_err(pg)?
        } else if relations > 0 {
            return Err(StoreError::PgNotOurs {
                database,
                schema,
                detail: format!("{relations} tables and views, but no insight_bot_schema table"),
            });
        } else {
            0
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                database,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let to = index as i64 + 1;
            let step = session.batch(sql).and_then(|()| {
                session.execute(
                    "INSERT INTO insight_bot_schema (version) VALUES ($1)",
                    &[&(to as i32)],
                )
            });
            if let Err(fault) = step {
                return Err(match self.error(fault) {
                    StoreError::Postgres { detail, .. } => StoreError::PgMigrate {
                        database,
                        version: to,
                        detail,
                    },
                    other => other,
                });
            }
            tracing::info!(%database, version = to, "migrated the PostgreSQL schema");
        }
        session.commit().map_err(pg)
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        let pool = std::mem::take(self.pool.get_mut().unwrap_or_else(PoisonError::into_inner));
        let runtime = OwnedRuntime(self.runtime.0.take());
        // Dropping a client makes its connection send Terminate and close, so the server does
        // not log a lost client; that needs the runtime to run a moment longer. It happens on a
        // helper thread because this drop may run anywhere, inside an async runtime included,
        // where blocking on another runtime panics.
        let tasks: Vec<JoinHandle<()>> = pool
            .idle
            .into_iter()
            .map(|conn| {
                drop(conn.client);
                conn.task
            })
            .collect();
        let closer = std::thread::Builder::new()
            .name("insight-bot-pg-close".into())
            .spawn(move || {
                if let Some(rt) = &runtime.0 {
                    rt.block_on(async {
                        let all = async {
                            for task in tasks {
                                let _ = task.await;
                            }
                        };
                        let _ = tokio::time::timeout(CLOSE_GRACE, all).await;
                    });
                }
                drop(runtime);
            });
        if let Ok(closer) = closer {
            let _ = closer.join();
        }
    }
}

/// One checked-out connection, for one call.
struct Session<'a> {
    backend: &'a PostgresBackend,
    /// Always `Some` until dropped.
    conn: Option<Conn>,
    in_transaction: bool,
    /// COMMIT was sent: the transaction may have been applied even if the answer never came.
    commit_sent: bool,
    /// A statement timed out: the connection's state is unknown.
    timed_out: bool,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.backend
                .check_in(conn, !self.in_transaction && !self.timed_out);
        }
    }
}

impl<'a> Session<'a> {
    fn new(backend: &'a PostgresBackend, conn: Conn) -> Session<'a> {
        Session {
            backend,
            conn: Some(conn),
            in_transaction: false,
            commit_sent: false,
            timed_out: false,
        }
    }

    /// Whether `fault` means the connection is gone (closed by the server, a network error,
    /// an administrator's termination), as opposed to an error of this call.
    fn lost(&self, fault: &Fault) -> bool {
        let Fault::Pg(e) = fault else {
            return false;
        };
        let closed = self.conn.as_ref().is_none_or(|c| c.client.is_closed());
        // SQLSTATE class 08: connection exception; 57P: the server is shutting down or
        // terminated this session.
        let code = e.code().map(|c| c.code()).unwrap_or_default();
        closed || e.is_closed() || code.starts_with("08") || code.starts_with("57P")
    }

    fn client(&self) -> Result<&Client, Fault> {
        // `conn` is taken only by `drop`.
        self.conn.as_ref().map(|c| &c.client).ok_or(Fault::Timeout)
    }

    /// Passes a statement's result on, remembering a timeout (the connection's state is then
    /// unknown, so it is not reused).
    fn note<T>(&mut self, result: Result<T, Fault>) -> Result<T, Fault> {
        if matches!(result, Err(Fault::Timeout)) {
            self.timed_out = true;
        }
        result
    }

    /// The prepared statement for `sql` on this connection, prepared on first use.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, Fault> {
        if let Some(statement) = self.conn.as_ref().and_then(|c| c.statements.get(sql)) {
            return Ok(statement.clone());
        }
        let backend = self.backend;
        let result = backend.wait(self.client()?.prepare(sql));
        let statement = self.note(result)?;
        if let Some(conn) = self.conn.as_mut() {
            conn.statements.insert(sql, statement.clone());
        }
        Ok(statement)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Fault> {
        let statement = self.prepared(sql)?;
        let backend = self.backend;
        let result = backend.wait(self.client()?.query(&statement, params));
        self.note(result)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Fault> {
        let statement = self.prepared(sql)?;
        let backend = self.backend;
        let result = backend.wait(self.client()?.query_opt(&statement, params));
        self.note(result)
    }

    fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Fault> {
        let statement = self.prepared(sql)?;
        let backend = self.backend;
        let result = backend.wait(self.client()?.query_one(&statement, params));
        self.note(result)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Fault> {
        let statement = self.prepared(sql)?;
        let backend = self.backend;
        let result = backend.wait(self.client()?.execute(&statement, params));
        self.note(result)
    }

    /// Runs `sql` with the simple query protocol: several statements, no parameters.
    fn batch(&mut self, sql: &str) -> Result<(), Fault> {
        let backend = self.backend;
        let result = backend.wait(self.client()?.batch_execute(sql));
        self.note(result)
    }

    fn begin(&mut self) -> Result<(), Fault> {
        self.batch("BEGIN")?;
        self.in_transaction = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Fault> {
        self.commit_sent = true;
        self.batch("COMMIT")?;
        self.in_transaction = false;
        Ok(())
    }

    /// Runs `f` in a transaction, committed when it returns `Ok`, rolled back otherwise.
    fn transaction<T>(
        &mut self,
        f: &mut impl FnMut(&mut Session<'a>) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        self.begin()?;
        match f(self) {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(fault) => {
                // If even the rollback fails, the connection is closed on check-in, which
                // rolls back too.
                if self.batch("ROLLBACK").is_ok() {
                    self.in_transaction = false;
                }
                Err(fault)
            }
        }
    }
}

impl Backend for PostgresBackend {
    fn describe(&self) -> String {
        self.database.clone()
    }

    // ---- feeds ----

    fn set_feed(
        &self,
        feed: FeedId,
        spec: &FeedSpec,
        now: DateTime<Utc>,
    ) -> Result<FeedSettings, StoreError> {
        weekly::set_feed(self, feed, spec, now)
    }

    fn disable_feed(&self, feed: FeedId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        weekly::disable_feed(self, feed, now)
    }

    fn set_pause(
        &self,
        feed: FeedId,
        pause: Option<Pause>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        weekly::set_pause(self, feed, pause, now)
    }

    fn feed(&self, feed: FeedId) -> Result<Option<FeedSettings>, StoreError> {
        weekly::feed(self, feed)
    }

    fn feeds(&self, guild_id: u64) -> Result<Vec<FeedSettings>, StoreError> {
        weekly::feeds(self, guild_id)
    }

    fn active_feeds(&self) -> Result<Vec<FeedSettings>, StoreError> {
        weekly::active_feeds(self)
    }

    fn mark_failing(
        &self,
        feed: FeedId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::mark_failing(self, feed, reason, now)
    }

    // ---- posts ----

    fn claim(
        &self,
        feed: FeedId,
        period: Period,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        weekly::claim(self, feed, period, insight_ids, source, rng, now)
    }

    fn skip(&self, feed: FeedId, period: Period, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        weekly::skip(self, feed, period, now)
    }

    fn record_attempt(
        &self,
        feed: FeedId,
        period: Period,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError> {
        weekly::record_attempt(self, feed, period, now, error, retry_at)
    }

    fn confirm_post(
        &self,
        feed: FeedId,
        period: Period,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::confirm_post(self, feed, period, message_id, now)
    }

    fn record_thread(
        &self,
        feed: FeedId,
        period: Period,
        outcome: Result<u64, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::record_thread(self, feed, period, outcome, now)
    }

    fn posts_awaiting_thread(&self, since: DateTime<Utc>) -> Result<Vec<PostRecord>, StoreError> {
        weekly::posts_awaiting_thread(self, since)
    }

    fn release_claim(&self, feed: FeedId, period: Period) -> Result<(), StoreError> {
        weekly::release_claim(self, feed, period)
    }

    fn post(&self, feed: FeedId, period: Period) -> Result<Option<PostRecord>, StoreError> {
        weekly::post(self, feed, period)
    }

    fn last_post(&self, feed: FeedId) -> Result<Option<PostRecord>, StoreError> {
        weekly::last_post(self, feed)
    }

    fn claimed_slots_since(
        &self,
        since: NaiveDate,
    ) -> Result<HashSet<(FeedId, Period)>, StoreError> {
        weekly::claimed_slots_since(self, since)
    }

    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError> {
        weekly::unconfirmed_posts(self)
    }

    fn rotation(&self, feed: FeedId) -> Result<RotationState, StoreError> {
        weekly::rotation(self, feed)
    }

    // ---- a server's own insights ----

    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError> {
        collections::server_insights(self, guild_id)
    }

    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError> {
        collections::all_server_insights(self)
    }

    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        collections::server_insight_count(self, guild_id)
    }

    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError> {
        collections::save_server_insights(self, guild_id, insights, limit)
    }

    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError> {
        collections::delete_server_insight(self, guild_id, insight_id)
    }

    // ---- a server's settings ----

    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError> {
        collections::server_settings(self, guild_id)
    }

    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError> {
        collections::set_insight_source(self, guild_id, source)
    }

    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError> {
        collections::set_curator_role(self, guild_id, role_id)
    }

    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError> {
        collections::set_review_channel(self, guild_id, channel_id)
    }

    fn set_hidden(
        &self,
        guild_id: u64,
        insight_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        collections::set_hidden(self, guild_id, insight_id, hidden)
    }

    fn set_pack_on(&self, guild_id: u64, pack_id: &str, on: bool) -> Result<bool, StoreError> {
        collections::set_pack_on(self, guild_id, pack_id, on)
    }

    // ---- suggestions ----

    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError> {
        collections::add_suggestion(
            self,
            suggestion,
            per_author_pending_limit,
            per_server_pending_limit,
        )
    }

    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError> {
        collections::suggestion(self, guild_id, id)
    }

    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError> {
        collections::oldest_pending_suggestion(self, guild_id)
    }

    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        collections::pending_suggestion_count(self, guild_id)
    }

    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError> {
        collections::decide_suggestion(self, guild_id, id, decision, decided_by, now)
    }

    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError> {
        collections::set_suggestion_review_message(self, guild_id, id, channel_id, message_id)
    }

    // ---- how often insights were shown ----

    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        feedback::record_shown(self, guild_id, insight_id, day)
    }

    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError> {
        feedback::shown_counts(self, guild_id)
    }

    // ---- answers, votes, usage and gaps ----

    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError> {
        feedback::record_answers(self, answers)
    }

    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError> {
        feedback::record_vote(self, answer_id, voter, vote, today)
    }

    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError> {
        feedback::usage_stats(self, scope, since, until)
    }

    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError> {
        feedback::set_gaps(self, guild_id, on)
    }

    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError> {
        feedback::gaps(self, guild_id, since, limit)
    }

    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError> {
        feedback::set_gap_vectors(self, guild_id, vectors)
    }

    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError> {
        feedback::prune(self, today)
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        feedback::secret(self)
    }
}

// ---- values ----

/// A Discord id as a bigint: the u64 reinterpreted as i64, lossless both ways. Real snowflakes
/// are below 2^63, so they read the same in psql.
fn db_id(id: u64) -> i64 {
    id as i64
}

fn from_db_id(id: i64) -> u64 {
    id as u64
}

/// An instant as stored: truncated to the millisecond, as the SQLite backend stores it, so both
/// backends give back the same values.
fn db_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

/// The two 32-bit advisory lock keys of a server: its id's high and low halves.
fn lock_keys(guild_id: u64) -> (i32, i32) {
    ((guild_id >> 32) as u32 as i32, guild_id as u32 as i32)
}

/// Takes the server's lock until the end of the transaction: the one lock every write that must
/// see a server's rows as a whole takes (claims, insight saves, suggestions), so no two of them
/// for one server interleave, in any process. One lock per transaction, so no deadlock.
fn lock_server(s: &mut Session<'_>, guild_id: u64) -> Result<(), Fault> {
    let (high, low) = lock_keys(guild_id);
    s.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&high, &low])?;
    Ok(())
}

/// A `count(*)` as a `usize`.
fn count(
    s: &mut Session<'_>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<usize, Fault> {
    let n: i64 = s.query_one(sql, params)?.try_get(0)?;
    Ok(usize::try_from(count_from_db(n)).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_split_the_id_losslessly() {
        for id in [
            0,
            1,
            u64::from(u32::MAX),
            1 << 32,
            i64::MAX as u64,
            u64::MAX,
        ] {
            let (high, low) = lock_keys(id);
            assert_eq!((u64::from(high as u32) << 32) | u64::from(low as u32), id);
        }
    }

    #[test]
    fn instants_are_stored_to_the_millisecond() {
        let at = DateTime::parse_from_rfc3339("2026-03-03T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(db_time(at).to_rfc3339(), "2026-03-03T10:00:00.123+00:00");
    }

    #[test]
    fn a_url_that_does_not_parse_is_refused_without_its_password() {
        let err = PostgresBackend::connect("postgres://bot:hunter2@db:port/x").unwrap_err();
        assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
        let message = err.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("postgres://bot:<redacted>@db:port/x"),
            "{message}"
        );
    }

    #[test]
    fn an_unreachable_server_is_a_connect_error_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        // A socket directory with no server in it: refused at once, no network involved.
        let url = format!(
            "postgresql://bot:hunter2@{}/insight",
            dir.path().display().to_string().replace('/', "%2F")
        );
        let err = PostgresBackend::connect(&url).unwrap_err();
        assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
        let message = err.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("bot:<redacted>@"), "{message}");
    }

    #[test]
    fn the_backend_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PostgresBackend>();
    }
}
