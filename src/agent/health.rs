//! The agent's HTTP endpoint for probes and metrics: `/healthz`, `/readyz` (503 until the
//! first complete sync is done and the node's agent-not-ready taint is gone) and `/metrics`. Small enough that a web framework would outweigh it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::telemetry::Metrics;

/// Serves probes and metrics on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                warn!(%err, "health endpoint accept failed");
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(err) = answer(stream, &metrics).await {
                debug!(%peer, %err, "health request failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let request = String::from_utf8_lossy(&buf[..n]);
    let (status, content_type, body) = respond(request.lines().next().unwrap_or(""), metrics);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Status line, content type and body for a request line such as `GET /readyz HTTP/1.1`.
fn respond(request_line: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    match path {
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" if metrics.ready() => ("200 OK", "text/plain", "synced\n".into()),
        "/readyz" if metrics.synced() => (
            "503 Service Unavailable",
            "text/plain",
            "synced; removing the node's agent-not-ready taint\n".into(),
        ),
        "/readyz" => (
            "503 Service Unavailable",
            "text/plain",
            "first sync not complete\n".into(),
        ),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_first_sync() {
        let m = Metrics::default();
        assert_eq!(
            respond("GET /readyz HTTP/1.1", &m).0,
            "503 Service Unavailable"
        );
        m.set_synced();
        assert_eq!(
            respond("GET /readyz HTTP/1.1", &m).0,
            "503 Service Unavailable",
            "the taint is still on the node"
        );
        m.set_untainted();
        assert_eq!(respond("GET /readyz HTTP/1.1", &m).0, "200 OK");
        assert_eq!(respond("GET /healthz HTTP/1.1", &m).0, "200 OK");
        assert_eq!(respond("GET /nope HTTP/1.1", &m).0, "404 Not Found");
        assert!(
            respond("GET /metrics HTTP/1.1", &m)
                .2
                .contains("seccompd_synced 1")
        );
    }
}
