//! Business operations, with no GraphQL in them: the bulk engine and the
//! operations it runs (status transitions, flags, assignments, voiding).

pub mod bulk;
pub mod operations;

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
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
