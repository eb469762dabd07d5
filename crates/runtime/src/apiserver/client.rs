//! The daemons' API client: kube's, over connections that notice a dead link.
//!
//! A watch is one long-lived connection on which the node only ever receives. When the link to
//! the API server dies without a reset (a partition, a cable, a firewall that drops), nothing
//! tells the node: kube's client sets no TCP keepalive, and a watch's own idle timeout is the
//! server's watch timeout (about five minutes). After the link returns the stream resumes only
//! when the server's next retransmission gets through, and TCP doubles that pause each time, so
//! after a two-minute partition a node stayed behind the API for about another minute and a
//! half. With keepalive probes the kernel drops such a connection within
//! [`KEEPALIVE_IDLE`] + [`KEEPALIVE_PROBES`] x [`KEEPALIVE_INTERVAL`] of silence; the watch
//! then reconnects under its usual backoff, and gets through as soon as the link is back.
//! client-go's dialer does the same (30 s keepalive).

use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::{ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::{BoxError, ServiceBuilder};

/// Silence on a connection after which the kernel starts probing the peer.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// Pause between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes after which the connection counts as dead.
pub const KEEPALIVE_PROBES: u32 = 3;

/// A client configured as `kube::Client::try_default` does (in-cluster or kubeconfig), whose
/// connections carry TCP keepalive.
pub async fn client() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    client_for(config)
}

/// A client for `config` whose connections carry TCP keepalive; otherwise kube's stack: the
/// base URL, TLS, authentication (a rotated token is read again), extra headers, and the
/// connect, read and write timeouts of `config`.
pub fn client_for(config: Config) -> Result<Client, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client = HttpClient::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// The timer of this machine's TCP socket whose local port is `port`, from /proc/net/tcp:
    /// which timer runs (2: keepalive) and when it fires, in seconds.
    fn timer_of_local_port(port: u16) -> Option<(u32, f64)> {
        let table = fs::read_to_string("/proc/net/tcp").ok()?;
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            if local_port != port {
                return None;
            }
            let (which, when) = fields.get(5)?.split_once(':')?;
            // In clock ticks (USER_HZ, 100 a second).
            let when = u64::from_str_radix(when, 16).ok()? as f64 / 100.0;
            Some((u32::from_str_radix(which, 16).ok()?, when))
        })
    }

    #[tokio::test]
    async fn the_clients_connections_carry_tcp_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A server that answers one request and reports the client's port.
        let server = std::thread::spawn(move || {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).unwrap();
            let body = r#"{"major":"1","minor":"35"}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
            (conn, peer.port())
        });
        let config = Config::new(format!("http://{addr}").parse().unwrap());
        let client = client_for(config).unwrap();
        let request = http::Request::get("/version").body(Vec::new()).unwrap();
        client.request_text(request).await.unwrap();
        let (_conn, port) = server.join().unwrap();
        // The idle connection, kept in the pool, waits on its keepalive timer.
        let (timer, fires_in) = timer_of_local_port(port).expect("the client's connection");
        assert_eq!(timer, 2, "the keepalive timer runs");
        let idle = KEEPALIVE_IDLE.as_secs_f64();
        assert!(
            fires_in <= idle && fires_in > idle - 5.0,
            "the first probe in {fires_in} s, not after {idle} s idle"
        );
    }
}
