//! Single-record changes of an organization: its status, an internal flag,
//! its trial. The rules are the bulk changes' (`operations`) where there is
//! one.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveEnum, ActiveValue::Set, DatabaseTransaction, IntoActiveModel};
use serde::Serialize;

use super::DomainError;
use super::change::{
    Actor, Applied, Asked, Operation, RecordChange, expect_version, required_reason,
};
use super::operations::{Flag, organization_transition_allowed};
use crate::store::changes::{locked, update};
use crate::store::entities::organization::{self, OrganizationStatus};

/// How long a trial runs when it began, before any extension.
pub const TRIAL_LENGTH_DAYS: i64 = 14;
/// Most days one extension adds.
pub const MAX_EXTENSION_DAYS: i64 = 30;
/// Most days all extensions of one trial add together.
pub const MAX_EXTENSION_DAYS_IN_ALL: i64 = 90;

/// An instant as the API shows it (as async-graphql formats a `DateTime`).
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

async fn organization(
    txn: &DatabaseTransaction,
    id: i64,
) -> Result<organization::Model, DomainError> {
    locked::<organization::Entity>(txn, id)
        .await?
        .ok_or(DomainError::NotFound {
            field: "id",
            what: "organization",
        })
}

/// Writes `change` to the organization (raising its version) unless it
/// changes nothing.
async fn save(
    txn: &DatabaseTransaction,
    org: organization::Model,
    change: RecordChange,
    actor: Actor<'_>,
    set: impl FnOnce(&mut organization::ActiveModel),
) -> Result<Applied, DomainError> {
    let id = org.id;
    if change.fields.is_empty() {
        return Ok(Applied {
            object: id,
            changes: Vec::new(),
        });
    }
    let version = org.version;
    let mut row = org.into_active_model();
    set(&mut row);
    row.version = Set(version + 1);
    row.updated_at = Set(actor.now);
    update(txn, row).await?;
    Ok(Applied {
        object: id,
        changes: vec![change],
    })
}

/// `setOrganizationStatus`: the bulk change's transitions, one account.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    pub id: i64,
    pub status: OrganizationStatus,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for SetStatus {
    const NAME: &'static str = "setOrganizationStatus";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        required_reason(self.asked.reason.as_deref())?;
        let org = organization(txn, self.id).await?;
        expect_version(org.version, self.expected_version)?;
        if org.status != self.status && !organization_transition_allowed(org.status, self.status) {
            return Err(DomainError::Invalid {
                field: "status",
                message: format!(
                    "an account cannot go from {} to {}",
                    org.status.to_value(),
                    self.status.to_value()
                ),
            });
        }
        let change = RecordChange::new("Organization", org.id).field(
            "status",
            org.status.to_value(),
            self.status.to_value(),
        );
        let status = self.status;
        save(txn, org, change, actor, |row| row.status = Set(status)).await
    }
}

/// `setOrganizationFlag`: sets or clears one internal flag of one account.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetFlag {
    pub id: i64,
    pub flag: Flag,
    pub value: bool,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

fn flag_of(org: &organization::Model, flag: Flag) -> bool {
    match flag {
        Flag::FraudReview => org.fraud_review,
        Flag::Vip => org.vip,
        Flag::ChurnRisk => org.churn_risk,
        Flag::BetaAccess => org.beta_access,
    }
}

impl Operation for SetFlag {
    const NAME: &'static str = "setOrganizationFlag";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        required_reason(self.asked.reason.as_deref())?;
        let org = organization(txn, self.id).await?;
        expect_version(org.version, self.expected_version)?;
        let change = RecordChange::new("Organization", org.id).field(
            &self.flag.path(),
            flag_of(&org, self.flag),
            self.value,
        );
        let (flag, value) = (self.flag, self.value);
        save(txn, org, change, actor, |row| match flag {
            Flag::FraudReview => row.fraud_review = Set(value),
            Flag::Vip => row.vip = Set(value),
            Flag::ChurnRisk => row.churn_risk = Set(value),
            Flag::BetaAccess => row.beta_access = Set(value),
        })
        .await
    }
}

/// `extendTrial`: only a TRIAL account; 1–30 days at a time, at most 90
/// days of extensions in all since the trial began.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendTrial {
    pub id: i64,
    pub days: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

/// When a trial ends: as recorded, or its standard length after the
/// account began.
pub fn trial_end(org: &organization::Model) -> DateTime<Utc> {
    org.trial_ends_at
        .unwrap_or(org.created_at + Duration::days(TRIAL_LENGTH_DAYS))
}

impl Operation for ExtendTrial {
    const NAME: &'static str = "extendTrial";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        if !(1..=MAX_EXTENSION_DAYS).contains(&self.days) {
            return Err(DomainError::Invalid {
                field: "days",
                message: format!("a trial is extended by 1 to {MAX_EXTENSION_DAYS} days at a time"),
            });
        }
        required_reason(self.asked.reason.as_deref())?;
        let org = organization(txn, self.id).await?;
        if org.status != OrganizationStatus::Trial {
            return Err(DomainError::Invalid {
                field: "id",
                message: format!(
                    "only a TRIAL account's trial can be extended; this account is {}",
                    org.status.to_value()
                ),
            });
        }
        let used = org.trial_extension_days;
        if used + self.days > MAX_EXTENSION_DAYS_IN_ALL {
            return Err(DomainError::Invalid {
                field: "days",
                message: format!(
                    "a trial is extended by at most {MAX_EXTENSION_DAYS_IN_ALL} days in all since it began; {used} are used, {} are left",
                    MAX_EXTENSION_DAYS_IN_ALL - used
                ),
            });
        }
        let before = trial_end(&org);
        let after = before + Duration::days(self.days);
        let change = RecordChange::new("Organization", org.id)
            .field("trialEndsAt", instant(before), instant(after))
            .field("trialExtensionDays", used, used + self.days);
        let days = used + self.days;
        save(txn, org, change, actor, |row| {
            row.trial_ends_at = Set(Some(after));
            row.trial_extension_days = Set(days);
        })
        .await
    }
}
