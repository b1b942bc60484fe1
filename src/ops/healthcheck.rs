//! `insight-bot healthcheck`: asks `/readyz` of the endpoint at `METRICS_ADDR` and says whether
//! the bot is ready, for a container's HEALTHCHECK (slim images have no curl).
//!
//! Plain blocking std networking: the command runs, asks once and exits, so it needs no runtime.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the whole check may take (connecting, then reading), inside the HEALTHCHECK's own
/// timeout; `/readyz` itself waits at most [`super::STORE_CHECK_TIMEOUT`] for the store.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the answer read: a status line and a one-line reason.
const MAX_ANSWER: u64 = 16 * 1024;

/// `Ok(body)` when `/readyz` answers 200; otherwise why not, one line.
pub fn check(addr: SocketAddr) -> Result<String, String> {
    // An endpoint listening on every interface is asked on this machine's loopback.
    let target = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let failed = |what: &str, e: std::io::Error| format!("METRICS_ADDR {target}: {what}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| failed("cannot connect", e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| failed("cannot set a timeout", e))?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| failed("cannot send the request", e))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| failed("no answer", e))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("METRICS_ADDR {target}: not an HTTP answer"))?;
    let body = body.trim().to_string();
    match status {
        200 => Ok(body),
        _ => Err(format!("/readyz answered {status}: {body}")),
    }
}
