//! The store's conformance suite (tests/support/conformance.rs) on the SQLite backend: a fresh
//! file in a temporary directory per test. The SQLite-only behaviour (the file header, damage,
//! WAL, another program's file) is tested next to the backend, in src/store/sqlite/mod.rs.

#[path = "support/conformance.rs"]
mod conformance;

use std::path::PathBuf;

use insight_bot::store::SqliteBackend;
use rusqlite::types::ValueRef;
use tempfile::TempDir;

struct SqliteHarness {
    _dir: TempDir,
    path: PathBuf,
}

impl SqliteHarness {
    fn new() -> SqliteHarness {
        let dir = tempfile::tempdir().unwrap();
        // In a directory that does not exist yet: the backend creates it.
        let path = dir.path().join("state").join("insight-bot.db");
        SqliteHarness { _dir: dir, path }
    }

    fn connection(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn
    }
}

impl conformance::Harness for SqliteHarness {
    type Backend = SqliteBackend;

    fn try_open(&self) -> Result<SqliteBackend, String> {
        SqliteBackend::open(&self.path).map_err(|e| e.to_string())
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        self.connection()
            .execute_batch(sql)
            .map_err(|e| e.to_string())
    }

    fn query_row(&self, sql: &str) -> Vec<String> {
        self.connection()
            .query_row(sql, [], |row| {
                (0..row.as_ref().column_count())
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Null => "NULL".to_string(),
                            ValueRef::Integer(n) => n.to_string(),
                            ValueRef::Real(x) => x.to_string(),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                    })
                    .collect()
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn insert_weeklies(&self, count: u64) {
        self.exec(&format!(
            "WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {count}) \
             INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, \
                 active_since, failure_reason, failed_at, updated_at) \
             SELECT g, g, 'mon', '09:00', 'Europe/London', 1, '2026-03-03T10:00:00.000Z', \
                 NULL, NULL, '2026-03-03T10:00:00.000Z' FROM n"
        ))
        .unwrap();
    }

    fn create_version_1(&self) {
        // As insight-bot 1 did: WAL, then its one migration in a transaction with the version.
        std::fs::create_dir_all(self.path.parent().unwrap()).unwrap();
        let mut conn = self.connection();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let tx = conn.transaction().unwrap();
        tx.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
    }

    fn create_version_2(&self) {
        // As insight-bot 2 did: WAL, then each migration in a transaction with its version.
        self.create_version_1();
        let mut conn = self.connection();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(include_str!("../migrations/0002_server_insights.sql"))
            .unwrap();
        tx.pragma_update(None, "user_version", 2).unwrap();
        tx.commit().unwrap();
    }

    fn create_version_3(&self) {
        self.create_version_2();
        let mut conn = self.connection();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(include_str!("../migrations/0003_usage.sql"))
            .unwrap();
        tx.pragma_update(None, "user_version", 3).unwrap();
        tx.commit().unwrap();
    }

    fn create_version_4(&self) {
        self.create_version_3();
        let mut conn = self.connection();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(include_str!("../migrations/0004_gap_vectors.sql"))
            .unwrap();
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.commit().unwrap();
    }

    fn schema_version(&self) -> i64 {
        self.connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }
}

conformance::conformance_suite!(SqliteHarness::new());
