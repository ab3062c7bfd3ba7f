//! Prometheus metrics at `/metrics`: requests by route and status, GraphQL
//! operations by name and outcome with latency histograms, errors by code, SQL
//! statements per request, the database pool, the audit queue, bulk items.
//!
//! Operation names come from clients; only well-formed names become labels,
//! and at most [`MAX_OPERATION_NAMES`] distinct ones (then `other`), so a
//! client cannot blow up the number of series.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Distinct operation names kept as labels.
pub const MAX_OPERATION_NAMES: usize = 200;

/// The process's recorder (installed once; every server in the process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let counts = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 100.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("backplane_sql_statements_per_request".into()),
                    &counts,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (never in the binary): keep a
            // private one so `/metrics` still answers.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// A label for a client-given operation name.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|n| {
        !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) else {
        return if name.is_some_and(|n| !n.is_empty()) {
            "other".into()
        } else {
            "anonymous".into()
        };
    };
    let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else {
        return "other".into();
    };
    if seen.contains(name) {
        return name.to_owned();
    }
    if seen.len() < MAX_OPERATION_NAMES {
        seen.insert(name.to_owned());
        return name.to_owned();
    }
    "other".into()
}

tokio::task_local! {
    /// Statements sent by the current request's task.
    static REQUEST_STATEMENTS: Arc<AtomicU64>;
}

/// Runs `f` counting the SQL statements it sends (see [`statement_sent`]).
pub async fn counting_statements<F: std::future::Future>(f: F) -> (u64, F::Output) {
    let counter = Arc::new(AtomicU64::new(0));
    let output = REQUEST_STATEMENTS.scope(counter.clone(), f).await;
    (counter.load(Ordering::Relaxed), output)
}

/// Called for every statement the store sends.
pub fn statement_sent() {
    let _ = REQUEST_STATEMENTS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("Lookup")), "Lookup");
        assert_eq!(operation_label(Some("a b")), "other");
        assert_eq!(operation_label(Some(&"x".repeat(65))), "other");
        for i in 0..(MAX_OPERATION_NAMES + 10) {
            let _ = operation_label(Some(&format!("Op{i}")));
        }
        assert_eq!(operation_label(Some("NeverSeenBefore")), "other");
        assert_eq!(operation_label(Some("Lookup")), "Lookup");
    }
}
