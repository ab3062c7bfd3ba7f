//! The transport: TLS and mutual TLS with certificates made at test time, slow
//! and idle clients cut off by the header read timeout, the bound on requests
//! in flight, and graceful shutdown. Nothing here asserts a duration: every
//! wait is bounded generously (`PATIENCE`) so a broken server fails the test
//! instead of hanging it, and the assertions are on outcomes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use backplane::app::Application;
use backplane::config::{Config, Mode};
use backplane::http::tls::TlsSettings;
use backplane::store::StoreOptions;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, TestDatabase, database, spawn_app_configured};

/// The longest any step may take before the test gives up on the server.
const PATIENCE: Duration = Duration::from_secs(10);

/// A certificate authority for one test.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (empty for a client), with its key: `(cert
    /// PEM, key PEM)`.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// A CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate from the same CA, and one from a CA the server does not know;
/// the server's files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client: reqwest::Identity,
    stranger: reqwest::Identity,
}

impl Pki {
    fn new() -> Self {
        let ca = Authority::new("Backplane test CA");
        let (server_cert, server_key) = ca.issue(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = ca.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);
        let other = Authority::new("Someone else's CA");
        let (stranger_cert, stranger_key) = other.issue(&[], ExtendedKeyUsagePurpose::ClientAuth);

        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            ("server.pem", server_cert),
            ("server-key.pem", server_key),
            ("ca.pem", ca.pem.clone()),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write PEM");
        }
        let identity = |cert: String, key: String| {
            reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).expect("identity")
        };
        Self {
            dir,
            ca_pem: ca.pem,
            client: identity(client_cert, client_key),
            stranger: identity(stranger_cert, stranger_key),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Server certificate and key; with `mutual`, client certificates from
    /// our CA are required.
    fn settings(&self, mutual: bool) -> TlsSettings {
        TlsSettings {
            cert: Some(self.file("server.pem")),
            key: Some(self.file("server-key.pem")),
            client_ca: mutual.then(|| self.file("ca.pem")),
        }
    }

    /// A client that trusts our CA and nothing else, presenting `identity`.
    fn client(&self, identity: Option<&reqwest::Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA"),
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PATIENCE);
        if let Some(identity) = identity {
            builder = builder.identity(identity.clone());
        }
        builder.build().expect("client")
    }
}

/// `dev` on SQLite without an identity provider (requests act as the demo
/// administrator), adjusted by `adjust`.
async fn dev_app(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| {
        c.oidc = None;
        adjust(c);
    })
    .await
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://{}{path}", app.addr)
}

async fn typename(client: &reqwest::Client, url: &str) -> reqwest::Result<(StatusCode, Value)> {
    let resp = client
        .post(url)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    let status = resp.status();
    Ok((status, resp.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_health_graphql_and_secure_cookies() {
    let pki = Pki::new();
    let app = dev_app(|c| c.tls = pki.settings(false)).await;
    let client = pki.client(None);

    let resp = client
        .get(https(&app, "/healthz"))
        .send()
        .await
        .expect("healthz over TLS");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);

    let (status, body) = typename(&client, &https(&app, "/graphql"))
        .await
        .expect("GraphQL over TLS");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");

    // The session cookie is Secure, so `__Host-` prefixed: no public URL is
    // configured, TLS alone says browsers come over https.
    let resp = client
        .post(https(&app, "/auth/dev"))
        .form(&[("staff", "demo-admin"), ("role", "admin")])
        .send()
        .await
        .expect("dev sign-in");
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let cookies: Vec<_> = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-backplane_session="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    assert!(session.contains("; Secure"), "{session}");
    assert!(session.contains("; Path=/"), "{session}");
    assert!(
        !session.to_ascii_lowercase().contains("domain"),
        "{session}"
    );

    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("client");
    let result = plain
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(result.is_err(), "plain HTTP was answered: {result:?}");

    // And the server is still fine afterwards.
    let (status, _) = typename(&client, &https(&app, "/graphql"))
        .await
        .expect("GraphQL over TLS");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_certificate_from_the_configured_ca() {
    let pki = Pki::new();
    let app = dev_app(|c| c.tls = pki.settings(true)).await;
    let url = https(&app, "/graphql");

    let no_certificate = typename(&pki.client(None), &url).await;
    assert!(
        no_certificate.is_err(),
        "answered without a client certificate: {no_certificate:?}"
    );
    let other_ca = typename(&pki.client(Some(&pki.stranger)), &url).await;
    assert!(
        other_ca.is_err(),
        "answered a certificate from another CA: {other_ca:?}"
    );

    let (status, body) = typename(&pki.client(Some(&pki.client)), &url)
        .await
        .expect("the right certificate is accepted");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

/// Reads until the server closes the connection, or `PATIENCE` runs out:
/// what was read, and whether the connection was closed.
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response head (up to the blank line), within `PATIENCE`.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
            Ok(Ok(1)) => out.push(byte[0]),
            other => panic!(
                "no complete response head ({other:?}); got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let app = dev_app(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /heal")
        .await
        .expect("half a request line");
    let (_, closed) = read_until_closed(&mut stream).await;
    assert!(
        closed,
        "the server kept a connection with half a request line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = dev_app(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let (response, closed) = read_until_closed(&mut stream).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Keep-alive was not refused (the response says nothing of closing):
    // the connection was closed for idling.
    assert!(
        !response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(closed, "an idle connection was kept open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    let pki = Pki::new();
    let app = dev_app(|c| {
        c.tls = pki.settings(false);
        c.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let (_, closed) = read_until_closed(&mut stream).await;
    assert!(closed, "a connection that never said hello was kept open");
}

/// The head of a GraphQL POST whose body (`BODY`) the client holds back,
/// asking the server to say when it wants it.
const BODY: &str = r#"{"query":"{ __typename }"}"#;

fn held_back_request(close: bool) -> String {
    format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n{}\r\n",
        BODY.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
}

/// Sends the head of a request and waits for `100 Continue`: the server has
/// routed it and its handler is reading the body, so the request is in
/// flight (it holds its permit) until the body is sent.
async fn request_in_flight(addr: SocketAddr, close: bool) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(held_back_request(close).as_bytes())
        .await
        .expect("request head");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    stream
}

/// Sends the held-back body and reads the response until the server closes.
async fn finish(mut stream: TcpStream) -> (String, bool) {
    stream.write_all(BODY.as_bytes()).await.expect("body");
    let (response, closed) = read_until_closed(&mut stream).await;
    (String::from_utf8_lossy(&response).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_bound_get_503_with_retry_after() {
    let app = dev_app(|c| c.max_concurrent_requests = 1).await;
    let first = request_in_flight(app.addr, true).await;

    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("second request");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{body}"
    );
    // Other application routes share the bound; the probes do not.
    let resp = app
        .client
        .get(app.url("/playground"))
        .send()
        .await
        .expect("playground");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    for probe in ["/healthz", "/readyz"] {
        let resp = app.client.get(app.url(probe)).send().await.expect(probe);
        assert_eq!(resp.status(), StatusCode::OK, "{probe}");
    }

    // The first request was never disturbed, and its permit comes back.
    let (response, _) = finish(first).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""__typename":"Query""#), "{response}");
    let (status, body) = app.graphql_as(None, "{ __typename }", json!({})).await;
    assert_eq!(status, 200, "{body}");
}

/// A `dev` server whose shutdown the test triggers.
struct Stoppable {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    _db: TestDatabase,
}

async fn stoppable(grace: Duration) -> Stoppable {
    let db = database(Backend::Sqlite).await;
    let mut config = Config::new(
        Mode::Dev,
        "127.0.0.1:0".parse().expect("addr"),
        StoreOptions::new(db.url.clone()),
    );
    config.dev_seed_orgs = 0;
    config.shutdown_grace = grace;
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            stopped.await.ok();
        })
        .await
        .ok();
    });
    Stoppable {
        addr,
        stop,
        server,
        _db: db,
    }
}

/// Waits (within `PATIENCE`) until the listener is closed.
async fn wait_until_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after the shutdown signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let server = stoppable(Duration::from_secs(30)).await;
    let in_flight = request_in_flight(server.addr, false).await;
    server.stop.send(()).ok();
    wait_until_refused(server.addr).await;

    // Keep-alive was asked for, but the server closes once it has answered.
    let (response, closed) = finish(in_flight).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""__typename":"Query""#), "{response}");
    assert!(closed, "the connection outlived the shutdown");
    let finished = tokio::time::timeout(PATIENCE, server.server).await;
    assert!(
        matches!(finished, Ok(Ok(()))),
        "the server did not stop: {finished:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_what_outlives_the_grace_period() {
    let server = stoppable(Duration::from_secs(1)).await;
    let mut in_flight = request_in_flight(server.addr, false).await;
    server.stop.send(()).ok();
    // The body never comes: after the grace period the connection is closed
    // and the server stops (the audit writer drained too).
    let (_, closed) = read_until_closed(&mut in_flight).await;
    assert!(closed, "a stalled request outlived the grace period");
    let finished = tokio::time::timeout(PATIENCE, server.server).await;
    assert!(
        matches!(finished, Ok(Ok(()))),
        "the server did not stop: {finished:?}"
    );
}
