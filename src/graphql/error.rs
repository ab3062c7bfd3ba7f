//! The one place where errors become GraphQL errors, each with a stable
//! `extensions.code` from the closed set [`Code`] (which `http::error` uses
//! for the error bodies it writes too).

use std::sync::Arc;

use async_graphql::ErrorExtensions;

use crate::store::StoreError;

/// Writes [`Code`] and its two lists from one table: the variant, its
/// string and its doc line are written once, and [`Code::ALL`] cannot miss
/// a variant.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The closed set of `extensions.code` values clients may rely on.
        /// Every error Backplane writes, GraphQL or HTTP, carries one of
        /// these, and nothing else; README lists them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The string clients see in `extensions.code`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    /// No valid token or session: the request never reached GraphQL (401).
    Unauthenticated => "UNAUTHENTICATED",
    /// The operation uses a right that needs a recent strong (multi-factor)
    /// sign-in, which the caller's token or session lacks (401 with RFC
    /// 9470's `insufficient_user_authentication` challenge);
    /// `extensions.permission` names the right, `acrValues` and `maxAge`
    /// what a new sign-in must meet.
    InsufficientAuthentication => "INSUFFICIENT_AUTHENTICATION",
    /// The caller may not do this (a guard), or the request is refused at
    /// the edge (network, cross-site) with 403.
    Forbidden => "FORBIDDEN",
    /// An argument or variable value is malformed; `extensions.argument`
    /// (and `field`) name it when one argument is to blame.
    BadUserInput => "BAD_USER_INPUT",
    /// Reserved: nothing returns it yet (a missing record is `null`).
    NotFound => "NOT_FOUND",
    /// The change conflicts with existing data or a newer version.
    Conflict => "CONFLICT",
    /// Over a configured limit (document, page, batch, requests in flight).
    LimitExceeded => "LIMIT_EXCEEDED",
    /// Reserved: nothing returns it yet (the request time limit is a bare 503).
    Timeout => "TIMEOUT",
    /// A failure of ours or of the database: the message is generic, the cause is
    /// in the log under the request id.
    Internal => "INTERNAL",
    /// The database (or the identity provider, or the audit log) is
    /// unreachable; try again.
    Unavailable => "UNAVAILABLE",
    /// The document is not GraphQL: it does not parse.
    GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
    /// The document parses but does not validate against the caller's
    /// schema: an unknown (or hidden) name, a wrong or missing variable, an
    /// operation that cannot be chosen.
    GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
    /// The HTTP request is not a GraphQL request: not JSON, or parameters
    /// of the wrong shape (400).
    BadRequest => "BAD_REQUEST",
    /// A mutation sent with `GET` (405).
    MethodNotAllowed => "METHOD_NOT_ALLOWED",
    /// `Accept` admits no media type `/graphql` writes (406).
    NotAcceptable => "NOT_ACCEPTABLE",
    /// A body that is not `application/json` in UTF-8 (415).
    UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
}

impl Code {
    /// The code whose string is `name`, if any.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The code an error carries, if it carries one of ours.
    pub fn of(error: &async_graphql::ServerError) -> Option<Code> {
        match error.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(s) => Code::from_name(s),
            async_graphql::Value::Enum(s) => Code::from_name(s.as_str()),
            _ => None,
        }
    }
}

/// A request error (no path: the operation never started) with `code`.
pub fn request_error(
    code: Code,
    message: impl Into<String>,
    pos: Option<async_graphql::Pos>,
) -> async_graphql::ServerError {
    with_code(async_graphql::ServerError::new(message, pos), code)
}

/// A document that does not parse, in one line: where, and what was
/// expected (pest's multi-line drawing is for terminals, not for a client's
/// error list).
pub fn parse_error(error: async_graphql::parser::Error) -> async_graphql::ServerError {
    use async_graphql::parser::Error as E;
    let message = match &error {
        E::Syntax { message, start, .. } => {
            let what = message
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("= "))
                .unwrap_or("unexpected input");
            format!(
                "Syntax error at line {}, column {}: {what}.",
                start.line, start.column
            )
        }
        E::RecursionLimitExceeded => "The document is nested too deeply to parse.".to_owned(),
        other => other.to_string(),
    };
    let pos = error.positions().next();
    request_error(Code::GraphqlParseFailed, message, pos)
}

/// `error` with `extensions.code` set to `code`.
pub fn with_code(mut error: async_graphql::ServerError, code: Code) -> async_graphql::ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    error
}

/// `error` as it is, or with `code` when it carries none: async-graphql's
/// own errors (parser, validator, executor) come without one.
pub fn or_code(error: async_graphql::ServerError, code: Code) -> async_graphql::ServerError {
    if error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
    {
        error
    } else {
        with_code(error, code)
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
    /// No record with the id given in `field`. Becomes `NOT_FOUND`.
    NotFound {
        field: &'static str,
        message: String,
    },
    /// A conflict with existing data. Becomes `CONFLICT`.
    Conflict(String),
    /// `expectedVersion` is stale. Becomes `CONFLICT`, with the record's
    /// version now in `extensions.currentVersion`.
    StaleVersion { message: String, current: i64 },
    /// Over a configured limit. Becomes `LIMIT_EXCEEDED`.
    LimitExceeded(String),
    /// The database cannot be reached. Becomes `UNAVAILABLE`; details are logged.
    Unavailable,
    /// Anything else: logged with its cause, shown as a generic message.
    Internal(Arc<StoreError>),
    /// A resolver did not find what every request carries (the principal,
    /// the loader, the store, the cursor keys) in the GraphQL context: a bug
    /// of ours. Becomes `INTERNAL`; logged with what was missing.
    MissingContext(&'static str),
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
            ApiError::NotFound { field, message } => format!("{field}: {message}"),
            ApiError::Conflict(message) | ApiError::StaleVersion { message, .. } => message.clone(),
            ApiError::LimitExceeded(message) => message.clone(),
            ApiError::Unavailable => "the database is unavailable; try again shortly".into(),
            ApiError::Internal(_) | ApiError::MissingContext(_) => INTERNAL_MESSAGE.into(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::BadInput { .. } => Code::BadUserInput,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::NotFound { .. } => Code::NotFound,
            ApiError::Conflict(_) | ApiError::StaleVersion { .. } => Code::Conflict,
            ApiError::LimitExceeded(_) => Code::LimitExceeded,
            ApiError::Unavailable => Code::Unavailable,
            ApiError::Internal(_) | ApiError::MissingContext(_) => Code::Internal,
        }
    }
}

/// The one conversion of store errors. A loader's failure arrives here once
/// for every resolver that waited on its batch, all holding the same `Arc`:
/// it is logged by the first only ([`crate::store::Logged`]).
impl From<Arc<StoreError>> for ApiError {
    fn from(err: Arc<StoreError>) -> Self {
        match &*err {
            StoreError::Unavailable(cause, logged) => {
                if logged.first_time() {
                    tracing::warn!(error = %cause, "database unavailable");
                }
                ApiError::Unavailable
            }
            StoreError::Conflict(message) => ApiError::Conflict(message.clone()),
            // The same words as a cursor that does not open (`pagination`):
            // the client learns nothing of what the cursor held.
            StoreError::BadCursor => {
                ApiError::bad_input("after", "not a cursor of this list and order")
            }
            StoreError::Query(cause, logged) => {
                if logged.first_time() {
                    tracing::error!(error = %cause, "database statement failed");
                }
                ApiError::Internal(err)
            }
            // Seeding and pruning are not a request's business; should one reach
            // a request, it is ours.
            StoreError::AlreadySeeded { .. }
            | StoreError::SeedIncomplete(_)
            | StoreError::Unvouched(_) => {
                tracing::error!(error = %err, "store operation failed");
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
        if let ApiError::MissingContext(what) = &err {
            tracing::error!(
                missing = *what,
                "request data missing from the GraphQL context"
            );
        }
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, e| {
            e.set("code", code.as_str());
            if let ApiError::BadInput { argument, .. } = &err {
                // `argument` first; `field` names the same input, for clients
                // that read that key.
                e.set("argument", *argument);
                e.set("field", *argument);
            }
            if let ApiError::NotFound { field, .. } = &err {
                e.set("field", *field);
            }
            if let ApiError::StaleVersion { current, .. } = &err {
                e.set("field", "expectedVersion");
                e.set("currentVersion", *current);
            }
        })
    }
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;

/// A request error for a failure of ours found before execution (its cause
/// is logged where it happened): `INTERNAL`, with the generic message.
pub fn internal_error() -> async_graphql::ServerError {
    request_error(Code::Internal, INTERNAL_MESSAGE, None)
}

/// What clients read of an internal error: nothing of its cause.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the request id in the response headers identifies it in the logs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_string() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} is the string of two codes");
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name} is not SCREAMING_SNAKE_CASE"
            );
            assert_eq!(Code::from_name(name), Some(*code));
        }
        assert_eq!(Code::from_name("SOMETHING_ELSE"), None);
        for (code, name) in [
            (Code::GraphqlParseFailed, "GRAPHQL_PARSE_FAILED"),
            (Code::GraphqlValidationFailed, "GRAPHQL_VALIDATION_FAILED"),
            (Code::BadUserInput, "BAD_USER_INPUT"),
            (Code::Internal, "INTERNAL"),
        ] {
            assert_eq!(code.as_str(), name);
        }
    }

    /// README's table of codes names every code, and no other.
    #[test]
    fn readme_lists_every_code() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Error codes")
            .nth(1)
            .and_then(|s| s.split("\n#").next())
            .expect("README has an `### Error codes` section");
        let listed: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all, "README's error codes, in the enum's order");
    }

    #[test]
    fn request_errors_carry_their_code_and_keep_one_they_have() {
        let code = |e: &async_graphql::ServerError| Code::of(e);
        let e = request_error(Code::LimitExceeded, "too long", None);
        assert_eq!(code(&e), Some(Code::LimitExceeded));
        let e = or_code(e, Code::GraphqlValidationFailed);
        assert_eq!(code(&e), Some(Code::LimitExceeded));
        let e = or_code(
            async_graphql::ServerError::new("Unknown field", None),
            Code::GraphqlValidationFailed,
        );
        assert_eq!(code(&e), Some(Code::GraphqlValidationFailed));
        assert_eq!(code(&internal_error()), Some(Code::Internal));
    }

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

    fn code_of(e: &async_graphql::Error) -> Option<String> {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code").map(|v| v.to_string()))
    }

    #[test]
    fn store_errors_become_the_code_of_what_happened() {
        let e: async_graphql::Error = ApiError::from(StoreError::BadCursor).into();
        assert_eq!(code_of(&e), Some("\"BAD_USER_INPUT\"".into()));
        assert_eq!(e.message, "after: not a cursor of this list and order");
        let ext = e.extensions.as_ref().expect("extensions");
        for key in ["argument", "field"] {
            assert_eq!(
                ext.get(key).map(|v| v.to_string()),
                Some("\"after\"".into())
            );
        }
        let seeded = StoreError::AlreadySeeded { organizations: 3 };
        assert!(seeded.to_string().contains("already seeded"));
        let e: async_graphql::Error = ApiError::from(seeded).into();
        assert_eq!(code_of(&e), Some("\"INTERNAL\"".into()));
        let down = StoreError::Unavailable(
            sea_orm::DbErr::Custom("connection refused".into()),
            Default::default(),
        );
        let e: async_graphql::Error = ApiError::from(down).into();
        assert_eq!(code_of(&e), Some("\"UNAVAILABLE\"".into()));
    }

    /// A resolver that finds no store, loader or principal in its context
    /// answers `INTERNAL` without saying what was missing.
    #[tokio::test]
    async fn missing_context_is_internal() {
        let schema = crate::graphql::build_schema(None, Default::default(), Default::default());
        let response = schema
            .execute(
                async_graphql::Request::new("{ organizations(first: 1) { nodes { id } } }")
                    .data(crate::identity::Principal::demo_admin()),
            )
            .await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        let error = &response.errors[0];
        assert_eq!(Code::of(error), Some(Code::Internal));
        assert_eq!(error.message, INTERNAL_MESSAGE);
        let e: async_graphql::Error = ApiError::MissingContext("loader").into();
        assert_eq!(code_of(&e), Some("\"INTERNAL\"".into()));
        assert!(!e.message.contains("loader"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = StoreError::Query(
            sea_orm::DbErr::Custom("SELECT secret".into()),
            Default::default(),
        );
        let e: async_graphql::Error = ApiError::from(cause).into();
        assert!(!e.message.contains("SELECT"));
    }
}
