//! `--metrics ADDR:PORT`: the server's counters for Prometheus to scrape, at
//! `http://ADDR:PORT/metrics`, answered by a thread of their own. A scrape reads atomics
//! the event loops add to; it never waits on a loop, nor a loop on it.

use std::net::SocketAddr;
use std::thread;

use tiny_http::{Header, Method, Response, Server};
use wirekit::net::metrics::Metrics;
use wirekit::net::metrics::PROMETHEUS_CONTENT_TYPE;

/// Binds `addr` and answers scrapes from `metrics` on a thread of its own. Returns the
/// address bound (its port, when `addr` asked for port 0).
pub fn serve(addr: SocketAddr, metrics: Metrics) -> Result<SocketAddr, String> {
    let server =
        Server::http(addr).map_err(|e| format!("--metrics: cannot listen on {addr}: {e}"))?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = match (request.method(), request.url()) {
                    (Method::Get | Method::Head, "/metrics") => {
                        Response::from_string(metrics.encode_prometheus()).with_header(
                            Header::from_bytes("Content-Type", PROMETHEUS_CONTENT_TYPE)
                                .expect("the content type is a valid header"),
                        )
                    }
                    (Method::Get | Method::Head, _) => {
                        Response::from_string("not found: the metrics are at /metrics\n")
                            .with_status_code(404)
                    }
                    _ => Response::from_string("only GET\n").with_status_code(405),
                };
                // A scraper that went away costs nothing but its answer.
                let _ = request.respond(response);
            }
        })
        .map_err(|e| format!("--metrics: cannot start its thread: {e}"))?;
    Ok(bound)
}
