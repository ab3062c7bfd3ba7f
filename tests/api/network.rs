//! Only allowed networks reach Backplane; forwarded addresses count only from
//! trusted proxies.

use backplane::config::Mode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app_configured};

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|n| n.parse().expect("cidr")).collect()
}

#[tokio::test]
async fn peers_outside_the_allowed_networks_get_403_before_anything_is_parsed() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.network.allowed = nets(&["10.0.0.0/8"]);
    })
    .await;
    let token = app.issuer.token("admin-1", &["admin"]);
    for body in ["{ not json", r#"{"query":"{ viewer { subject } }"}"#] {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 403, "{body}");
    }
    // Without a trusted proxy, a forwarded address is not believed.
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "10.1.2.3")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 403);
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 403);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_decides() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.network.allowed = nets(&["10.0.0.0/8"]);
        c.network.trusted_proxies = nets(&["127.0.0.1/32"]);
    })
    .await;
    let token = app.issuer.token("admin-1", &["admin"]);
    for (forwarded, expected) in [
        (Some("10.1.2.3"), 200),
        (Some("8.8.8.8"), 403),
        (Some("10.1.2.3, 8.8.8.8"), 403),
        (None, 403),
    ] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ viewer { subject } }" }));
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), expected, "{forwarded:?}");
    }
}

/// The address a test proxy connects from (`BACKPLANE_TRUSTED_PROXIES`).
const PROXY: &str = "127.0.0.2";
/// A client inside the allowed networks.
const INSIDE: &str = "127.0.0.5";
/// A client outside the allowed networks.
const OUTSIDE: &str = "127.0.0.6";

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8
/// address is this machine's own on Linux).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().expect("source address"))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Allowed: the proxy itself (as with the default private ranges, which hold
/// every proxy), the inside client, and the range a forger claims to be in.
fn proxied_network(c: &mut backplane::config::Config) {
    c.network.allowed = nets(&[
        &format!("{PROXY}/32"),
        &format!("{INSIDE}/32"),
        "10.0.0.0/8",
    ]);
    c.network.trusted_proxies = nets(&[&format!("{PROXY}/32")]);
}

/// Asserts the refusal of the network check: 403 with a `FORBIDDEN` error.
async fn assert_refused(resp: reqwest::Response, case: &str) {
    assert_eq!(resp.status().as_u16(), 403, "{case}");
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{case}: {body}"
    );
    assert!(body.get("data").is_none(), "{case}: {body}");
}

#[tokio::test]
async fn a_trusted_proxy_without_a_readable_forwarded_for_is_refused() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, proxied_network).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    let proxy = client_from(PROXY);
    let ask = |lines: &[(&str, &str)]| {
        let mut req = proxy
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ viewer { subject } }" }));
        for (name, value) in lines {
            // `header` appends: two equal names are two header lines.
            req = req.header(*name, *value);
        }
        req.send()
    };
    // Each of these reaches the server from the trusted proxy, whose own
    // address is allowed: only the forwarded client may decide, and there is
    // none to be read.
    for lines in [
        &[][..],
        &[("x-forwarded-for", "")],
        &[("x-forwarded-for", " , ")],
        &[("x-forwarded-for", "unknown")],
        &[("x-forwarded-for", "x, 127.0.0.2")],
        &[("x-forwarded-for", "10.1.2.3, garbage")],
        &[("x-forwarded-for", "10.1.2.3,,127.0.0.2")],
        &[
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-for", "_hidden"),
        ],
        &[("x-forwarded-for", "10.1.2.3:")],
        &[("x-forwarded-for", "[10.1.2.3]:80")],
        &[("x-forwarded-for", "\"10.1.2.3\"")],
        &[("x-forwarded-for", "fe80::1%eth0")],
        &[("forwarded", "for=10.1.2.3")],
        &[("forwarded", "for=\"[::ffff:10.1.2.3]\"")],
    ] {
        let resp = ask(lines).await.expect("request");
        assert_refused(resp, &format!("{lines:?}")).await;
    }
    // A second header line is part of the list: its right-most hop decides.
    let resp = ask(&[
        ("x-forwarded-for", "10.1.2.3"),
        ("x-forwarded-for", "8.8.8.8"),
    ])
    .await
    .expect("request");
    assert_refused(resp, "second line outside").await;
    // Readable hops, the ports some proxies add among them, pass.
    for lines in [
        &[("x-forwarded-for", "10.1.2.3")][..],
        &[
            ("x-forwarded-for", "8.8.8.8"),
            ("x-forwarded-for", "10.1.2.3"),
        ],
        &[("x-forwarded-for", "garbage, 10.1.2.3, 127.0.0.2")],
        &[("x-forwarded-for", "10.1.2.3:5678")],
        &[("x-forwarded-for", "[::ffff:10.1.2.3]:443")],
        &[("x-forwarded-for", "::ffff:10.1.2.3")],
        // Every hop a trusted proxy: the left-most is the client.
        &[("x-forwarded-for", "127.0.0.2, 127.0.0.2")],
    ] {
        let resp = ask(lines).await.expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{lines:?}");
    }
}

/// A real HAProxy on loopback: `option forwardfor`, round robin over
/// `backends`, connecting to them from [`PROXY`]. Killed on drop.
struct HaProxy {
    port: u16,
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    fn binary() -> std::path::PathBuf {
        ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .expect(
                "haproxy is not installed: run the tests with ./scripts/test, which installs \
                 Debian's haproxy (or apt-get install haproxy)",
            )
    }

    async fn start(backends: &[std::net::SocketAddr]) -> Self {
        let binary = Self::binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut last_log = String::new();
        // A port that was free a moment ago may be taken before HAProxy binds
        // it: try a few.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let servers: String = backends
                .iter()
                .enumerate()
                .map(|(i, addr)| format!("    server backplane{} {addr} source {PROXY}\n", i + 1))
                .collect();
            let config = format!(
                "global\n    log stderr format raw local0 info\n    nbthread 1\n\
                 defaults\n    mode http\n    log global\n    option httplog\n    option forwardfor\n\
                 \x20   timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
                 frontend edge\n    bind 127.0.0.1:{port}\n    default_backend backplane\n\
                 backend backplane\n    balance roundrobin\n\
                 \x20   http-response set-header x-served-by %[srv_name]\n{servers}"
            );
            let config_path = dir.path().join("haproxy.cfg");
            std::fs::write(&config_path, &config).expect("write the HAProxy config");
            let log = dir.path().join("haproxy.log");
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let mut child = std::process::Command::new(&binary)
                .arg("-db")
                .arg("-f")
                .arg(&config_path)
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start haproxy");
            // Ready when it accepts connections (the probe logs as a `<BADREQ>`);
            // gone if it exited.
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return HaProxy {
                        port,
                        child,
                        log,
                        _dir: dir,
                    };
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            child.kill().ok();
            child.wait().ok();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("HAProxy did not start; its log:\n{last_log}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What HAProxy logged so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Two Backplane instances on one PostgreSQL database behind one HAProxy,
/// trusting [`PROXY`] and allowing what [`proxied_network`] allows.
struct Proxied {
    haproxy: HaProxy,
    issuer: crate::helpers::TestIssuer,
    _instances: [crate::helpers::TestApp; 2],
    _db: crate::helpers::TestDatabase,
}

async fn behind_haproxy() -> Proxied {
    let db = crate::helpers::database(Backend::Postgres).await;
    let issuer = crate::helpers::TestIssuer::start().await;
    let one = crate::helpers::spawn_app_on_configured(&db.url, &issuer, proxied_network).await;
    let two = crate::helpers::spawn_app_on_configured(&db.url, &issuer, proxied_network).await;
    let haproxy = HaProxy::start(&[one.addr, two.addr]).await;
    Proxied {
        haproxy,
        issuer,
        _instances: [one, two],
        _db: db,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_a_client_outside_the_allowed_networks_stays_out_whatever_it_forwards() {
    let proxied = behind_haproxy().await;
    let token = proxied.issuer.token("admin-1", &["admin"]);
    let outside = client_from(OUTSIDE);
    // HAProxy appends the real client's address as a header line of its own;
    // what the client sent comes before it.
    for lines in [
        &[][..],
        &[("x-forwarded-for", "10.1.2.3")],
        &[("x-forwarded-for", "127.0.0.5")],
        &[
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-for", "10.1.2.4"),
        ],
        &[("x-forwarded-for", "10.1.2.3, 127.0.0.2")],
        &[("x-forwarded-for", "unknown")],
        &[("x-forwarded-for", "")],
        &[("x-forwarded-for", "x, 127.0.0.2")],
        &[("forwarded", "for=10.1.2.3")],
    ] {
        let mut req = outside
            .post(proxied.haproxy.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ viewer { subject } }" }));
        for (name, value) in lines {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request through HAProxy");
        let served_by = resp.headers().get("x-served-by").cloned();
        assert!(
            served_by.is_some(),
            "not answered by a backend: {}",
            proxied.haproxy.log()
        );
        assert_refused(
            resp,
            &format!("{lines:?}; HAProxy log:\n{}", proxied.haproxy.log()),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_both_instances_serve_and_audit_the_real_client() {
    let proxied = behind_haproxy().await;
    let token = proxied.issuer.token("admin-1", &["admin"]);
    let inside = client_from(INSIDE);
    let mut served_by = std::collections::BTreeSet::new();
    // Four sensitive reads, two of them claiming to come from elsewhere.
    for forged in [None, Some("10.9.9.9"), None, Some("10.9.9.9, 127.0.0.2")] {
        let mut req = inside.post(proxied.haproxy.url("/graphql")).bearer_auth(&token).json(
            &json!({ "query": "query ThroughProxy { organizations(first: 1) { nodes { monthlyCostCents } } }" }),
        );
        if let Some(forged) = forged {
            req = req.header("x-forwarded-for", forged);
        }
        let resp = req.send().await.expect("request through HAProxy");
        let status = resp.status().as_u16();
        if let Some(by) = resp.headers().get("x-served-by") {
            served_by.insert(by.to_str().unwrap_or_default().to_owned());
        }
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            status,
            200,
            "{forged:?}: {body}; HAProxy log:\n{}",
            proxied.haproxy.log()
        );
    }
    assert_eq!(
        served_by,
        ["backplane1".to_owned(), "backplane2".to_owned()].into(),
        "HAProxy log:\n{}",
        proxied.haproxy.log()
    );
    // The audit log (one table for both instances) names the real client
    // for every read, never the proxy or a forged hop.
    let mut addrs = Vec::new();
    for _ in 0..50 {
        let resp = inside
            .post(proxied.haproxy.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": r#"{ auditEvents(first: 50, filter: {operationName: "ThroughProxy"}) { nodes { clientAddr } } }"# }))
            .send()
            .await
            .expect("audit query");
        let body: serde_json::Value = resp.json().await.expect("JSON");
        addrs = body["data"]["auditEvents"]["nodes"]
            .as_array()
            .map(|nodes| nodes.iter().map(|n| n["clientAddr"].clone()).collect())
            .unwrap_or_default();
        if addrs.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(addrs, vec![json!(INSIDE); 4]);
}
