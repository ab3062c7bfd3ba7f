//! Idempotency keys, for the bulk and the single-record engines alike: a
//! replay with the same caller, key and input answers the first result
//! without changing anything again; the same key with another input is
//! refused. The first result is stored in the change's own transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DomainError;
use crate::store::{Store, bulk as keys};

/// One call's key, checked: who asks, the key, the operation and the hash
/// of its input.
pub struct Idempotency<'a> {
    pub principal: &'a str,
    pub key: &'a str,
    pub operation: &'static str,
    pub hash: &'a str,
}

impl<'a> Idempotency<'a> {
    /// The key of a call, if it gives one (blank counts as none); at most
    /// 200 characters.
    pub fn of(
        principal: &'a str,
        key: Option<&'a str>,
        operation: &'static str,
        hash: &'a str,
    ) -> Result<Option<Self>, DomainError> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        if key.len() > 200 {
            return Err(DomainError::Invalid {
                field: "idempotencyKey",
                message: "at most 200 characters".into(),
            });
        }
        Ok(Some(Idempotency {
            principal,
            key,
            operation,
            hash,
        }))
    }

    /// The first call's result, when this is a replay of it.
    pub async fn replayed<T: DeserializeOwned>(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Option<T>, DomainError> {
        let Some(stored) = keys::find_idempotent(store, self.principal, self.key, now).await?
        else {
            return Ok(None);
        };
        if stored.request_hash != self.hash || stored.operation != self.operation {
            return Err(DomainError::KeyReused(self.key.to_owned()));
        }
        serde_json::from_str(&stored.result)
            .map(Some)
            .map_err(|e| DomainError::Invalid {
                field: "idempotencyKey",
                message: format!("the stored result is unreadable: {e}"),
            })
    }

    /// Stores `result` as the answer to every replay, for `ttl`, in `txn`.
    pub async fn remember<T: Serialize>(
        &self,
        txn: &DatabaseTransaction,
        result: &T,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), DomainError> {
        let result = serde_json::to_string(result).map_err(|e| DomainError::Invalid {
            field: "idempotencyKey",
            message: e.to_string(),
        })?;
        let ttl = chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(24));
        keys::store_idempotent(
            txn,
            self.principal,
            self.key,
            self.operation,
            self.hash,
            &result,
            now,
            now + ttl,
        )
        .await?;
        Ok(())
    }
}
