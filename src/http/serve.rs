//! Connections in, requests out: the accept loop in front of the Router.
//!
//! Each accepted connection gets a task of its own: the TLS handshake when TLS
//! is on (bounded by the header read timeout), then HTTP/1.1 through hyper with
//! that same timeout on every request's headers, so a client that trickles its
//! headers, or keeps an idle connection open, is cut off. On shutdown the
//! listener is closed first, every connection finishes the request it is
//! serving and closes, and whatever is still open when the grace period ends
//! is dropped.
//!
//! Our own loop rather than `axum::serve` (no TLS, no header timeout) or
//! `axum-server` (which has TLS and handshake timeouts): the loop is short,
//! every timeout sits here in one place, the shutdown can end the connections
//! that outlive the grace period (axum's spawned connection tasks outlive
//! its server future, and with them the audit writer's handles), and the
//! crates are hyper-util and tokio-rustls, which the tree already has.
//!
//! HTTP/1.1 only, as before (axum's `http2` feature was never on): the header
//! read timeout and the idle cut-off are HTTP/1 mechanisms, and ALPN offers
//! `http/1.1` alone.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How connections are served.
#[derive(Clone)]
pub struct ServeOptions {
    /// TLS termination, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Longest wait for a request's headers (and for the TLS handshake).
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish within the grace period and
/// drops what is left. Returns once every connection task has ended, so
/// every clone of the router (and of the state it holds) is gone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);

    // Signals every watched connection to finish its request and close; its
    // `shutdown` resolves once every watcher (one per connection task, taken
    // before the TLS handshake) is gone.
    let graceful = GracefulShutdown::new();
    // Every connection task, so that those still open after the grace period
    // can be ended, and so that we know when all of them have.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(err) = ended
                    && err.is_panic()
                {
                    tracing::error!(error = %err, "a connection task panicked");
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
        };
        // Responses go out in one or two writes; Nagle's algorithm would hold
        // the second for the client's delayed ACK.
        stream.set_nodelay(true).ok();
        let connection = Connection {
            http: http.clone(),
            router: router.clone(),
            peer,
            watcher: graceful.watcher(),
            header_read_timeout: options.header_read_timeout,
        };
        let acceptor = acceptor.clone();
        connections.spawn(connection.run(stream, acceptor));
    }

    drop(listener);
    drop(router);
    tracing::info!(
        connections = connections.len(),
        "stopped accepting; finishing in-flight requests"
    );
    let grace = options.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            open = connections.len(),
            "shutdown grace period over; closing remaining connections"
        );
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

/// An accept error: the peer's own trouble (it reset before we took it) is
/// skipped; anything else (out of file descriptors) is logged and the loop
/// pauses briefly rather than spin.
async fn accept_failed(err: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One accepted connection and what it needs to be served.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    peer: SocketAddr,
    watcher: Watcher,
    header_read_timeout: Duration,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.http(stream).await;
        };
        let peer = self.peer;
        match tokio::time::timeout(self.header_read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.http(stream).await,
            // A client without an acceptable certificate (mutual TLS), plain
            // HTTP on the TLS port, a scanner: worth a line, not an alarm.
            Ok(Err(err)) => {
                tracing::info!(peer = %peer, error = %err, "TLS handshake failed");
            }
            Err(_) => tracing::info!(peer = %peer, "TLS handshake timed out"),
        }
    }

    async fn http<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let peer = self.peer;
        // What `into_make_service_with_connect_info` did: handlers and the
        // network check read the peer's address from the request.
        let service = self
            .router
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let connection = self
            .http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        // Header read timeouts, resets and clients gone mid-request end up
        // here; they are the client's business.
        if let Err(err) = self.watcher.watch(connection).await {
            tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
        }
    }
}
