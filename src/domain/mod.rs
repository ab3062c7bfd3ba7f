//! Business operations, with no GraphQL in them: the rules of every change
//! live here once. The single-record engine (`change`) and its operations
//! (`organizations`, `billing`, `tickets`); the bulk engine and the bulk
//! operations it runs (status transitions, flags, assignments, voiding).

pub mod billing;
pub mod bulk;
pub mod change;
pub mod idempotency;
pub mod operations;
pub mod organizations;
pub mod tickets;

/// Why a business operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// More items than a call may carry.
    #[error("{given} ids given; a call may carry at most {max}")]
    TooManyItems { given: usize, max: usize },
    /// A required input is missing or malformed.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The idempotency key was used before with another input.
    #[error(
        "idempotencyKey {0:?} was already used with a different input; use a new key for a new change"
    )]
    KeyReused(String),
    /// No record with the given id.
    #[error("{field}: no such {what}")]
    NotFound {
        field: &'static str,
        what: &'static str,
    },
    /// `expectedVersion` is not the record's current version: somebody
    /// changed it since the caller read it.
    #[error(
        "the record changed since you read it (it is at version {current}); read it again and retry"
    )]
    StaleVersion { current: i64 },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
