//! A throwaway PostgreSQL server for the store's tests and benchmark, started from the installed
//! server binaries (`initdb`, `pg_ctl`; Debian: `apt-get install postgresql`).
//!
//! One server per test binary, started on first use and shared; each test gets a fresh database
//! of its own ([`fresh_database`]), so tests run in parallel without seeing each other's rows.
//! The server listens on a Unix socket in its own temporary directory only (no TCP port, so
//! parallel test binaries and a PostgreSQL already running on the machine never collide) and
//! runs with `fsync=off`: nothing of it is meant to survive the run.
//!
//! Never left behind: the server is stopped (`pg_ctl stop -m immediate`) and its directory
//! removed when the test binary exits, whether its tests passed or panicked (an `atexit` hook;
//! libtest ends the process with `exit`). Should the binary be killed instead (a timeout,
//! Ctrl-C), a small watchdog process, started in its own process group so that Ctrl-C does not
//! reach it, sees the binary gone and does the same.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and `pg_ctl` run as the
//! `postgres` system user (`runuser -u postgres --`), which owns the temporary directory.
//!
//! Missing binaries fail the test with how to install them; nothing is skipped.
//!
//! Included with `#[path]` by `tests/store_postgres.rs` and `benches/store.rs`.

// Each includer uses part of it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The role the server is created with (superuser, trusted on the socket).
pub const SUPERUSER: &str = "postgres";

/// A second role that must log in with [`PASSWORD`] (scram-sha-256), for the tests that check a
/// password is never shown.
pub const PASSWORD_USER: &str = "insight_pw";

/// [`PASSWORD_USER`]'s password: distinctive, so a test can look for it in any text.
pub const PASSWORD: &str = "Tr0ub4dor-and-3-horses";

/// The socket's port number: only names the socket file, as nothing listens on TCP.
const PORT: u16 = 5432;

/// How to get the binaries, for the failure message.
const INSTALL_HINT: &str = "install PostgreSQL's server (Debian/Ubuntu: apt-get install -y \
     postgresql; the tests look in /usr/lib/postgresql/*/bin and on PATH), then run again";

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// The shared server, started on first call. Panics (failing the test) with the reason and what
/// to do when it cannot start, binaries missing included.
pub fn server() -> &'static Server {
    match SERVER.get_or_init(Server::start) {
        Ok(server) => server,
        Err(reason) => panic!("cannot start a throwaway PostgreSQL server: {reason}"),
    }
}

/// A new, empty database on the shared server.
pub fn fresh_database() -> TestDb {
    server().create_database()
}

/// A running throwaway server.
pub struct Server {
    /// The temporary directory: `data/` (the cluster), the socket, `server.log`.
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    /// Run the binaries as the `postgres` user (this process is root).
    as_postgres: bool,
    watchdog: Mutex<Option<Child>>,
    databases: AtomicUsize,
}

/// One test's database.
pub struct TestDb {
    pub name: String,
    /// `postgresql://postgres@%2Ftmp%2F…:5432/name`: the Unix socket, the superuser.
    pub url: String,
}

impl TestDb {
    /// This database's URL for another role.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        server().url_as(user, password, &self.name)
    }

    /// Runs `sql` (any number of statements) as the superuser, outside the store.
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        server().execute(&self.name, sql)
    }

    /// The rows of `sql`, every column as text (`None` for NULL).
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        server().query(&self.name, sql)
    }
}

impl Server {
    fn start() -> Result<Server, String> {
        let bin = find_binaries()?;
        let as_postgres = running_as_root();
        let root = std::env::temp_dir().join(format!(
            "insight-bot-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        ));
        fs::create_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let server = Server {
            data: root.join("data"),
            root,
            bin,
            as_postgres,
            watchdog: Mutex::new(None),
            databases: AtomicUsize::new(0),
        };
        // From here on a failure still removes the directory (and stops a started server).
        match server.init_and_start() {
            Ok(()) => Ok(server),
            Err(e) => {
                server.stop();
                Err(e)
            }
        }
    }

    fn init_and_start(&self) -> Result<(), String> {
        if self.as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&self.root))?;
        }
        run(self
            .pg("initdb")
            .arg("-D")
            .arg(&self.data)
            .args(["--auth=trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8"])
            .arg("--locale=C"))?;
        // The first matching line wins: the password role must really give its password.
        let hba = self.data.join("pg_hba.conf");
        let trusted = fs::read_to_string(&hba).map_err(|e| format!("{}: {e}", hba.display()))?;
        fs::write(
            &hba,
            format!("local all {PASSWORD_USER} scram-sha-256\n{trusted}"),
        )
        .map_err(|e| format!("{}: {e}", hba.display()))?;

        // Registered before starting, so that even a start that times out half-way is cleaned.
        register_exit_hook();
        self.spawn_watchdog()?;
        let options = format!(
            "-k {} -c listen_addresses='' -p {PORT} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.root.display()
        );
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
        .map_err(|e| format!("{e}\nserver log:\n{}", self.log()))?;
        self.execute(
            "postgres",
            &format!("CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'"),
        )
    }

    /// A command for one of the server binaries, as the `postgres` user when we are root.
    fn pg(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    fn stop_command(&self) -> Command {
        let mut command = self.pg("pg_ctl");
        command
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w"]);
        command
    }

    /// Stops the server (if it runs) and removes its directory. Never panics: it runs at exit.
    fn stop(&self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self
                .stop_command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut watchdog) = self.watchdog.lock().ok().and_then(|mut w| w.take()) {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }

    /// Starts the process that stops the server if this process dies without running its exit
    /// hook. Its own process group: a Ctrl-C to the test run must not stop it first.
    fn spawn_watchdog(&self) -> Result<(), String> {
        let stop = self.stop_command();
        let mut argv = vec![stop.get_program().to_owned()];
        argv.extend(stop.get_args().map(ToOwned::to_owned));
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                r#"pid=$1; root=$2; shift 2
                   while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
                   "$@"; rm -rf "$root""#,
            )
            .arg("insight-bot-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.root)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the watchdog (sh): {e}"))?;
        *self.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// The socket directory, percent-encoded for a URL's host.
    fn host(&self) -> String {
        self.root.display().to_string().replace('/', "%2F")
    }

    fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgresql://{user}:{password}@{}:{PORT}/{database}",
            self.host()
        )
    }

    fn url(&self, database: &str) -> String {
        format!("postgresql://{SUPERUSER}@{}:{PORT}/{database}", self.host())
    }

    fn create_database(&self) -> TestDb {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        self.execute("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb {
            url: self.url(&name),
            name,
        }
    }

    /// Runs `sql` on `database` as the superuser, on a connection of its own (not from async
    /// code: it blocks on a small runtime of its own).
    pub fn execute(&self, database: &str, sql: &str) -> Result<(), String> {
        self.with_client(
            database,
            |client| async move { client.batch_execute(sql).await },
        )
    }

    /// The rows of `sql` on `database`, every column as text.
    pub fn query(&self, database: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        self.with_client(database, |client| async move {
            let messages = client.simple_query(sql).await?;
            Ok(messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }

    /// Connects to `database` as the superuser and runs `f`, which owns the client (dropping it
    /// closes the connection).
    fn with_client<T, F>(
        &self,
        database: &str,
        f: impl FnOnce(tokio_postgres::Client) -> F,
    ) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let url = self.url(database);
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| describe(&e))?;
            let driver = tokio::spawn(connection);
            let result = f(client).await.map_err(|e| describe(&e));
            let _ = driver.await;
            result
        })
    }
}

/// An error and its causes, on one line.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Runs `command`, failing with its output if it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{:?} {:?} failed ({}):\n{}{}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The directory holding `initdb` and `pg_ctl`: the newest /usr/lib/postgresql/N/bin (Debian),
/// else PATH.
fn find_binaries() -> Result<PathBuf, String> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Ok(dir);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| has_both(dir))
        .ok_or_else(|| {
            format!("initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin or on PATH: {INSTALL_HINT}")
        })
}

fn running_as_root() -> bool {
    match Command::new("id").arg("-u").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim() == "0",
        _ => std::env::var("USER").is_ok_and(|user| user == "root"),
    }
}

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(server)) = SERVER.get() {
        server.stop();
    }
}

fn register_exit_hook() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: `stop_at_exit` is a plain function that never unwinds (it ignores every error).
        unsafe {
            atexit(stop_at_exit);
        }
    });
}
