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
//!   weeks of one server cannot both advance the rotation from the same state, as SQLite's single
//!   writer guarantees there), returns an existing claim if any, then inserts the `post_log` row
//!   with `INSERT … ON CONFLICT DO NOTHING RETURNING …`: the primary key (server, ISO year, ISO
//!   week) decides whatever the code path or the process, and the rotation is saved in the same
//!   transaction only when the row was inserted. The writes that check a server's limits (saving
//!   its insights, adding a suggestion, deciding one) take the same per-server lock first, so the
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
//!   the text an admin types, parsed back with [`WeeklySchedule::parse`]: a row that no longer
//!   parses is [`StoreError::BadRow`] for that server, and `active_weeklies` /
//!   `unconfirmed_posts` log and skip it. The rotation state and an insight's lists are `jsonb`,
//!   its vectors `bytea`; insight ids are `text COLLATE "C"`, so they sort as SQLite and Rust
//!   sort them whatever the database's collation.
//! - **The password is never shown.** [`Backend::describe`] and every error name the database by
//!   its URL with the password replaced ([`redact_password`]), and error details from the driver
//!   are scrubbed of the password as well.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SubsecRound, Timelike, Utc};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::sqlite::weekday_code;
use super::{
    answer_totals, count_from_db, list_json, parse_list, post_nonce, questions_over_cap,
    retention_cutoffs, vote_change, Backend, Claim, Decision, Failure, Gap, InsightSource, Limit,
    NewAnswer, NewSuggestion, PostRecord, PostSource, Pruned, ReviewMessage, SaveOutcome,
    ServerInsight, ServerSettings, StoreError, StoredVectors, Suggestion, SuggestionStatus,
    UsageScope, UsageStats, Vote, VoteOutcome, WeeklySettings, VOTE_WINDOW_DAYS,
};
use crate::config::{redact_password, REDACTED};
use crate::insights::{Insight, Source};
use crate::stats::{DayAnswers, InsightUse};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

/// The assignments that clear a kept question: its vector goes with its text, always.
macro_rules! clear_question {
    () => {
        "question = NULL, question_vector = NULL, question_model = NULL"
    };
}

/// The schema migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_server_insights.sql"),
    include_str!("../../../migrations/postgres/0003_usage.sql"),
    include_str!("../../../migrations/postgres/0004_gap_vectors.sql"),
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
        guild_id: u64,
        week: WeekKey,
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
            Fault::NoClaim { guild_id, week } => StoreError::NoClaim {
                database,
                guild_id,
                week,
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

    // ---- weekly settings ----

    fn set_weekly(
        &self,
        guild_id: u64,
        channel_id: u64,
        schedule: &WeeklySchedule,
        now: DateTime<Utc>,
    ) -> Result<WeeklySettings, StoreError> {
        let time = format!("{:02}:{:02}", schedule.time.hour(), schedule.time.minute());
        let row = self.write(|s| {
            s.query_one(
                UPSERT_WEEKLY,
                &[
                    &db_id(guild_id),
                    &db_id(channel_id),
                    &weekday_code(schedule.weekday),
                    &time,
                    &schedule.zone.name(),
                    &db_time(now),
                ],
            )
            .and_then(|row| Ok(WeeklyRow::read(&row)?))
        })?;
        row.into_settings().map_err(|fault| self.error(fault))
    }

    fn disable_weekly(&self, guild_id: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = self.write(|s| {
            s.execute(
                "UPDATE weekly SET enabled = false, updated_at = $2 \
                 WHERE guild_id = $1 AND enabled",
                &[&db_id(guild_id), &db_time(now)],
            )
        })?;
        Ok(changed > 0)
    }

    fn weekly(&self, guild_id: u64) -> Result<Option<WeeklySettings>, StoreError> {
        let row = self.read(|s| {
            s.query_opt(SELECT_WEEKLY, &[&db_id(guild_id)])?
                .map(|row| WeeklyRow::read(&row))
                .transpose()
                .map_err(Fault::Pg)
        })?;
        row.map(WeeklyRow::into_settings)
            .transpose()
            .map_err(|fault| self.error(fault))
    }

    fn active_weeklies(&self) -> Result<Vec<WeeklySettings>, StoreError> {
        let rows = self.read(|s| {
            let rows = s.query(ACTIVE_WEEKLIES, &[])?;
            Ok(rows
                .iter()
                .map(WeeklyRow::read)
                .collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(self.keep_valid(rows, WeeklyRow::into_settings))
    }

    fn mark_failing(
        &self,
        guild_id: u64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "UPDATE weekly SET failure_reason = $2, failed_at = $3, updated_at = $3 \
                 WHERE guild_id = $1",
                &[&db_id(guild_id), &reason, &db_time(now)],
            )
        })?;
        Ok(())
    }

    // ---- posts ----

    #[allow(clippy::too_many_arguments)] // each is a plain value the poster already holds
    fn claim(
        &self,
        guild_id: u64,
        week: WeekKey,
        channel_id: u64,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        if week.monday().is_none() {
            return Err(StoreError::InvalidWeek { week });
        }
        let nonce = post_nonce(guild_id, week);
        self.write(|s| {
            // One claim per server at a time, in every process: the rotation read below is the
            // one the insert will advance.
            lock_server(s, guild_id)?;
            if let Some(existing) = select_post(s, guild_id, week)? {
                return Ok(Some(Claim::AlreadyClaimed(existing)));
            }
            let rotation = select_rotation(s, guild_id)?;
            let Some((insight_id, next)) = rotation.next(insight_ids, rng) else {
                return Ok(None);
            };
            // The primary key decides. Under the lock no other claim can have inserted since the
            // check above, but if a writer without it ever did, its row wins and the rotation is
            // left as it was, because it is written only after our insert succeeded.
            let inserted = s.query_opt(
                INSERT_CLAIM,
                &[
                    &db_id(guild_id),
                    &week.year,
                    &db_week(week.week),
                    &db_id(channel_id),
                    &insight_id,
                    &nonce,
                    &source.as_str(),
                    &db_time(now),
                ],
            )?;
            let Some(row) = inserted else {
                let record =
                    select_post(s, guild_id, week)?.ok_or(Fault::NoClaim { guild_id, week })?;
                return Ok(Some(Claim::AlreadyClaimed(record)));
            };
            let record = PostRow::read(&row)?.into_record()?;
            save_rotation(s, guild_id, &next, now)?;
            Ok(Some(Claim::Claimed(record)))
        })
    }

    fn record_attempt(
        &self,
        guild_id: u64,
        week: WeekKey,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError> {
        let counted = i32::from(error.is_none());
        let row = self.write(|s| {
            s.query_opt(
                RECORD_ATTEMPT,
                &[
                    &db_id(guild_id),
                    &week.year,
                    &db_week(week.week),
                    &counted,
                    &error,
                    &retry_at.map(db_time),
                    &db_time(now),
                ],
            )?
            .map(|row| PostRow::read(&row))
            .transpose()
            .map_err(Fault::Pg)
        })?;
        let row = row.ok_or_else(|| self.error(Fault::NoClaim { guild_id, week }))?;
        row.into_record().map_err(|fault| self.error(fault))
    }

    fn confirm_post(
        &self,
        guild_id: u64,
        week: WeekKey,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|s| {
            let changed = s.execute(
                "UPDATE post_log SET message_id = $4, posted_at = $5, retry_at = NULL, \
                     updated_at = $5 \
                 WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 AND message_id IS NULL",
                &[
                    &db_id(guild_id),
                    &week.year,
                    &db_week(week.week),
                    &db_id(message_id),
                    &db_time(now),
                ],
            )?;
            if changed == 0 {
                match select_post(s, guild_id, week)? {
                    None => return Err(Fault::NoClaim { guild_id, week }),
                    Some(record) if record.message_id != Some(message_id) => {
                        tracing::warn!(
                            guild_id,
                            %week,
                            kept = ?record.message_id,
                            ignored = message_id,
                            "weekly post confirmed twice with different messages; keeping the first"
                        );
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        })
    }

    fn release_claim(&self, guild_id: u64, week: WeekKey) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "DELETE FROM post_log \
                 WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 AND message_id IS NULL",
                &[&db_id(guild_id), &week.year, &db_week(week.week)],
            )
        })?;
        Ok(())
    }

    fn post(&self, guild_id: u64, week: WeekKey) -> Result<Option<PostRecord>, StoreError> {
        self.read(|s| select_post(s, guild_id, week))
    }

    fn last_post(&self, guild_id: u64) -> Result<Option<PostRecord>, StoreError> {
        self.read(|s| {
            s.query_opt(LAST_POST, &[&db_id(guild_id)])?
                .map(|row| PostRow::read(&row)?.into_record())
                .transpose()
        })
    }

    fn claimed_slots_since(&self, week: WeekKey) -> Result<HashSet<(u64, WeekKey)>, StoreError> {
        self.read(|s| {
            let rows = s.query(
                "SELECT guild_id, iso_year, iso_week FROM post_log \
                 WHERE (iso_year, iso_week) >= ($1, $2)",
                &[&week.year, &db_week(week.week)],
            )?;
            rows.iter()
                .map(|row| -> Result<(u64, WeekKey), Fault> {
                    let guild_id = from_db_id(row.try_get(0)?);
                    let (year, number): (i32, i32) = (row.try_get(1)?, row.try_get(2)?);
                    let week = u32::try_from(number).map_err(|_| Fault::BadRow {
                        table: "post_log",
                        guild_id,
                        detail: format!("week {year}-W{number} is out of range"),
                    })?;
                    Ok((guild_id, WeekKey { year, week }))
                })
                .collect()
        })
    }

    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError> {
        let rows = self.read(|s| {
            let rows = s.query(UNCONFIRMED_POSTS, &[])?;
            Ok(rows
                .iter()
                .map(PostRow::read)
                .collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(self.keep_valid(rows, PostRow::into_record))
    }

    fn rotation(&self, guild_id: u64) -> Result<RotationState, StoreError> {
        self.read(|s| select_rotation(s, guild_id))
    }

    // ---- a server's own insights ----

    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError> {
        self.read(|s| {
            s.query(SERVER_INSIGHTS, &[&db_id(guild_id)])?
                .iter()
                .map(|row| ServerInsightRow::read(row)?.into_insight())
                .collect()
        })
    }

    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError> {
        let rows = self.read(|s| {
            let rows = s.query(ALL_SERVER_INSIGHTS, &[])?;
            Ok(rows
                .iter()
                .map(ServerInsightRow::read)
                .collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(self.keep_valid(rows, ServerInsightRow::into_insight))
    }

    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        self.read(|s| count_server_insights(s, guild_id))
    }

    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError> {
        self.write(|s| {
            lock_server(s, guild_id)?;
            save_server_insights(s, guild_id, insights, limit)
        })
    }

    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError> {
        let deleted = self.write(|s| {
            s.execute(
                "DELETE FROM server_insight WHERE guild_id = $1 AND insight_id = $2",
                &[&db_id(guild_id), &insight_id],
            )
        })?;
        Ok(deleted > 0)
    }

    // ---- a server's settings ----

    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError> {
        self.read(|s| {
            let row = s.query_opt(
                "SELECT insight_source, curator_role, review_channel, gaps FROM server_settings \
                 WHERE guild_id = $1",
                &[&db_id(guild_id)],
            )?;
            let hidden = s
                .query(
                    "SELECT insight_id FROM hidden_insight WHERE guild_id = $1 \
                     ORDER BY insight_id",
                    &[&db_id(guild_id)],
                )?
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            let mut settings = ServerSettings {
                hidden,
                ..ServerSettings::default()
            };
            if let Some(row) = row {
                let source: String = row.try_get(0)?;
                settings.source = InsightSource::parse(&source).ok_or_else(|| Fault::BadRow {
                    table: "server_settings",
                    guild_id,
                    detail: format!("unknown insight source {source:?}"),
                })?;
                settings.curator_role = row.try_get::<_, Option<i64>>(1)?.map(from_db_id);
                settings.review_channel = row.try_get::<_, Option<i64>>(2)?.map(from_db_id);
                settings.gaps = row.try_get(3)?;
            }
            Ok(settings)
        })
    }

    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO server_settings (guild_id, insight_source) VALUES ($1, $2) \
                 ON CONFLICT (guild_id) DO UPDATE SET insight_source = excluded.insight_source",
                &[&db_id(guild_id), &source.as_str()],
            )
        })?;
        Ok(())
    }

    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO server_settings (guild_id, curator_role) VALUES ($1, $2) \
                 ON CONFLICT (guild_id) DO UPDATE SET curator_role = excluded.curator_role",
                &[&db_id(guild_id), &role_id.map(db_id)],
            )
        })?;
        Ok(())
    }

    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO server_settings (guild_id, review_channel) VALUES ($1, $2) \
                 ON CONFLICT (guild_id) DO UPDATE SET review_channel = excluded.review_channel",
                &[&db_id(guild_id), &channel_id.map(db_id)],
            )
        })?;
        Ok(())
    }

    fn set_hidden(
        &self,
        guild_id: u64,
        insight_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        let sql = if hidden {
            "INSERT INTO hidden_insight (guild_id, insight_id) VALUES ($1, $2) \
             ON CONFLICT (guild_id, insight_id) DO NOTHING"
        } else {
            "DELETE FROM hidden_insight WHERE guild_id = $1 AND insight_id = $2"
        };
        let changed = self.write(|s| s.execute(sql, &[&db_id(guild_id), &insight_id]))?;
        Ok(changed > 0)
    }

    // ---- suggestions ----

    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError> {
        let guild = db_id(suggestion.guild_id);
        let author = db_id(suggestion.author_id);
        let now = db_time(suggestion.now);
        self.write(|s| {
            // One writer per server at a time, in every process: the counts below stay true
            // until the insert commits.
            lock_server(s, suggestion.guild_id)?;
            let author_pending = count(
                s,
                "SELECT count(*) FROM suggestion \
                 WHERE guild_id = $1 AND author_id = $2 AND status = 'pending'",
                &[&guild, &author],
            )?;
            if author_pending >= per_author_pending_limit {
                return Err(Fault::Limit {
                    what: Limit::AuthorPendingSuggestions,
                    limit: per_author_pending_limit,
                });
            }
            let server_pending = count(s, PENDING_SUGGESTION_COUNT, &[&guild])?;
            if server_pending >= per_server_pending_limit {
                return Err(Fault::Limit {
                    what: Limit::ServerPendingSuggestions,
                    limit: per_server_pending_limit,
                });
            }
            let row = s.query_one(
                INSERT_SUGGESTION,
                &[
                    &guild,
                    &author,
                    &suggestion.title,
                    &suggestion.text,
                    &suggestion.why,
                    &now,
                ],
            )?;
            SuggestionRow::read(&row)?.into_suggestion()
        })
    }

    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError> {
        self.read(|s| {
            s.query_opt(SELECT_SUGGESTION, &[&db_id(guild_id), &db_id(id)])?
                .map(|row| SuggestionRow::read(&row)?.into_suggestion())
                .transpose()
        })
    }

    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError> {
        self.read(|s| {
            s.query_opt(OLDEST_PENDING_SUGGESTION, &[&db_id(guild_id)])?
                .map(|row| SuggestionRow::read(&row)?.into_suggestion())
                .transpose()
        })
    }

    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        self.read(|s| count(s, PENDING_SUGGESTION_COUNT, &[&db_id(guild_id)]))
    }

    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError> {
        let (status, reason, insight_id) = match &decision {
            Decision::Approve { insight, .. } => (
                SuggestionStatus::Approved,
                None,
                Some(insight.insight.id.as_str()),
            ),
            Decision::Reject { reason } => (SuggestionStatus::Rejected, reason.as_deref(), None),
        };
        self.write(|s| {
            // The server's lock first, as every write that counts its rows takes it: the
            // approval's save checks the insight limit.
            lock_server(s, guild_id)?;
            let decided = s.query_opt(
                DECIDE_SUGGESTION,
                &[
                    &db_id(guild_id),
                    &db_id(id),
                    &status.as_str(),
                    &reason,
                    &insight_id,
                    &db_time(now),
                    &db_id(decided_by),
                ],
            )?;
            let Some(decided) = decided else {
                return Ok(None); // none such, or already decided
            };
            let decided = SuggestionRow::read(&decided)?;
            if let Decision::Approve { insight, limit } = &decision {
                // Refused here, the transaction rolls back: the suggestion stays pending.
                save_server_insights(s, guild_id, std::slice::from_ref(insight), *limit)?;
            }
            decided.into_suggestion().map(Some)
        })
    }

    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError> {
        let changed = self.write(|s| {
            s.execute(
                "UPDATE suggestion SET review_channel_id = $3, review_message_id = $4 \
                 WHERE guild_id = $1 AND id = $2",
                &[
                    &db_id(guild_id),
                    &db_id(id),
                    &db_id(channel_id),
                    &db_id(message_id),
                ],
            )
        })?;
        Ok(changed > 0)
    }

    // ---- how often insights were shown ----

    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO insight_shown (guild_id, insight_id, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (guild_id, insight_id) \
                 DO UPDATE SET count = insight_shown.count + 1",
                &[&db_id(guild_id), &insight_id],
            )?;
            s.execute(
                "INSERT INTO usage_day (guild_id, day, insight_id, shown) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (guild_id, day, insight_id) \
                 DO UPDATE SET shown = usage_day.shown + 1",
                &[&db_id(guild_id), &day, &insight_id],
            )
        })?;
        Ok(())
    }

    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError> {
        self.read(|s| {
            s.query(
                "SELECT insight_id, count FROM insight_shown WHERE guild_id = $1",
                &[&db_id(guild_id)],
            )?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<_, String>(0)?,
                    count_from_db(row.try_get::<_, i64>(1)?),
                ))
            })
            .collect()
        })
    }

    // ---- answers, votes, usage and gaps ----

    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError> {
        if answers.is_empty() {
            return Ok(Vec::new());
        }
        let totals = answer_totals(answers);
        let mut asking: Vec<u64> = answers
            .iter()
            .filter(|a| a.question.is_some())
            .filter_map(|a| a.guild_id)
            .collect();
        asking.sort_unstable();
        asking.dedup();
        let answer_ids: Vec<i64> = answers.iter().map(|a| db_id(a.id)).collect();
        let guilds: Vec<i64> = answers
            .iter()
            .map(|a| db_id(a.guild_id.unwrap_or(0)))
            .collect();
        let days: Vec<NaiveDate> = answers.iter().map(|a| a.day).collect();
        let insights: Vec<Option<&str>> = answers.iter().map(|a| a.insight_id.as_deref()).collect();
        let no_match: Vec<bool> = answers.iter().map(|a| a.no_close_match).collect();
        let (mut t_guilds, mut t_days, mut t_insights, mut t_answers, mut t_no_match) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((guild, day, insight), (count, no_match)) in &totals {
            t_guilds.push(db_id(*guild));
            t_days.push(*day);
            t_insights.push(insight.as_str());
            t_answers.push(*count);
            t_no_match.push(*no_match);
        }
        self.write(|s| {
            // FOR SHARE: a set_gaps(off) of these servers waits for this commit, and then
            // clears what it wrote too (or it went first, and its flag is read here as off).
            let mut keep: HashSet<u64> = HashSet::new();
            for &guild in &asking {
                let on = s
                    .query_opt(
                        "SELECT gaps FROM server_settings WHERE guild_id = $1 FOR SHARE",
                        &[&db_id(guild)],
                    )?
                    .map(|row| row.try_get::<_, bool>(0))
                    .transpose()?
                    .unwrap_or(false);
                if on {
                    keep.insert(guild);
                }
            }
            let questions: Vec<Option<&str>> = answers
                .iter()
                .map(|a| match a.guild_id {
                    Some(guild) if keep.contains(&guild) => a.question.as_deref(),
                    _ => None,
                })
                .collect();
            let kept_vectors: Vec<Option<&StoredVectors>> = answers
                .iter()
                .zip(&questions)
                .map(|(a, q)| a.question_vector.as_ref().filter(|_| q.is_some()))
                .collect();
            let vectors: Vec<Option<&[u8]>> = kept_vectors
                .iter()
                .map(|v| v.map(|v| v.bytes.as_slice()))
                .collect();
            let models: Vec<Option<i64>> = kept_vectors
                .iter()
                .map(|v| v.map(|v| db_id(v.fingerprint)))
                .collect();
            s.execute(
                "INSERT INTO answer (id, guild_id, day, insight_id, no_close_match, question, \
                     question_vector, question_model) \
                 SELECT a, g, d, i, n, q, v, m \
                 FROM unnest($1::bigint[], $2::bigint[], $3::date[], $4::text[], $5::boolean[], \
                             $6::text[], $7::bytea[], $8::bigint[]) AS t (a, g, d, i, n, q, v, m)",
                &[
                    &answer_ids,
                    &guilds,
                    &days,
                    &insights,
                    &no_match,
                    &questions,
                    &vectors,
                    &models,
                ],
            )?;
            // The cap, before the daily totals: this transaction then holds no totals row while
            // it waits for the questions lock or for an answer row a vote holds (a vote locks
            // its answer, then totals), so the two cannot wait for each other.
            let mut kept_by: Vec<u64> = keep.iter().copied().collect();
            kept_by.sort_unstable();
            let mut locked = false;
            for guild in kept_by {
                let kept = count(
                    s,
                    "SELECT count(*) FROM answer WHERE guild_id = $1 AND question IS NOT NULL",
                    &[&db_id(guild)],
                )?;
                let over = questions_over_cap(kept);
                if over == 0 {
                    continue;
                }
                if !locked {
                    // Clearing updates many answer rows, like prune and set_gaps(off).
                    s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
                    locked = true;
                }
                s.execute(
                    concat!(
                        "UPDATE answer SET ",
                        clear_question!(),
                        " WHERE id IN (SELECT id FROM answer \
                           WHERE guild_id = $1 AND question IS NOT NULL \
                           ORDER BY day, id LIMIT $2)"
                    ),
                    &[&db_id(guild), &(over as i64)],
                )?;
            }
            // In key order (as sorted by answer_totals): concurrent batches lock the rows they
            // share in the same order, so they cannot deadlock.
            s.execute(
                "INSERT INTO usage_day (guild_id, day, insight_id, answers, no_close_match) \
                 SELECT g, d, i, a, n \
                 FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[], \
                             $5::bigint[]) WITH ORDINALITY AS t (g, d, i, a, n, o) \
                 ORDER BY o \
                 ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                     answers = usage_day.answers + excluded.answers, \
                     no_close_match = usage_day.no_close_match + excluded.no_close_match",
                &[&t_guilds, &t_days, &t_insights, &t_answers, &t_no_match],
            )?;
            Ok(())
        })?;
        Ok(answers.iter().map(|a| a.id).collect())
    }

    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError> {
        let voter = &voter[..];
        let open_since = open_since_for(today);
        self.write(|s| {
            // FOR UPDATE: votes on one answer run one after the other, so each sees the one
            // before (the same voter clicking twice at once changes it once), and prune cannot
            // delete the answer under it.
            let Some(answer) = s.query_opt(
                "SELECT guild_id, day, coalesce(insight_id, '') FROM answer WHERE id = $1 \
                 FOR UPDATE",
                &[&db_id(answer_id)],
            )?
            else {
                return Ok(VoteOutcome::UnknownAnswer);
            };
            let guild: i64 = answer.try_get(0)?;
            let day: NaiveDate = answer.try_get(1)?;
            let insight: String = answer.try_get(2)?;
            if day < open_since {
                return Ok(VoteOutcome::Closed);
            }
            let old = s
                .query_opt(
                    "SELECT vote FROM answer_vote WHERE answer_id = $1 AND voter = $2",
                    &[&db_id(answer_id), &voter],
                )?
                .map(|row| row.try_get::<_, String>(0))
                .transpose()?;
            let old = old
                .map(|text| {
                    Vote::parse(&text).ok_or_else(|| Fault::BadRow {
                        table: "answer_vote",
                        guild_id: from_db_id(guild),
                        detail: format!("unknown vote {text:?}"),
                    })
                })
                .transpose()?;
            let (outcome, helpful, not_helpful) = vote_change(old, vote);
            if outcome == VoteOutcome::Unchanged {
                return Ok(outcome);
            }
            s.execute(
                "INSERT INTO answer_vote (answer_id, voter, vote) VALUES ($1, $2, $3) \
                 ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote",
                &[&db_id(answer_id), &voter, &vote.as_str()],
            )?;
            s.execute(
                "INSERT INTO usage_day (guild_id, day, insight_id, helpful, not_helpful) \
                 VALUES ($1, $2, $3, GREATEST($4::bigint, 0), GREATEST($5::bigint, 0)) \
                 ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                     helpful = usage_day.helpful + $4::bigint, \
                     not_helpful = usage_day.not_helpful + $5::bigint",
                &[&guild, &day, &insight, &helpful, &not_helpful],
            )?;
            if not_helpful != 0 {
                s.execute(
                    "UPDATE answer SET not_helpful = not_helpful + $2::bigint WHERE id = $1",
                    &[&db_id(answer_id), &not_helpful],
                )?;
            }
            Ok(outcome)
        })
    }

    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError> {
        let guild = match scope {
            UsageScope::Server(guild) => Some(db_id(guild)),
            UsageScope::DirectMessages => Some(0),
            UsageScope::Everywhere => None,
        };
        let (days, insights) = self.write(|s| {
            // One snapshot for both (a read-only transaction; nothing is written).
            s.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            let (days, insights) = match &guild {
                Some(g) => (
                    s.query(
                        "SELECT day, sum(answers)::bigint, sum(no_close_match)::bigint \
                         FROM usage_day WHERE guild_id = $3 AND day BETWEEN $1 AND $2 \
                         GROUP BY day HAVING sum(answers) > 0 ORDER BY day",
                        &[&since, &until, g],
                    )?,
                    s.query(
                        "SELECT insight_id, sum(shown)::bigint, sum(helpful)::bigint, \
                             sum(not_helpful)::bigint \
                         FROM usage_day \
                         WHERE guild_id = $3 AND day BETWEEN $1 AND $2 AND insight_id <> '' \
                         GROUP BY insight_id \
                         HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
                         ORDER BY insight_id",
                        &[&since, &until, g],
                    )?,
                ),
                None => (
                    s.query(
                        "SELECT day, sum(answers)::bigint, sum(no_close_match)::bigint \
                         FROM usage_day WHERE day BETWEEN $1 AND $2 \
                         GROUP BY day HAVING sum(answers) > 0 ORDER BY day",
                        &[&since, &until],
                    )?,
                    s.query(
                        "SELECT insight_id, sum(shown)::bigint, sum(helpful)::bigint, \
                             sum(not_helpful)::bigint \
                         FROM usage_day WHERE day BETWEEN $1 AND $2 AND insight_id <> '' \
                         GROUP BY insight_id \
                         HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
                         ORDER BY insight_id",
                        &[&since, &until],
                    )?,
                ),
            };
            let days = days
                .iter()
                .map(|row| {
                    Ok(DayAnswers {
                        day: row.try_get(0)?,
                        answers: count_from_db(row.try_get(1)?),
                        no_close_match: count_from_db(row.try_get(2)?),
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
            let insights = insights
                .iter()
                .map(|row| {
                    Ok(InsightUse {
                        id: row.try_get(0)?,
                        shown: count_from_db(row.try_get(1)?),
                        helpful: count_from_db(row.try_get(2)?),
                        not_helpful: count_from_db(row.try_get(3)?),
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
            Ok((days, insights))
        })?;
        Ok(UsageStats { days, insights })
    }

    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO server_settings (guild_id, gaps) VALUES ($1, $2) \
                 ON CONFLICT (guild_id) DO UPDATE SET gaps = excluded.gaps",
                &[&db_id(guild_id), &on],
            )?;
            if on {
                return Ok(0);
            }
            s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
            s.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE guild_id = $1 AND question IS NOT NULL"
                ),
                &[&db_id(guild_id)],
            )
        })
    }

    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|s| {
            s.query(
                "SELECT id, question, day, no_close_match, not_helpful, question_vector, \
                     question_model FROM ( \
                     SELECT a.id, a.question, a.day, a.no_close_match, \
                         a.not_helpful > 0 AS not_helpful, a.question_vector, a.question_model \
                     FROM answer a \
                     WHERE a.guild_id = $1 AND a.question IS NOT NULL AND a.day >= $2) AS kept \
                 WHERE no_close_match OR not_helpful \
                 ORDER BY day DESC, id DESC LIMIT $3",
                &[&db_id(guild_id), &since, &limit],
            )?
            .iter()
            .map(|row| {
                Ok(Gap {
                    answer_id: from_db_id(row.try_get(0)?),
                    question: row.try_get(1)?,
                    day: row.try_get(2)?,
                    no_close_match: row.try_get(3)?,
                    not_helpful: row.try_get(4)?,
                    // The schema keeps both or neither.
                    vector: row
                        .try_get::<_, Option<Vec<u8>>>(5)?
                        .zip(row.try_get::<_, Option<i64>>(6)?)
                        .map(|(bytes, model)| StoredVectors {
                            fingerprint: from_db_id(model),
                            bytes,
                        }),
                })
            })
            .collect()
        })
    }

    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError> {
        if vectors.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = vectors.iter().map(|(id, _)| db_id(*id)).collect();
        let bytes: Vec<&[u8]> = vectors.iter().map(|(_, v)| v.bytes.as_slice()).collect();
        let models: Vec<i64> = vectors.iter().map(|(_, v)| db_id(v.fingerprint)).collect();
        self.write(|s| {
            // Many answer rows, like prune and the cap: the same lock keeps them from deadlocking.
            s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
            s.execute(
                "UPDATE answer SET question_vector = t.v, question_model = t.m \
                 FROM unnest($2::bigint[], $3::bytea[], $4::bigint[]) AS t (a, v, m) \
                 WHERE answer.id = t.a AND answer.guild_id = $1 AND answer.question IS NOT NULL",
                &[&db_id(guild_id), &ids, &bytes, &models],
            )
        })
    }

    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError> {
        let cutoffs = retention_cutoffs(today);
        self.write(|s| {
            s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
            // Votes go with their answers (ON DELETE CASCADE).
            let answers = s.execute("DELETE FROM answer WHERE day < $1", &[&cutoffs.answers])?;
            let old_gaps = s.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE question IS NOT NULL AND day < $1"
                ),
                &[&cutoffs.gaps],
            )?;
            let not_gaps = s.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE question IS NOT NULL AND day < $1 AND NOT no_close_match \
                     AND not_helpful = 0"
                ),
                &[&today],
            )?;
            // One row each, by the primary key: no order to deadlock on.
            let suggestions = s.execute(
                "DELETE FROM suggestion WHERE decided_at IS NOT NULL AND decided_at < $1",
                &[&cutoffs.decided],
            )?;
            let voter_keys = s.execute(
                "DELETE FROM answer_vote \
                 WHERE answer_id IN (SELECT id FROM answer WHERE day < $1)",
                &[&open_since_for(today)],
            )?;
            Ok(Pruned {
                answers,
                questions: old_gaps + not_gaps,
                voter_keys,
                suggestions,
            })
        })
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        if let Some(secret) = self.read(select_secret)? {
            return Ok(secret);
        }
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        self.write(|s| {
            // Another process may have made one since the read: its secret stays (ON CONFLICT
            // waits for its commit, and the SELECT after it sees it).
            s.execute(
                "INSERT INTO secret (id, value) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&&fresh[..]],
            )?;
            select_secret(s)?.ok_or_else(|| Fault::BadRow {
                table: "secret",
                guild_id: 0,
                detail: "no secret after inserting one".into(),
            })
        })
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

/// An ISO week number as stored. Weeks above `i32::MAX` match no row (the column holds 1..=53)
/// and compare above every stored week, as they do in SQLite.
fn db_week(week: u32) -> i32 {
    i32::try_from(week).unwrap_or(i32::MAX)
}

fn select_secret(s: &mut Session<'_>) -> Result<Option<[u8; 32]>, Fault> {
    let Some(row) = s.query_opt("SELECT value FROM secret WHERE id = 1", &[])? else {
        return Ok(None);
    };
    let bytes: Vec<u8> = row.try_get(0)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| Fault::BadRow {
            table: "secret",
            guild_id: 0,
            detail: format!("the secret is {} bytes, not 32", bytes.len()),
        })
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

// ---- rows ----

macro_rules! weekly_columns {
    () => {
        "guild_id, channel_id, weekday, time, zone, enabled, active_since, failure_reason, \
         failed_at, updated_at"
    };
}

macro_rules! post_columns {
    () => {
        "guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, claimed_at, \
         attempts, retry_at, last_error, message_id, posted_at"
    };
}

const SELECT_WEEKLY: &str = concat!(
    "SELECT ",
    weekly_columns!(),
    " FROM weekly WHERE guild_id = $1"
);

const ACTIVE_WEEKLIES: &str = concat!(
    "SELECT ",
    weekly_columns!(),
    " FROM weekly WHERE enabled AND failure_reason IS NULL ORDER BY guild_id"
);

const UPSERT_WEEKLY: &str = concat!(
    "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
         failure_reason, failed_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, true, $6, NULL, NULL, $6) \
     ON CONFLICT (guild_id) DO UPDATE SET \
         channel_id = excluded.channel_id, weekday = excluded.weekday, \
         time = excluded.time, zone = excluded.zone, enabled = true, \
         active_since = excluded.active_since, failure_reason = NULL, failed_at = NULL, \
         updated_at = excluded.updated_at \
     RETURNING ",
    weekly_columns!()
);

const SELECT_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3"
);

const INSERT_CLAIM: &str = concat!(
    "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, \
         claimed_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
     ON CONFLICT (guild_id, iso_year, iso_week) DO NOTHING \
     RETURNING ",
    post_columns!()
);

const RECORD_ATTEMPT: &str = concat!(
    "UPDATE post_log SET attempts = attempts + $4, last_error = $5, retry_at = $6, \
         updated_at = $7 \
     WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 \
     RETURNING ",
    post_columns!()
);

const LAST_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE guild_id = $1 AND message_id IS NOT NULL \
      ORDER BY iso_year DESC, iso_week DESC LIMIT 1"
);

const UNCONFIRMED_POSTS: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE message_id IS NULL ORDER BY iso_year, iso_week, guild_id"
);

/// A `weekly` row as stored, before parsing.
struct WeeklyRow {
    guild_id: i64,
    channel_id: i64,
    weekday: String,
    time: String,
    zone: String,
    enabled: bool,
    active_since: DateTime<Utc>,
    failure_reason: Option<String>,
    failed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl WeeklyRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(WeeklyRow {
            guild_id: row.try_get(0)?,
            channel_id: row.try_get(1)?,
            weekday: row.try_get(2)?,
            time: row.try_get(3)?,
            zone: row.try_get(4)?,
            enabled: row.try_get(5)?,
            active_since: row.try_get(6)?,
            failure_reason: row.try_get(7)?,
            failed_at: row.try_get(8)?,
            updated_at: row.try_get(9)?,
        })
    }

    fn into_settings(self) -> Result<WeeklySettings, Fault> {
        const TABLE: &str = "weekly";
        let guild_id = from_db_id(self.guild_id);
        let schedule =
            WeeklySchedule::parse(&self.weekday, &self.time, &self.zone).map_err(|e| {
                Fault::BadRow {
                    table: TABLE,
                    guild_id,
                    detail: format!(
                        "the stored schedule {} {} {} no longer parses ({e}); run /weekly set \
                         again to replace it",
                        self.weekday, self.time, self.zone
                    ),
                }
            })?;
        let failure = match (self.failure_reason, self.failed_at) {
            (None, None) => None,
            (Some(reason), Some(at)) => Some(Failure { reason, at }),
            _ => {
                return Err(Fault::BadRow {
                    table: TABLE,
                    guild_id,
                    detail: "failure_reason and failed_at must be set together".into(),
                })
            }
        };
        Ok(WeeklySettings {
            guild_id,
            channel_id: from_db_id(self.channel_id),
            schedule,
            enabled: self.enabled,
            active_since: self.active_since,
            failure,
            updated_at: self.updated_at,
        })
    }
}

/// A `post_log` row as stored, before parsing.
struct PostRow {
    guild_id: i64,
    iso_year: i32,
    iso_week: i32,
    channel_id: i64,
    insight_id: String,
    nonce: String,
    source: String,
    claimed_at: DateTime<Utc>,
    attempts: i32,
    retry_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    message_id: Option<i64>,
    posted_at: Option<DateTime<Utc>>,
}

impl PostRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(PostRow {
            guild_id: row.try_get(0)?,
            iso_year: row.try_get(1)?,
            iso_week: row.try_get(2)?,
            channel_id: row.try_get(3)?,
            insight_id: row.try_get(4)?,
            nonce: row.try_get(5)?,
            source: row.try_get(6)?,
            claimed_at: row.try_get(7)?,
            attempts: row.try_get(8)?,
            retry_at: row.try_get(9)?,
            last_error: row.try_get(10)?,
            message_id: row.try_get(11)?,
            posted_at: row.try_get(12)?,
        })
    }

    fn into_record(self) -> Result<PostRecord, Fault> {
        const TABLE: &str = "post_log";
        let guild_id = from_db_id(self.guild_id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail,
        };
        let week = u32::try_from(self.iso_week)
            .map(|week| WeekKey {
                year: self.iso_year,
                week,
            })
            .map_err(|_| {
                bad(format!(
                    "week {}-W{} is out of range",
                    self.iso_year, self.iso_week
                ))
            })?;
        let source = PostSource::parse(&self.source)
            .ok_or_else(|| bad(format!("unknown source {:?}", self.source)))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts {} is out of range", self.attempts)))?;
        Ok(PostRecord {
            guild_id,
            week,
            channel_id: from_db_id(self.channel_id),
            insight_id: self.insight_id,
            nonce: self.nonce,
            source,
            claimed_at: self.claimed_at,
            attempts,
            retry_at: self.retry_at,
            last_error: self.last_error,
            message_id: self.message_id.map(from_db_id),
            posted_at: self.posted_at,
        })
    }
}

fn select_post(
    s: &mut Session<'_>,
    guild_id: u64,
    week: WeekKey,
) -> Result<Option<PostRecord>, Fault> {
    s.query_opt(
        SELECT_POST,
        &[&db_id(guild_id), &week.year, &db_week(week.week)],
    )?
    .map(|row| PostRow::read(&row)?.into_record())
    .transpose()
}

fn select_rotation(s: &mut Session<'_>, guild_id: u64) -> Result<RotationState, Fault> {
    let json: Option<String> = match s.query_opt(
        "SELECT state::text FROM rotation WHERE guild_id = $1",
        &[&db_id(guild_id)],
    )? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
    match json {
        None => Ok(RotationState::default()),
        Some(json) => serde_json::from_str(&json).map_err(|e| Fault::BadRow {
            table: "rotation",
            guild_id,
            detail: format!("the stored rotation state is not valid ({e})"),
        }),
    }
}

fn save_rotation(
    s: &mut Session<'_>,
    guild_id: u64,
    state: &RotationState,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let json = serde_json::to_string(state).map_err(|e| Fault::BadRow {
        table: "rotation",
        guild_id,
        detail: format!("the rotation state cannot be written as JSON ({e})"),
    })?;
    s.execute(
        "INSERT INTO rotation (guild_id, state, updated_at) VALUES ($1, $2::text::jsonb, $3) \
         ON CONFLICT (guild_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        &[&db_id(guild_id), &json, &db_time(now)],
    )?;
    Ok(())
}

fn count_server_insights(s: &mut Session<'_>, guild_id: u64) -> Result<usize, Fault> {
    count(
        s,
        "SELECT count(*) FROM server_insight WHERE guild_id = $1",
        &[&db_id(guild_id)],
    )
}

/// Inserts or replaces `insights` as `guild_id`'s, inside the caller's transaction, which holds
/// the server's lock; fails (and the transaction rolls back) when the server would own more than
/// `limit`.
fn save_server_insights(
    s: &mut Session<'_>,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, Fault> {
    let before = count_server_insights(s, guild_id)?;
    for saved in insights {
        let insight = &saved.insight;
        s.execute(
            UPSERT_SERVER_INSIGHT,
            &[
                &db_id(guild_id),
                &insight.id,
                &insight.title,
                &insight.text,
                &list_json(&insight.topics),
                &list_json(&insight.asks),
                &insight.source.title,
                &insight.source.publisher,
                &insight.source.url,
                &db_id(saved.created_by),
                &db_time(saved.created_at),
                &db_time(saved.updated_at),
                &saved.vectors.as_ref().map(|v| v.bytes.as_slice()),
                &saved.vectors.as_ref().map(|v| db_id(v.fingerprint)),
            ],
        )?;
    }
    let after = count_server_insights(s, guild_id)?;
    if after > limit {
        return Err(Fault::Limit {
            what: Limit::ServerInsights,
            limit,
        });
    }
    // Nothing is deleted here, so the growth is what was added; every other write replaced.
    let added = after.saturating_sub(before);
    Ok(SaveOutcome {
        added,
        replaced: insights.len().saturating_sub(added),
    })
}

macro_rules! server_insight_columns {
    () => {
        "guild_id, insight_id, title, text, topics::text, asks::text, source_title, \
         source_publisher, source_url, created_by, created_at, updated_at, vectors, vectors_model"
    };
}

macro_rules! suggestion_columns {
    () => {
        "id, guild_id, author_id, title, text, why, status, reason, created_at, decided_at, \
         decided_by, insight_id, review_channel_id, review_message_id"
    };
}

const SERVER_INSIGHTS: &str = concat!(
    "SELECT ",
    server_insight_columns!(),
    " FROM server_insight WHERE guild_id = $1 ORDER BY insight_id"
);

const ALL_SERVER_INSIGHTS: &str = concat!(
    "SELECT ",
    server_insight_columns!(),
    " FROM server_insight ORDER BY guild_id, insight_id"
);

const UPSERT_SERVER_INSIGHT: &str = "INSERT INTO server_insight (guild_id, insight_id, title, \
         text, topics, asks, source_title, source_publisher, source_url, created_by, created_at, \
         updated_at, vectors, vectors_model) \
     VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13, \
         $14) \
     ON CONFLICT (guild_id, insight_id) DO UPDATE SET \
         title = excluded.title, text = excluded.text, topics = excluded.topics, \
         asks = excluded.asks, source_title = excluded.source_title, \
         source_publisher = excluded.source_publisher, source_url = excluded.source_url, \
         updated_at = excluded.updated_at, vectors = excluded.vectors, \
         vectors_model = excluded.vectors_model";

const PENDING_SUGGESTION_COUNT: &str =
    "SELECT count(*) FROM suggestion WHERE guild_id = $1 AND status = 'pending'";

const INSERT_SUGGESTION: &str = concat!(
    "INSERT INTO suggestion (guild_id, author_id, title, text, why, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
     RETURNING ",
    suggestion_columns!()
);

const SELECT_SUGGESTION: &str = concat!(
    "SELECT ",
    suggestion_columns!(),
    " FROM suggestion WHERE guild_id = $1 AND id = $2"
);

const OLDEST_PENDING_SUGGESTION: &str = concat!(
    "SELECT ",
    suggestion_columns!(),
    " FROM suggestion WHERE guild_id = $1 AND status = 'pending' \
      ORDER BY created_at, id LIMIT 1"
);

const DECIDE_SUGGESTION: &str = concat!(
    "UPDATE suggestion SET status = $3, reason = $4, insight_id = $5, decided_at = $6, \
         decided_by = $7 \
     WHERE guild_id = $1 AND id = $2 AND status = 'pending' \
     RETURNING ",
    suggestion_columns!()
);

/// A `server_insight` row as stored, before parsing.
struct ServerInsightRow {
    guild_id: i64,
    insight_id: String,
    title: String,
    text: String,
    topics: String,
    asks: String,
    source_title: String,
    source_publisher: String,
    source_url: Option<String>,
    created_by: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    vectors: Option<Vec<u8>>,
    vectors_model: Option<i64>,
}

impl ServerInsightRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(ServerInsightRow {
            guild_id: row.try_get(0)?,
            insight_id: row.try_get(1)?,
            title: row.try_get(2)?,
            text: row.try_get(3)?,
            topics: row.try_get(4)?,
            asks: row.try_get(5)?,
            source_title: row.try_get(6)?,
            source_publisher: row.try_get(7)?,
            source_url: row.try_get(8)?,
            created_by: row.try_get(9)?,
            created_at: row.try_get(10)?,
            updated_at: row.try_get(11)?,
            vectors: row.try_get(12)?,
            vectors_model: row.try_get(13)?,
        })
    }

    fn into_insight(self) -> Result<ServerInsight, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let id = self.insight_id;
        let bad = |detail: String| Fault::BadRow {
            table: "server_insight",
            guild_id,
            detail: format!("insight {id:?}: {detail}"),
        };
        let topics = parse_list("topics", &self.topics).map_err(bad)?;
        let asks = parse_list("asks", &self.asks).map_err(bad)?;
        let vectors = match (self.vectors, self.vectors_model) {
            (None, None) => None,
            (Some(bytes), Some(model)) => Some(StoredVectors {
                fingerprint: from_db_id(model),
                bytes,
            }),
            _ => return Err(bad("vectors and vectors_model must be set together".into())),
        };
        Ok(ServerInsight {
            guild_id,
            insight: Insight {
                id,
                title: self.title,
                text: self.text,
                topics,
                asks,
                source: Source {
                    title: self.source_title,
                    publisher: self.source_publisher,
                    url: self.source_url,
                },
            },
            created_by: from_db_id(self.created_by),
            created_at: self.created_at,
            updated_at: self.updated_at,
            vectors,
        })
    }
}

/// A `suggestion` row as stored, before parsing.
struct SuggestionRow {
    id: i64,
    guild_id: i64,
    author_id: i64,
    title: String,
    text: String,
    why: Option<String>,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<i64>,
    insight_id: Option<String>,
    review_channel_id: Option<i64>,
    review_message_id: Option<i64>,
}

impl SuggestionRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(SuggestionRow {
            id: row.try_get(0)?,
            guild_id: row.try_get(1)?,
            author_id: row.try_get(2)?,
            title: row.try_get(3)?,
            text: row.try_get(4)?,
            why: row.try_get(5)?,
            status: row.try_get(6)?,
            reason: row.try_get(7)?,
            created_at: row.try_get(8)?,
            decided_at: row.try_get(9)?,
            decided_by: row.try_get(10)?,
            insight_id: row.try_get(11)?,
            review_channel_id: row.try_get(12)?,
            review_message_id: row.try_get(13)?,
        })
    }

    fn into_suggestion(self) -> Result<Suggestion, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let id = from_db_id(self.id);
        let bad = |detail: String| Fault::BadRow {
            table: "suggestion",
            guild_id,
            detail: format!("suggestion {id}: {detail}"),
        };
        let status = SuggestionStatus::parse(&self.status)
            .ok_or_else(|| bad(format!("unknown status {:?}", self.status)))?;
        let review_message = match (self.review_channel_id, self.review_message_id) {
            (None, None) => None,
            (Some(channel), Some(message)) => Some(ReviewMessage {
                channel_id: from_db_id(channel),
                message_id: from_db_id(message),
            }),
            _ => {
                return Err(bad(
                    "review_channel_id and review_message_id must be set together".into(),
                ))
            }
        };
        Ok(Suggestion {
            id,
            guild_id,
            author_id: from_db_id(self.author_id),
            title: self.title,
            text: self.text,
            why: self.why,
            status,
            reason: self.reason,
            created_at: self.created_at,
            decided_at: self.decided_at,
            decided_by: self.decided_by.map(from_db_id),
            insight_id: self.insight_id,
            review_message,
        })
    }
}

/// The first day whose answers still take votes on `today`.
fn open_since_for(today: NaiveDate) -> NaiveDate {
    today - chrono::Duration::days(VOTE_WINDOW_DAYS)
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
