//! Allowed networks: the first thing a request meets. A peer outside
//! `BACKPLANE_ALLOWED_NETWORKS` gets 403 before its request is read any further.
//! Behind a proxy, the client is taken from `X-Forwarded-For` only when the peer
//! is one of `BACKPLANE_TRUSTED_PROXIES`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde_json::json;

/// Who may connect, and whom to believe about the client behind them.
#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    pub allowed: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Loopback and the private ranges (RFC 1918, unique-local IPv6).
    pub fn default_allowed() -> Vec<IpNet> {
        [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
    }

    fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
        nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !Self::contains(&self.trusted_proxies, peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !Self::contains(&self.trusted_proxies, client) {
                        break;
                    }
                }
                // A hop we cannot read: stop believing the header there.
                Err(_) => break,
            }
        }
        client
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        Self::contains(&self.allowed, ip.to_canonical())
    }
}

/// The client address of a request, for logs and the audit log.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

pub async fn enforce(
    State(policy): State<Arc<NetworkPolicy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = policy.client_ip(peer.ip(), forwarded);
    if !policy.allows(client) {
        tracing::warn!(client = %client, peer = %peer.ip(), "request refused: address not in the allowed networks");
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "errors": [{
                    "message": "this address may not use Backplane",
                    "extensions": { "code": "FORBIDDEN" }
                }]
            })),
        )
            .into_response();
    }
    req.extensions_mut().insert(ClientAddr(client));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let policy = NetworkPolicy {
            allowed: NetworkPolicy::default_allowed(),
            trusted_proxies: nets(&["10.0.0.1/32", "10.0.0.2/32"]),
        };
        // Untrusted peer: the header is ignored.
        assert_eq!(
            policy.client_ip(ip("192.168.1.5"), Some("8.8.8.8")),
            ip("192.168.1.5")
        );
        // Trusted peer: right-most untrusted hop.
        assert_eq!(
            policy.client_ip(ip("10.0.0.1"), Some("1.1.1.1, 8.8.8.8, 10.0.0.2")),
            ip("8.8.8.8")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            policy.client_ip(ip("10.0.0.1"), Some("x, 10.0.0.2")),
            ip("10.0.0.2")
        );
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert!(policy.allows(ip("::ffff:127.0.0.1")));
        assert!(!policy.allows(ip("8.8.8.8")));
        assert!(policy.allows(ip("172.20.1.1")));
        assert!(!policy.allows(ip("172.32.0.1")));
    }
}
