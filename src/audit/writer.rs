//! The bounded audit writer for read events.
//!
//! Requests hand their event to one background task through a bounded channel
//! and wait for it to be committed; the task commits whatever has queued up in
//! one transaction (group commit), so a busy server pays one chain append per
//! batch, not per request. It fails closed: when the queue is full or the
//! database refuses, the request is told so and withholds its answer rather than
//! answer unrecorded. Dropping every handle (shutdown) lets the task drain what
//! is queued, then stop.

use sea_orm::DbBackend;
use tokio::sync::{mpsc, oneshot};

use crate::store::audit::{NewAuditEvent, append_after, append_now};
use crate::store::{Store, StoreError};

/// Events one transaction commits at most.
const MAX_BATCH: usize = 256;

/// Why an event was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log cannot keep up")]
    Overloaded,
    #[error("the audit log could not be written")]
    WriteFailed,
}

type Job = (NewAuditEvent, oneshot::Sender<Result<(), AuditError>>);

/// A place held in the writer's queue ([`AuditWriter::reserve`]).
pub struct Reserved {
    permit: mpsc::OwnedPermit<Job>,
}

impl Reserved {
    /// Records `event` in the place held, and waits until it is committed.
    pub async fn record(self, event: NewAuditEvent) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.permit.send((event, ack));
        done.await.unwrap_or(Err(AuditError::WriteFailed))
    }
}

/// A handle to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    /// Bounded: its capacity is how many events may wait for the database before
    /// requests are refused.
    queue: mpsc::Sender<Job>,
    /// Events committed so far (the checkpoints count them).
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl AuditWriter {
    /// Starts the writer task; it ends once every handle is dropped and the queue
    /// is drained.
    pub fn spawn(store: Store, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, mut jobs) = mpsc::channel::<Job>(capacity.max(1));
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = written.clone();
        let task = tokio::spawn(async move {
            let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            // The batch taken apart (the events are written, not copied).
            let mut events: Vec<NewAuditEvent> = Vec::with_capacity(MAX_BATCH);
            let mut acks = Vec::with_capacity(MAX_BATCH);
            // The hash of the last row this task appended: the next batch follows
            // it in one statement while no other writer has appended since.
            let mut head: Option<String> = None;
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                for (event, ack) in batch.drain(..) {
                    events.push(event);
                    acks.push(ack);
                }
                let result = append_batch(&store, &mut head, &events).await;
                match &result {
                    Err(err) => {
                        tracing::error!(error = %err, events = events.len(), "audit events could not be written; their requests are refused")
                    }
                    Ok(()) => {
                        counter
                            .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                for (event, ack) in events.drain(..).zip(acks.drain(..)) {
                    if result.is_ok() {
                        log_event(&event);
                    }
                    let _ = ack.send(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|_| AuditError::WriteFailed),
                    );
                }
            }
            tracing::info!("audit writer drained and stopped");
        });
        (Self { queue, written }, task)
    }

    /// Events this writer committed so far.
    pub fn written(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.written.clone()
    }

    /// A place in the queue, held for an event to come (an export's, written
    /// when it ends): refused when the writer cannot take one now.
    pub fn reserve(&self) -> Result<Reserved, AuditError> {
        self.queue
            .clone()
            .try_reserve_owned()
            .map(|permit| Reserved { permit })
            .map_err(|_| AuditError::Overloaded)
    }

    /// Records `event` and waits until it is committed.
    pub async fn record(&self, event: NewAuditEvent) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.queue
            .try_send((event, ack))
            .map_err(|_| AuditError::Overloaded)?;
        done.await.unwrap_or(Err(AuditError::WriteFailed))
    }

    /// Events waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Appends `events` after `head` in one statement when it still is the chain's
/// head, else in a transaction that reads the head; keeps `head` up to date.
async fn append_batch(
    store: &Store,
    head: &mut Option<String>,
    events: &[NewAuditEvent],
) -> Result<(), StoreError> {
    let postgres = store.db().get_database_backend() == DbBackend::Postgres;
    if postgres && let Some(last) = head.take() {
        if let Some(new_head) = append_after(store, &last, events).await? {
            *head = Some(new_head);
            metrics::counter!("backplane_audit_batches_total", "append" => "one_statement")
                .increment(1);
            return Ok(());
        }
        tracing::debug!(
            events = events.len(),
            "another writer appended to the audit chain; appending under the chain lock"
        );
    }
    *head = append_now(store, events).await?;
    metrics::counter!("backplane_audit_batches_total", "append" => "locked").increment(1);
    Ok(())
}

/// Every recorded event also goes to the log, as structured fields a SIEM can
/// take (with `--log-format json`). Variables are as the event keeps them (`audit::values`).
pub fn log_event(e: &NewAuditEvent) {
    tracing::info!(
        target: "backplane::audit",
        actor = %e.actor_subject,
        roles = %e.actor_roles,
        client = e.client_addr.as_deref().unwrap_or(""),
        request_id = e.request_id.as_deref().unwrap_or(""),
        operation_type = %e.operation_type,
        operation_name = e.operation_name.as_deref().unwrap_or(""),
        document_hash = %e.document_hash,
        sensitive_fields = %e.sensitive_fields,
        outcome = %e.outcome,
        duration_ms = e.duration_ms,
        "audit event"
    );
}
