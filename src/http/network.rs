//! Allowed networks: the first thing a request meets. A client outside
//! `BACKPLANE_ALLOWED_NETWORKS` gets 403 before its request is read any further.
//!
//! Behind a proxy the peer is the proxy, so the client comes from
//! `X-Forwarded-For` — but only when the peer is one of
//! `BACKPLANE_TRUSTED_PROXIES`, and only the part of it trusted proxies wrote.
//! Every `X-Forwarded-For` line of a request is one comma-separated list, in
//! order; proxies append to its right, so anything left of the last untrusted
//! hop is whatever the client chose to send. The walk therefore goes from the
//! right, past trusted proxies, and the first hop that is not one is the
//! client. If every hop is a trusted proxy, the left-most hop is the client
//! (a request that started inside the proxy tier).
//!
//! A trusted proxy's request that names no client we can read — no
//! `X-Forwarded-For`, only empty lines, or a hop that is not an address before
//! an untrusted hop is reached — is refused (403): falling back to the proxy's
//! own address would let anyone the proxy serves in as the proxy, which is
//! allowed. A hop is an IPv4 or IPv6 address, optionally with a port
//! (`1.2.3.4:5678`, `[2001:db8::1]:443`) or in brackets (`[2001:db8::1]`);
//! `unknown`, obfuscated identifiers (`_hidden`), host names, zone ids and
//! quoted values are unreadable. IPv4-mapped IPv6 addresses are their IPv4
//! address.
//!
//! `Forwarded` (RFC 7239) is ignored entirely: configure the proxy to send
//! `X-Forwarded-For`. A trusted proxy's request carrying only `Forwarded` is
//! one without `X-Forwarded-For`, and refused. Believing two headers would give
//! a client two places to forge, and a proxy that sets one rarely strips the
//! other.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::error::HttpError;
use crate::audit::refusals::{Refusals, Refused, reason};
use crate::graphql::error::Code;

/// The header a trusted proxy names the client in.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// How much of an unreadable hop a log line shows.
const LOGGED_HOP_CHARS: usize = 64;

/// Who may connect, and whom to believe about the client behind them.
#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    /// Clients that are served (`BACKPLANE_ALLOWED_NETWORKS`).
    pub allowed: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed (`BACKPLANE_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
}

/// Why a trusted proxy's request names no client that can be believed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// No `X-Forwarded-For` line, or only empty ones: becomes 403, since the
    /// proxy's own address is not the client's.
    #[error("the trusted proxy sent no X-Forwarded-For")]
    Missing,
    /// A hop that is not an address, reached before the client was: becomes
    /// 403, since whatever lies left of it cannot be placed. `position` counts
    /// hops from the right (0 = the one the peer wrote); `hop` is its start.
    #[error("an X-Forwarded-For hop is not an IP address")]
    Unreadable { position: usize, hop: String },
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

    /// The client's address: the peer, or — when the peer is a trusted proxy —
    /// the right-most hop of `forwarded_for` (every `X-Forwarded-For` line, in
    /// order) that is not itself a trusted proxy, or the left-most hop when all
    /// are (see the module doc).
    pub fn client_ip(
        &self,
        peer: IpAddr,
        forwarded_for: &[&[u8]],
    ) -> Result<IpAddr, ForwardedError> {
        let peer = peer.to_canonical();
        if !Self::contains(&self.trusted_proxies, peer) {
            return Ok(peer);
        }
        if forwarded_for
            .iter()
            .all(|line| line.trim_ascii().is_empty())
        {
            return Err(ForwardedError::Missing);
        }
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|b| *b == b','));
        let mut client = None;
        for (position, hop) in hops.enumerate() {
            let Some(ip) = parse_hop(hop) else {
                let hop = hop.trim_ascii();
                let start = &hop[..hop.len().min(4 * LOGGED_HOP_CHARS)];
                return Err(ForwardedError::Unreadable {
                    position,
                    hop: String::from_utf8_lossy(start)
                        .chars()
                        .take(LOGGED_HOP_CHARS)
                        .collect(),
                });
            };
            client = Some(ip);
            if !Self::contains(&self.trusted_proxies, ip) {
                break;
            }
        }
        client.ok_or(ForwardedError::Missing)
    }

    /// Whether `ip` is in the allowed networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        Self::contains(&self.allowed, ip.to_canonical())
    }
}

/// One hop of `X-Forwarded-For`: an address, with a port or in brackets as
/// some proxies write it, or nothing if it is anything else.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim_matches([' ', '\t']);
    let ip = if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else if let Ok(addr) = hop.parse::<SocketAddr>() {
        addr.ip()
    } else {
        let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// The client address of a request, for logs and the audit log.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// What the network layer holds: the policy, and where refusals are noted.
#[derive(Clone, Debug)]
pub struct Edge {
    pub policy: Arc<NetworkPolicy>,
    pub refusals: Arc<Refusals>,
}

/// The network check as a middleware: finds the client (see the module doc),
/// refuses it with 403 unless it is allowed, and records it as [`ClientAddr`].
///
/// Outermost of the layers that refuse, it also records every refusal
/// before the gate in the audit log (`audit::refusals`): its own, and those
/// of the layers and handlers within it, marked on their responses, with
/// the client's address (the peer's, when the client cannot be read) and
/// the route.
pub async fn enforce(
    State(edge): State<Edge>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let lines: Vec<&[u8]> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let found = edge.policy.client_ip(peer.ip(), &lines);
    let note = |source: IpAddr, head: &Head, response: &Response| {
        let refused = match response.extensions().get::<Refused>() {
            Some(refused) => refused.clone(),
            // The body limit's own answer carries no mark.
            None if response.status() == StatusCode::PAYLOAD_TOO_LARGE => Refused::new(
                reason::BODY_TOO_LARGE,
                "the request body is larger than the server accepts",
            ),
            None => return,
        };
        edge.refusals.note(
            source,
            &format!("{} {}", head.method, head.uri.path()),
            response.status().as_u16(),
            &refused,
            head.request_id.as_ref().and_then(|v| v.to_str().ok()),
        );
    };
    // What a refusal's record needs of the request, kept while it runs
    // (cheap: the parts share their bytes).
    let head = Head {
        method: req.method().clone(),
        uri: req.uri().clone(),
        request_id: req.headers().get(super::REQUEST_ID).cloned(),
    };
    let client = match found {
        Ok(client) => client,
        Err(err) => {
            let (position, hop) = match &err {
                ForwardedError::Unreadable { position, hop } => (Some(*position), Some(hop)),
                ForwardedError::Missing => (None, None),
            };
            tracing::warn!(
                peer = %peer.ip(),
                reason = %err,
                lines = lines.len(),
                position,
                hop = hop.map(tracing::field::debug),
                "request refused: a trusted proxy named no readable client"
            );
            let response = forbidden(
                reason::UNREADABLE_CLIENT,
                "the client address behind the proxy cannot be read",
            );
            note(peer.ip(), &head, &response);
            return response;
        }
    };
    if !edge.policy.allows(client) {
        tracing::warn!(client = %client, peer = %peer.ip(), "request refused: address not in the allowed networks");
        let response = forbidden(
            reason::FOREIGN_NETWORK,
            "this address may not use Backplane",
        );
        note(client, &head, &response);
        return response;
    }
    req.extensions_mut().insert(ClientAddr(client));
    let response = next.run(req).await;
    note(client, &head, &response);
    response
}

/// The parts of a request its refusal's record names.
struct Head {
    method: axum::http::Method,
    uri: axum::http::Uri,
    request_id: Option<axum::http::HeaderValue>,
}

/// 403 with a GraphQL-style error body, whatever the route.
fn forbidden(why: &'static str, message: &str) -> Response {
    HttpError::new(StatusCode::FORBIDDEN, Code::Forbidden, message)
        .refusal(why)
        .into_response()
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

    /// Trusts 10.0.0.1, 10.0.0.2 and 2001:db8::/64 as proxies.
    fn policy() -> NetworkPolicy {
        NetworkPolicy {
            allowed: NetworkPolicy::default_allowed(),
            trusted_proxies: nets(&["10.0.0.1/32", "10.0.0.2/32", "2001:db8::/64"]),
        }
    }

    /// The client a request from `peer` with these `X-Forwarded-For` lines has.
    fn client(peer: &str, lines: &[&str]) -> Result<IpAddr, ForwardedError> {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        policy().client_ip(ip(peer), &lines)
    }

    fn unreadable(position: usize, hop: &str) -> Result<IpAddr, ForwardedError> {
        Err(ForwardedError::Unreadable {
            position,
            hop: hop.to_owned(),
        })
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        // Untrusted peer: the header is ignored, however it reads.
        assert_eq!(client("192.168.1.5", &["8.8.8.8"]), Ok(ip("192.168.1.5")));
        assert_eq!(client("192.168.1.5", &["garbage"]), Ok(ip("192.168.1.5")));
        assert_eq!(client("192.168.1.5", &[]), Ok(ip("192.168.1.5")));
        // Trusted peer: right-most untrusted hop.
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1, 8.8.8.8, 10.0.0.2"]),
            Ok(ip("8.8.8.8"))
        );
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert_eq!(client("::ffff:10.0.0.1", &["8.8.8.8"]), Ok(ip("8.8.8.8")));
        assert!(policy().allows(ip("::ffff:127.0.0.1")));
        assert!(!policy().allows(ip("8.8.8.8")));
        assert!(policy().allows(ip("172.20.1.1")));
        assert!(!policy().allows(ip("172.32.0.1")));
    }

    #[test]
    fn every_forwarded_for_line_is_part_of_one_list() {
        // The second line is to the right of the first: it decides.
        assert_eq!(
            client("10.0.0.1", &["10.9.9.9", "8.8.8.8"]),
            Ok(ip("8.8.8.8"))
        );
        assert_eq!(
            client("10.0.0.1", &["10.9.9.9", "8.8.8.8, 10.0.0.2", "10.0.0.2"]),
            Ok(ip("8.8.8.8"))
        );
        // What a client put left of its own address is never read.
        assert_eq!(
            client("10.0.0.1", &["unknown", "8.8.8.8"]),
            Ok(ip("8.8.8.8"))
        );
        assert_eq!(client("10.0.0.1", &["", "8.8.8.8"]), Ok(ip("8.8.8.8")));
    }

    #[test]
    fn a_trusted_proxy_naming_no_readable_client_is_refused() {
        assert_eq!(client("10.0.0.1", &[]), Err(ForwardedError::Missing));
        assert_eq!(client("10.0.0.1", &[""]), Err(ForwardedError::Missing));
        assert_eq!(
            client("10.0.0.1", &[" ", "\t"]),
            Err(ForwardedError::Missing)
        );
        assert_eq!(client("10.0.0.1", &["unknown"]), unreadable(0, "unknown"));
        assert_eq!(client("10.0.0.1", &["x, 10.0.0.2"]), unreadable(1, "x"));
        assert_eq!(
            client("10.0.0.1", &["8.8.8.8", "x, 10.0.0.2"]),
            unreadable(1, "x")
        );
        assert_eq!(
            client("10.0.0.1", &["8.8.8.8, ,10.0.0.2"]),
            unreadable(1, "")
        );
        assert_eq!(client("10.0.0.1", &["8.8.8.8", ""]), unreadable(0, ""));
        assert_eq!(client("10.0.0.1", &["8.8.8.8,"]), unreadable(0, ""));
        for hop in [
            "_hidden",
            "\"8.8.8.8\"",
            "8.8.8.8:",
            "8.8.8.8:99999",
            "[8.8.8.8]:80",
            "[8.8.8.8]",
            "fe80::1%eth0",
            "08.8.8.8",
            "host.example",
            "for=8.8.8.8",
        ] {
            assert_eq!(client("10.0.0.1", &[hop]), unreadable(0, hop), "{hop}");
        }
        // Bytes that are not text are unreadable too; a long hop is logged short.
        let lines: Vec<&[u8]> = vec![b"8.8.8.8, \xff\xfe"];
        assert!(matches!(
            policy().client_ip(ip("10.0.0.1"), &lines),
            Err(ForwardedError::Unreadable { position: 0, .. })
        ));
        let long = "x".repeat(10_000);
        let Err(ForwardedError::Unreadable { hop, .. }) = client("10.0.0.1", &[&long]) else {
            panic!("a long hop is unreadable");
        };
        assert_eq!(hop.len(), LOGGED_HOP_CHARS);
    }

    #[test]
    fn when_every_hop_is_a_trusted_proxy_the_left_most_is_the_client() {
        assert_eq!(client("10.0.0.1", &["10.0.0.2"]), Ok(ip("10.0.0.2")));
        assert_eq!(
            client("10.0.0.1", &["10.0.0.1, 10.0.0.2", "2001:db8::7"]),
            Ok(ip("10.0.0.1"))
        );
        // Still, an unreadable hop among them is refused.
        assert_eq!(client("10.0.0.1", &["x, 10.0.0.2"]), unreadable(1, "x"));
    }

    #[test]
    fn hops_are_read_as_ipv4_or_ipv6_with_or_without_a_port() {
        for (hop, expected) in [
            ("8.8.8.8", "8.8.8.8"),
            (" 8.8.8.8\t", "8.8.8.8"),
            ("8.8.8.8:5678", "8.8.8.8"),
            ("2001:db8:1::1", "2001:db8:1::1"),
            ("[2001:db8:1::1]", "2001:db8:1::1"),
            ("[2001:db8:1::1]:443", "2001:db8:1::1"),
            ("::ffff:8.8.8.8", "8.8.8.8"),
            ("[::ffff:8.8.8.8]:443", "8.8.8.8"),
        ] {
            assert_eq!(client("10.0.0.1", &[hop]), Ok(ip(expected)), "{hop}");
        }
        // A trusted IPv6 proxy, IPv4-mapped trusted hops.
        assert_eq!(
            client("2001:db8::1", &["8.8.8.8, [2001:db8::2]:80"]),
            Ok(ip("8.8.8.8"))
        );
        assert_eq!(
            client("10.0.0.1", &["8.8.8.8, ::ffff:10.0.0.2"]),
            Ok(ip("8.8.8.8"))
        );
    }
}
