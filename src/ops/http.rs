//! A minimal HTTP/1.1 responder for the operators' endpoint: one `GET` per connection, then
//! `Connection: close`.
//!
//! Hand-written on tokio's `TcpListener` rather than a web framework (axum and hyper would add
//! their trees to every build for three fixed routes). What a scraper or a probe sends is small,
//! so the request head is bounded ([`MAX_REQUEST_HEAD`]), must arrive within [`READ_TIMEOUT`],
//! and only [`MAX_CONNECTIONS`] are served at once: a slow or hostile client cannot hold the
//! endpoint or grow memory.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The most bytes of a request head (request line and headers) read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 16;

/// What the endpoint answers.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Serves `listener` until the task is dropped: each request's path goes to `route`.
pub async fn serve<F, Fut>(listener: TcpListener, route: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let route = Arc::new(route);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!("METRICS_ADDR: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let route = Arc::clone(&route);
        tokio::spawn(async move {
            let _slot = slot;
            answer(stream, |path| route(path)).await;
        });
    }
}

async fn answer<F, Fut>(mut stream: TcpStream, route: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Response>,
{
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Response::text(408, "the request head did not arrive in time\n"),
        Ok(Err(refusal)) => refusal,
        Ok(Ok(path)) => route(path).await,
    };
    let _ = stream.write_all(&encode(&response)).await;
    let _ = stream.shutdown().await;
}

/// Reads the head and returns the path of a `GET` (or `HEAD`: answered as a `GET`, which no
/// probe minds); anything else is the response to send instead.
async fn read_head(stream: &mut TcpStream) -> Result<String, Response> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST_HEAD {
            return Err(Response::text(
                431,
                format!("the request head is over {MAX_REQUEST_HEAD} bytes\n"),
            ));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| Response::text(400, "unreadable request\n"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    parse_request_line(&head)
}

fn parse_request_line(head: &[u8]) -> Result<String, Response> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| Response::text(400, "the request line is not UTF-8\n"))?
        .trim_end();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::text(400, "not an HTTP request\n"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::text(505, "HTTP/1.x only\n"));
    }
    if method != "GET" && method != "HEAD" {
        return Err(Response::text(405, "only GET is served\n"));
    }
    // A query string changes nothing here.
    let path = target.split('?').next().unwrap_or_default();
    Ok(path.to_string())
}

fn encode(response: &Response) -> Vec<u8> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if response.status == 405 {
        out.push_str("Allow: GET\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(response.body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(head: &str) -> Result<String, u16> {
        parse_request_line(head.as_bytes()).map_err(|r| r.status)
    }

    #[test]
    fn the_request_line_gives_the_path_of_a_get() {
        assert_eq!(
            status_of("GET /readyz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok("/readyz".into())
        );
        assert_eq!(
            status_of("HEAD /healthz HTTP/1.0\n\n"),
            Ok("/healthz".into())
        );
        assert_eq!(status_of("POST /metrics HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(status_of("GET /metrics SPDY/3\r\n\r\n"), Err(505));
        assert_eq!(status_of("hello\r\n\r\n"), Err(400));
    }

    #[tokio::test]
    async fn a_head_over_the_limit_is_refused_and_the_connection_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, |_| async { Response::text(200, "ok") }));
        let mut client = TcpStream::connect(addr).await.unwrap();
        // Exactly the limit and no end of head: all of it is read before the refusal, so the
        // server closes with nothing unread (which would reset the connection instead).
        let mut long = String::from("GET / HTTP/1.1\r\nX: ");
        long.push_str(&"a".repeat(MAX_REQUEST_HEAD - long.len()));
        client.write_all(long.as_bytes()).await.unwrap();
        let mut reply = String::new();
        let _ = client.read_to_string(&mut reply).await;
        assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
        assert!(reply.contains("Connection: close"), "{reply}");
        server.abort();
    }
}
