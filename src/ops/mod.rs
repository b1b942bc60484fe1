//! What operators see of a running bot: the endpoint `METRICS_ADDR` turns on (off by default),
//! serving `GET /healthz` (liveness), `GET /readyz` (readiness) and `GET /metrics` (Prometheus
//! text format 0.0.4), and the metrics themselves.
//!
//! - [`metrics`]: the process's registry and its rendering; the names are a contract.
//! - [`http`]: the minimal HTTP/1.1 responder the endpoint runs on.
//! - [`interaction`]: each interaction's outcome and acknowledgement time, noted where the bot
//!   decides them and counted once per interaction.
//! - [`healthcheck`]: `insight-bot healthcheck`, the client a container's HEALTHCHECK runs.
//!
//! Readiness reflects the Discord connection, not a process or database ping alone: ready means
//! every gateway shard of this process is connected and READY, and the store answers a trivial
//! query. The endpoint is bound before the bot connects (so `/readyz` says 503 while it starts)
//! and learns about the client through a [`Probe`] once there is one; this module knows nothing
//! of Discord.

pub mod healthcheck;
pub mod http;
pub mod interaction;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use metrics::{metrics, Live, ShardStatus};

use crate::store::Store;
use http::Response;

/// How long `/readyz` waits for the store's trivial query before saying it does not answer.
pub const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoint asks the running bot.
pub trait Probe: Send + Sync + 'static {
    /// Whether the bot's loops (the gateway client and the weekly poster) still run.
    fn loops_running(&self) -> bool;
    /// This process's shards (those expected but not started yet included, as not connected),
    /// the servers they serve and the servers' own insights loaded.
    fn snapshot(&self) -> Pin<Box<dyn Future<Output = Snapshot> + Send + '_>>;
}

/// What a [`Probe`] reports.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub shards: Vec<ShardStatus>,
    pub servers: u64,
    pub server_insights: u64,
}

/// The running endpoint: stop it with [`Endpoint::stop`] (or by dropping the runtime).
pub struct Endpoint {
    addr: SocketAddr,
    probe: Arc<OnceLock<Arc<dyn Probe>>>,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Listens on `addr` (`METRICS_ADDR`) and serves at once; the error names the variable.
    pub async fn bind(addr: SocketAddr, store: Store) -> Result<Endpoint, String> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("METRICS_ADDR: cannot listen on {addr}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("METRICS_ADDR: {e}"))?;
        let probe: Arc<OnceLock<Arc<dyn Probe>>> = Arc::default();
        let state = Arc::new(State {
            probe: Arc::clone(&probe),
            store,
        });
        let task = tokio::spawn(http::serve(listener, move |path| {
            let state = Arc::clone(&state);
            async move { state.route(&path).await }
        }));
        tracing::info!(%addr, "operators' endpoint listening (/healthz, /readyz, /metrics)");
        Ok(Endpoint { addr, probe, task })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hands the endpoint the running bot; before this, `/readyz` answers "starting".
    pub fn attach(&self, probe: Arc<dyn Probe>) {
        let _ = self.probe.set(probe);
    }
}

impl Drop for Endpoint {
    /// The endpoint stops with the bot that owns it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    probe: Arc<OnceLock<Arc<dyn Probe>>>,
    store: Store,
}

impl State {
    async fn route(&self, path: &str) -> Response {
        match path {
            "/healthz" => self.healthz(),
            "/readyz" => match self.readiness().await {
                Ok(summary) => Response::text(200, format!("ready: {summary}\n")),
                Err(reason) => Response::text(503, format!("not ready: {reason}\n")),
            },
            "/metrics" => Response {
                status: 200,
                content_type: METRICS_CONTENT_TYPE,
                body: self.metrics().await,
            },
            _ => Response::text(404, "not found: try /healthz, /readyz or /metrics\n"),
        }
    }

    fn healthz(&self) -> Response {
        match self.probe.get() {
            Some(probe) if !probe.loops_running() => {
                Response::text(503, "not alive: the bot's loops have stopped\n")
            }
            Some(_) => Response::text(200, "alive\n"),
            None => Response::text(200, "alive (starting)\n"),
        }
    }

    /// `Ok(summary)` when ready, else the one-line reason.
    async fn readiness(&self) -> Result<String, String> {
        let probe = self
            .probe
            .get()
            .ok_or("starting: the Discord client is not running yet")?;
        if !probe.loops_running() {
            return Err("the bot's loops have stopped".into());
        }
        let snapshot = probe.snapshot().await;
        if snapshot.shards.is_empty() {
            return Err("no gateway shard has started yet".into());
        }
        let down: Vec<String> = snapshot
            .shards
            .iter()
            .filter(|s| !s.connected)
            .map(|s| format!("shard {} is {}", s.id, s.stage))
            .collect();
        if !down.is_empty() {
            return Err(down.join(", "));
        }
        let ping = self.store.call(|db| db.ping());
        match tokio::time::timeout(STORE_CHECK_TIMEOUT, ping).await {
            Err(_) => Err(format!(
                "the store did not answer within {} s",
                STORE_CHECK_TIMEOUT.as_secs()
            )),
            // One line (the store's errors may span several), and never a password.
            Ok(Err(e)) => Err(crate::redact::redact_urls_in(&format!(
                "the store does not answer: {e}"
            ))
            .replace('\n', " ")),
            Ok(Ok(())) => Ok(format!(
                "{} shard(s) connected, the store answers",
                snapshot.shards.len()
            )),
        }
    }

    async fn metrics(&self) -> String {
        let snapshot = match self.probe.get() {
            Some(probe) => probe.snapshot().await,
            None => Snapshot::default(),
        };
        metrics().render(&Live {
            version: env!("CARGO_PKG_VERSION"),
            shards: snapshot.shards,
            servers: snapshot.servers,
            server_insights: snapshot.server_insights,
        })
    }
}
