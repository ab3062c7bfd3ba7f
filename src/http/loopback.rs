//! `backplane dev` answers requests addressed to loopback only.
//!
//! In `dev` a request without a token acts as the demo administrator, and the
//! listener on loopback does not keep web pages out: through DNS rebinding a
//! page of `evil.example` that the developer visits has its name re-resolved
//! to 127.0.0.1, and the browser then sends that page's requests — same-origin
//! for the page, so no cross-site check sees them — to this server, with
//! `Host: evil.example`. The `Host` is the one thing such a request cannot
//! change, so `dev` refuses every request (every route, the probes too) whose
//! `Host` is not a loopback name or address: 403 with a `FORBIDDEN` error, like
//! the network allowlist (not 421 Misdirected Request, which invites a client
//! to retry on another connection).
//!
//! Loopback names and addresses: `localhost` and any name under `.localhost`
//! (RFC 6761 §6.3: resolvers and browsers answer them with loopback themselves
//! and never ask the DNS, so nobody can point them elsewhere), an IPv4 address
//! in 127.0.0.0/8 and `[::1]`, each with or without a port. A request without a
//! `Host`, with two, or whose request target names another host is refused
//! too. `serve` does not look: there the token decides.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Mode;

/// In `dev`, refuses requests not addressed to a loopback name or address.
pub async fn dev_hosts_only(State(mode): State<Mode>, req: Request, next: Next) -> Response {
    if mode == Mode::Dev && !addressed_to_loopback(&req) {
        let host: String = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect();
        tracing::warn!(%host, "request refused: `backplane dev` answers loopback host names only");
        return super::error::HttpError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::graphql::error::Code::Forbidden,
            "`backplane dev` answers requests to localhost, 127.0.0.1 or [::1] only: open it through one of them",
        )
        .refusal(crate::audit::refusals::reason::FOREIGN_HOST)
        .into_response();
    }
    next.run(req).await
}

/// Whether the request names this machine's loopback, and nothing else, as
/// the host it is for.
fn addressed_to_loopback(req: &Request) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return false;
    }
    let host_ok = host.map(|h| h.to_str().is_ok_and(is_loopback_authority));
    match req.uri().authority() {
        // The request target's authority wins over `Host` (RFC 9112 §3.2.2):
        // both must be loopback.
        Some(authority) => is_loopback_authority(authority.as_str()) && host_ok != Some(false),
        None => host_ok == Some(true),
    }
}

/// `host[:port]` whose host is a loopback name or address.
fn is_loopback_authority(authority: &str) -> bool {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        return port.is_none_or(is_port)
            && inside
                .parse::<std::net::Ipv6Addr>()
                .is_ok_and(|ip| ip.is_loopback());
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if !port.is_none_or(is_port) {
        return false;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip.is_loopback();
    }
    let host = host.to_ascii_lowercase();
    let labels_ok = host
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    labels_ok && (host == "localhost" || host.ends_with(".localhost"))
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:8080",
            "backplane.localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.255.0.9:1",
            "[::1]",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:8080",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for refused in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evillocalhost",
            "127.0.0.1.nip.io",
            "128.0.0.1",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "2130706433",
            "0x7f000001",
            "[::ffff:127.0.0.1]",
            "[::2]",
            "[::1]8080",
            "[::1",
            "localhost:",
            "localhost:80:80",
            "localhost:8o",
            "localhost:123456",
            "localhost:8080@evil.example",
            "user@localhost",
            "local host",
            "localhost.",
            ".localhost",
            "a..localhost",
        ] {
            assert!(!is_loopback_authority(refused), "{refused}");
        }
    }
}
