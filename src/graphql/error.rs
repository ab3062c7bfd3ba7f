//! The one place where errors become GraphQL errors, each with a stable
//! `extensions.code` from a closed set.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

use crate::store::StoreError;

/// The closed set of `extensions.code` values clients may rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    Conflict,
    LimitExceeded,
    Timeout,
    /// A failure of ours or of the database: the message is generic, the cause is
    /// in the log under the request id.
    Internal,
    /// The database is unreachable; try again.
    Unavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::Timeout => "TIMEOUT",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

/// An error a resolver returns. Deliberately not `Display`: async-graphql turns
/// any `Display` into an error without a code, so the only way out is the
/// `From` below, which sets `extensions.code`.
#[derive(Debug)]
pub enum ApiError {
    /// A malformed argument: the message names it. Becomes `BAD_USER_INPUT`.
    BadInput {
        argument: &'static str,
        message: String,
    },
    /// The caller may not do this. Becomes `FORBIDDEN`.
    Forbidden(&'static str),
    /// A conflict with existing data. Becomes `CONFLICT`.
    Conflict(String),
    /// Over a configured limit. Becomes `LIMIT_EXCEEDED`.
    LimitExceeded(String),
    /// The database cannot be reached. Becomes `UNAVAILABLE`; details are logged.
    Unavailable,
    /// Anything else: logged with its cause, shown as a generic message.
    Internal(Arc<StoreError>),
}

impl ApiError {
    pub fn bad_input(argument: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadInput {
            argument,
            message: message.into(),
        }
    }

    /// The message clients see.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadInput { argument, message } => format!("{argument}: {message}"),
            ApiError::Forbidden(what) => format!("you are not allowed to {what}"),
            ApiError::Conflict(message) => message.clone(),
            ApiError::LimitExceeded(message) => message.clone(),
            ApiError::Unavailable => "the database is unavailable; try again shortly".into(),
            ApiError::Internal(_) => {
                "internal error; the request id in the response headers identifies it in the logs"
                    .into()
            }
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::BadInput { .. } => Code::BadUserInput,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::Conflict(_) => Code::Conflict,
            ApiError::LimitExceeded(_) => Code::LimitExceeded,
            ApiError::Unavailable => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

impl From<Arc<StoreError>> for ApiError {
    fn from(err: Arc<StoreError>) -> Self {
        match &*err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Conflict(message) => ApiError::Conflict(message.clone()),
            StoreError::Invalid(message) => ApiError::bad_input("after", message.clone()),
            StoreError::Query(cause) => {
                tracing::error!(error = %cause, "database statement failed");
                ApiError::Internal(err)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::from(Arc::new(err))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, e| {
            e.set("code", code.as_str());
            if let ApiError::BadInput { argument, .. } = &err {
                // `argument` first; `field` names the same input, for clients
                // that read that key.
                e.set("argument", *argument);
                e.set("field", *argument);
            }
        })
    }
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;

/// A request error for a failure of ours found before execution (its cause
/// is logged where it happened): `INTERNAL`, with the generic message.
pub fn internal_error() -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(
        "internal error; the request id in the response headers identifies it in the logs",
        None,
    );
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", Code::Internal.as_str());
    error.extensions = Some(ext);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let e: async_graphql::Error = ApiError::bad_input("id", "not an organization id").into();
        let ext = e.extensions.expect("extensions");
        assert_eq!(
            ext.get("code").map(|v| v.to_string()),
            Some("\"BAD_USER_INPUT\"".into())
        );
        for key in ["argument", "field"] {
            assert_eq!(ext.get(key).map(|v| v.to_string()), Some("\"id\"".into()));
        }
        assert_eq!(e.message, "id: not an organization id");
        let e: async_graphql::Error = ApiError::Forbidden("read the audit log").into();
        assert_eq!(
            e.extensions
                .and_then(|x| x.get("code").map(|v| v.to_string())),
            Some("\"FORBIDDEN\"".into())
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = StoreError::Query(sea_orm::DbErr::Custom("SELECT secret".into()));
        let e: async_graphql::Error = ApiError::from(cause).into();
        assert!(!e.message.contains("SELECT"));
    }
}
