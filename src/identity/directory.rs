//! The staff directory: every person or script that authenticates is recorded as
//! a StaffMember (subject, email, name, roles, last seen), so tickets can be
//! assigned to them and the audit log can name them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Principal, PrincipalKind};
use crate::store::{Store, people};

/// How often one principal's row is refreshed: at most one write per principal
/// per interval, not one per request.
const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Remembers whom it recorded lately.
#[derive(Default)]
pub struct StaffDirectory {
    recent: Mutex<HashMap<String, (String, Instant)>>,
}

impl StaffDirectory {
    /// Records `principal` unless it was recorded lately with the same roles.
    /// Best effort: a failure is logged and the request goes on.
    pub async fn seen(&self, store: &Store, principal: &Principal) {
        if principal.kind == PrincipalKind::Demo {
            return;
        }
        let roles = principal
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        {
            let Ok(recent) = self.recent.lock() else {
                return;
            };
            if let Some((known_roles, at)) = recent.get(&principal.subject)
                && *known_roles == roles
                && at.elapsed() < REFRESH_EVERY
            {
                return;
            }
        }
        let email = principal.email.clone().unwrap_or_default();
        let name = principal
            .name
            .clone()
            .unwrap_or_else(|| principal.subject.clone());
        match people::upsert_staff(
            store,
            &principal.subject,
            &email,
            &name,
            &roles,
            chrono::Utc::now(),
        )
        .await
        {
            Ok(()) => {
                if let Ok(mut recent) = self.recent.lock() {
                    if recent.len() > 10_000 {
                        recent.clear();
                    }
                    recent.insert(principal.subject.clone(), (roles, Instant::now()));
                }
            }
            Err(err) => tracing::warn!(error = %err, "recording a staff member failed"),
        }
    }
}
