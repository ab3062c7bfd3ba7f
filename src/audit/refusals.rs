//! Requests refused before the GraphQL gate — a bad or missing token, a
//! foreign network or host, a cross-site form, an oversized body, a server at
//! its bound, a request that is not a GraphQL request — recorded in the audit
//! log, folded so that a flood cannot swamp it.
//!
//! The layer that refuses a request puts a [`Refused`] on its response; the
//! network layer (`http::network::enforce`, the outermost that knows the
//! client's address) hands it to [`Refusals::note`] with the address and the
//! route. A 413 (the body limit's own answer) needs no mark.
//!
//! Folding: refusals of one source (client address) for one reason are one
//! fold. Its first refusal is written at once, as an event of its own; the
//! ones after it within the fold interval (`BACKPLANE_AUDIT_FOLD_SECS`) are
//! written together at the interval's end, as one event with their count. A
//! steady flood from one address thus costs two events per interval, and
//! the counts of the events add up to the refusals. At most
//! [`MAX_SOURCES`] sources are told apart per interval; refusals from more
//! are folded under the source `*`.
//!
//! An event says what is known, and nothing a client could plant a secret
//! in: the address, the route, the reason and the fixed message of the
//! refusal, the request id of the first, and the subject only where a
//! signature (the token's, or the session cookie's seal) vouched for it.
//! Nothing is waited for: the refused request is answered at once, and the
//! events follow through the audit writer. An event the writer cannot take
//! now is kept and tried again at the next interval.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;

use super::AuditWriter;
use crate::store::audit::NewAuditEvent;

/// Sources told apart in one interval; more are folded under `*`.
pub const MAX_SOURCES: usize = 10_000;

/// Routes, and subjects, one event names at most.
const MAX_NAMED: usize = 8;

/// Events written at once (the writer batches what arrives together).
const WRITTEN_AT_ONCE: usize = 64;

/// The operation type of a refusal's event: the request never became an
/// operation.
pub const OPERATION_TYPE: &str = "request";

/// Why a request was refused, as the layer that refused it says it: put on
/// the response (`Response::extensions`) for the network layer to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// A short, fixed name (`bad_signature`, `foreign_network`, …).
    pub reason: &'static str,
    /// The message the client was given (fixed texts: never an echo).
    pub message: String,
    /// Who asked, where a signature vouches for it.
    pub subject: Option<String>,
}

impl Refused {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            subject: None,
        }
    }
}

/// The reasons of refusals outside authentication (`IdentityError::reason`
/// names those).
pub mod reason {
    /// The client's address is outside `BACKPLANE_ALLOWED_NETWORKS`.
    pub const FOREIGN_NETWORK: &str = "foreign_network";
    /// A trusted proxy named no client that can be read.
    pub const UNREADABLE_CLIENT: &str = "unreadable_client";
    /// In `dev`, a request for a host name that is not loopback.
    pub const FOREIGN_HOST: &str = "foreign_host";
    /// A cookie (or, in `dev`, token-less) request from another site's page.
    pub const CROSS_SITE: &str = "cross_site";
    /// The body is over `BACKPLANE_MAX_BODY_BYTES`.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The server is at `BACKPLANE_MAX_CONCURRENT_REQUESTS`.
    pub const BUSY: &str = "busy";
    /// The caller runs as many exports as it may.
    pub const TOO_MANY_EXPORTS: &str = "too_many_exports";
    /// Not a GraphQL request: a method, media type, body or batch refused.
    pub const MALFORMED_REQUEST: &str = "malformed_request";
    /// An operation over its caller's cost budget per minute (429).
    pub const OVER_BUDGET: &str = "over_budget";
    /// The identity provider answered a browser sign-in with an error.
    pub const SIGN_IN_REFUSED: &str = "sign_in_refused";
    /// A sign-in answer whose state is not the browser's.
    pub const SIGN_IN_STATE_MISMATCH: &str = "sign_in_state_mismatch";
    /// A sign-in answer without a sign-in of this browser pending.
    pub const SIGN_IN_NOT_PENDING: &str = "sign_in_not_pending";
    /// A sign-in answer that could not be verified.
    pub const SIGN_IN_UNVERIFIED: &str = "sign_in_unverified";
}

/// The refusals of one source for one reason, since the fold opened.
#[derive(Clone, Debug)]
struct Fold {
    /// When the first refusal of the fold came.
    opened: DateTime<Utc>,
    /// When the latest came.
    last: DateTime<Utc>,
    /// Refusals not yet written.
    pending: u64,
    /// Whether the fold's first event is written (the rest wait for the
    /// interval's end).
    announced: bool,
    status: u16,
    message: String,
    request_id: Option<String>,
    routes: BTreeSet<String>,
    subjects: BTreeSet<String>,
    /// A refusal without a vouched subject was folded in.
    anonymous: bool,
}

/// The folds of this interval, and the writer's wake-up.
#[derive(Debug)]
pub struct Refusals {
    folds: Mutex<HashMap<(String, &'static str), Fold>>,
    /// A fold opened: its first event is due.
    opened: Notify,
    interval: Duration,
}

impl Refusals {
    /// Folds of `interval` (at least a second).
    pub fn new(interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            folds: Mutex::new(HashMap::new()),
            opened: Notify::new(),
            interval: interval.max(Duration::from_secs(1)),
        })
    }

    /// Notes a refusal of `source`'s request for `route` (`POST /graphql`),
    /// answered `status`.
    pub fn note(
        &self,
        source: IpAddr,
        route: &str,
        status: u16,
        refused: &Refused,
        request_id: Option<&str>,
    ) {
        metrics::counter!("backplane_refusals_total", "reason" => refused.reason).increment(1);
        let now = Utc::now();
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        let mut source = source.to_string();
        if folds.len() >= MAX_SOURCES && !folds.contains_key(&(source.clone(), refused.reason)) {
            source = "*".into();
        }
        let fold = folds
            .entry((source, refused.reason))
            .or_insert_with(|| Fold {
                opened: now,
                last: now,
                pending: 0,
                announced: false,
                status,
                message: refused.message.clone(),
                request_id: request_id.map(str::to_owned),
                routes: BTreeSet::new(),
                subjects: BTreeSet::new(),
                anonymous: false,
            });
        let new = fold.pending == 0 && !fold.announced;
        fold.pending += 1;
        fold.last = now;
        if fold.routes.len() < MAX_NAMED {
            fold.routes.insert(route.to_owned());
        }
        match &refused.subject {
            Some(subject) if fold.subjects.len() < MAX_NAMED => {
                fold.subjects.insert(subject.clone());
            }
            Some(_) => {}
            None => fold.anonymous = true,
        }
        drop(folds);
        if new {
            self.opened.notify_one();
        }
    }

    /// Writes the folds' events through `writer` until `stop` resolves, then
    /// writes what is left and returns (dropping its writer handle).
    pub async fn run(
        self: Arc<Self>,
        writer: AuditWriter,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.opened.notified() => self.write(&writer, false).await,
                _ = tick.tick() => self.write(&writer, true).await,
                _ = &mut stop => break,
            }
        }
        self.write(&writer, true).await;
    }

    /// Writes the first events of folds just opened; with `close`, every
    /// fold's pending count, and the interval starts afresh. What the writer
    /// refuses stays for the next time.
    async fn write(&self, writer: &AuditWriter, close: bool) {
        // Each due fold as it stood, with the count its event carries.
        let due: Vec<((String, &'static str), Fold)> = {
            let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            for (key, fold) in folds.iter_mut() {
                if fold.pending > 0 && (close || !fold.announced) {
                    due.push((key.clone(), fold.clone()));
                    fold.pending = 0;
                    fold.announced = true;
                }
            }
            if close {
                folds.clear();
            }
            due
        };
        let mut unwritten = 0u64;
        for chunk in due.chunks(WRITTEN_AT_ONCE) {
            let results = futures::future::join_all(
                chunk
                    .iter()
                    .map(|((source, reason), fold)| writer.record(event(source, reason, fold))),
            )
            .await;
            for ((key, fold), result) in chunk.iter().zip(results) {
                if let Err(err) = result {
                    unwritten += fold.pending;
                    self.put_back(key, fold);
                    tracing::debug!(error = %err, "a refusal's audit event waits for the next interval");
                }
            }
        }
        if unwritten > 0 {
            tracing::warn!(
                refusals = unwritten,
                "the audit log could not take every refusal now; they are written at the next interval"
            );
        }
    }

    /// Counts the refusals of `unwritten` again, as not yet written.
    fn put_back(&self, key: &(String, &'static str), unwritten: &Fold) {
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        match folds.get_mut(key) {
            Some(fold) => {
                fold.pending += unwritten.pending;
                fold.opened = fold.opened.min(unwritten.opened);
                fold.anonymous |= unwritten.anonymous;
                for subject in &unwritten.subjects {
                    if fold.subjects.len() < MAX_NAMED {
                        fold.subjects.insert(subject.clone());
                    }
                }
            }
            None => {
                let mut fold = unwritten.clone();
                fold.announced = true;
                folds.insert(key.clone(), fold);
            }
        }
    }
}

/// The event of `fold`'s pending refusals.
fn event(source: &str, reason: &'static str, fold: &Fold) -> NewAuditEvent {
    // The subject, when every refusal folded in was vouched for by the same.
    let subject = match (fold.anonymous, fold.subjects.len()) {
        (false, 1) => fold.subjects.iter().next().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut refused = json!({
        "reason": reason,
        "status": fold.status,
        "message": fold.message,
        "count": fold.pending,
        "from": fold.opened.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "until": fold.last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "routes": fold.routes,
    });
    if subject.is_empty() && !fold.subjects.is_empty() {
        refused["subjects"] = json!(fold.subjects);
    }
    NewAuditEvent {
        occurred_at: fold.last,
        actor_subject: subject,
        actor_roles: String::new(),
        client_addr: Some(source.to_owned()),
        request_id: fold.request_id.clone(),
        operation_type: OPERATION_TYPE.into(),
        operation_name: fold.routes.iter().next().cloned(),
        document_hash: String::new(),
        variables: "{}".into(),
        sensitive_fields: "[]".into(),
        outcome: super::Outcome::Denied.as_str().into(),
        duration_ms: 0,
        details: Some(json!({ "refused": refused }).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn refused(reason: &'static str, subject: Option<&str>) -> Refused {
        Refused {
            reason,
            message: "no".into(),
            subject: subject.map(str::to_owned),
        }
    }

    /// Notes a refusal of `reason` from `source`, answered 401.
    fn note(
        r: &Refusals,
        source: IpAddr,
        route: &str,
        reason: &'static str,
        subject: Option<&str>,
    ) {
        r.note(source, route, 401, &refused(reason, subject), None);
    }

    fn pending(r: &Refusals) -> Vec<(String, &'static str, u64, bool)> {
        let folds = r.folds.lock().expect("lock");
        let mut v: Vec<_> = folds
            .iter()
            .map(|((s, reason), f)| (s.clone(), *reason, f.pending, f.announced))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn one_fold_per_source_and_reason() {
        let r = Refusals::new(Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        let b: IpAddr = "10.0.0.2".parse().expect("address");
        for _ in 0..5 {
            note(&r, a, "POST /graphql", "bad_signature", None);
        }
        note(&r, a, "POST /export", "expired_token", Some("s"));
        note(&r, b, "POST /graphql", "bad_signature", None);
        assert_eq!(
            pending(&r),
            vec![
                ("10.0.0.1".into(), "bad_signature", 5, false),
                ("10.0.0.1".into(), "expired_token", 1, false),
                ("10.0.0.2".into(), "bad_signature", 1, false),
            ]
        );
    }

    #[test]
    fn past_the_bound_sources_fold_under_a_star() {
        let r = Refusals::new(Duration::from_secs(60));
        for n in 0..(MAX_SOURCES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            r.note(
                ip,
                "GET /graphql",
                403,
                &refused("foreign_network", None),
                None,
            );
        }
        let folds = r.folds.lock().expect("lock");
        assert_eq!(folds.len(), MAX_SOURCES + 1);
        assert_eq!(folds[&("*".to_owned(), "foreign_network")].pending, 10);
    }

    #[test]
    fn the_subject_is_named_only_when_every_refusal_had_the_same() {
        let r = Refusals::new(Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        note(&r, a, "POST /graphql", "expired_token", Some("ann"));
        note(&r, a, "POST /graphql", "expired_token", Some("ann"));
        let event_of = |r: &Refusals, reason| {
            let folds = r.folds.lock().expect("lock");
            event("10.0.0.1", reason, &folds[&("10.0.0.1".to_owned(), reason)])
        };
        assert_eq!(event_of(&r, "expired_token").actor_subject, "ann");
        note(&r, a, "POST /graphql", "expired_token", Some("bob"));
        let e = event_of(&r, "expired_token");
        assert_eq!(e.actor_subject, "");
        let details: Value =
            serde_json::from_str(e.details.as_deref().expect("details")).expect("JSON");
        assert_eq!(details["refused"]["subjects"], json!(["ann", "bob"]));
        assert_eq!(details["refused"]["count"], 3);
        assert_eq!(e.operation_type, OPERATION_TYPE);
        assert_eq!(e.outcome, "denied");
        note(&r, a, "POST /graphql", "bad_signature", Some("x"));
        note(&r, a, "POST /graphql", "bad_signature", None);
        assert_eq!(event_of(&r, "bad_signature").actor_subject, "");
    }
}
