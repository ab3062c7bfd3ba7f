//! Single-record changes of billing: plan and seats, paying, voiding and
//! crediting invoices.

use sea_orm::{
    ActiveEnum,
    ActiveValue::{NotSet, Set},
    DatabaseTransaction, IntoActiveModel,
};
use serde::Serialize;
use serde_json::json;

use super::DomainError;
use super::change::{
    Actor, Applied, Asked, Operation, RecordChange, expect_version, required_reason, text_within,
};
use super::organizations::instant;
use crate::catalog::public_id;
use crate::store::changes::{
    active_users, insert, locked, plan, plan_by_code, subscription_of, update,
};
use crate::store::entities::invoice::{self, InvoiceStatus};
use crate::store::entities::subscription::SubscriptionStatus;
use crate::store::entities::{credit_note, organization};

/// `changeSubscription`: the plan exists; seats ≥ 1 and not below the
/// account's active users; a canceled subscription cannot change.
/// `expectedVersion` is the subscription's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSubscription {
    pub organization_id: i64,
    pub plan_code: Option<String>,
    pub seats: Option<i64>,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for ChangeSubscription {
    const NAME: &'static str = "changeSubscription";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        _actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        required_reason(self.asked.reason.as_deref())?;
        if let Some(seats) = self.seats
            && seats < 1
        {
            return Err(DomainError::Invalid {
                field: "seats",
                message: "at least 1 seat".into(),
            });
        }
        if locked::<organization::Entity>(txn, self.organization_id)
            .await?
            .is_none()
        {
            return Err(DomainError::NotFound {
                field: "organizationId",
                what: "organization",
            });
        }
        let sub = subscription_of(txn, self.organization_id)
            .await?
            .ok_or_else(|| DomainError::Invalid {
                field: "organizationId",
                message: "the account has no subscription".into(),
            })?;
        expect_version(sub.version, self.expected_version)?;
        if sub.status == SubscriptionStatus::Canceled {
            return Err(DomainError::Invalid {
                field: "organizationId",
                message: "the subscription is CANCELED and cannot change".into(),
            });
        }
        let current = plan(txn, sub.plan_id).await?;
        let new_plan = match self.plan_code.as_deref().map(str::trim) {
            Some(code) => {
                Some(
                    plan_by_code(txn, code)
                        .await?
                        .ok_or_else(|| DomainError::Invalid {
                            field: "planCode",
                            message: format!("there is no plan with code {code:?}"),
                        })?,
                )
            }
            None => None,
        };
        let seats = self.seats.unwrap_or(sub.seats);
        let active = active_users(txn, self.organization_id).await? as i64;
        if seats < active {
            return Err(DomainError::Invalid {
                field: "seats",
                message: format!(
                    "the account has {active} active users; it cannot have fewer seats"
                ),
            });
        }
        let before_code = current.map(|p| p.code);
        let after_code = new_plan
            .as_ref()
            .map(|p| p.code.clone())
            .or(before_code.clone());
        let change = RecordChange::new("Organization", self.organization_id)
            .field("subscription.plan", &before_code, &after_code)
            .field("subscription.seats", sub.seats, seats);
        let id = sub.id;
        if change.fields.is_empty() {
            return Ok(Applied {
                object: id,
                changes: Vec::new(),
            });
        }
        let version = sub.version;
        let mut row = sub.into_active_model();
        if let Some(p) = new_plan {
            row.plan_id = Set(p.id);
        }
        row.seats = Set(seats);
        row.version = Set(version + 1);
        update(txn, row).await?;
        Ok(Applied {
            object: id,
            changes: vec![change],
        })
    }
}

async fn invoice(
    txn: &DatabaseTransaction,
    id: i64,
    field: &'static str,
) -> Result<invoice::Model, DomainError> {
    locked::<invoice::Entity>(txn, id)
        .await?
        .ok_or(DomainError::NotFound {
            field,
            what: "invoice",
        })
}

/// Writes `change` to the invoice (raising its version).
async fn save(
    txn: &DatabaseTransaction,
    inv: invoice::Model,
    set: impl FnOnce(&mut invoice::ActiveModel),
) -> Result<invoice::Model, DomainError> {
    let version = inv.version;
    let mut row = inv.into_active_model();
    set(&mut row);
    row.version = Set(version + 1);
    Ok(update(txn, row).await?)
}

/// `markInvoicePaid`: only an OPEN invoice; `paidAt` neither in the future
/// nor before the invoice was issued.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkPaid {
    pub id: i64,
    pub paid_at: chrono::DateTime<chrono::Utc>,
    pub payment_reference: String,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for MarkPaid {
    const NAME: &'static str = "markInvoicePaid";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        let reference = self.payment_reference.trim();
        if reference.is_empty() {
            return Err(DomainError::Invalid {
                field: "paymentReference",
                message: "the payment's reference at the processor or bank is required".into(),
            });
        }
        let reference = text_within("paymentReference", reference, 200)?;
        if self.paid_at > actor.now {
            return Err(DomainError::Invalid {
                field: "paidAt",
                message: "cannot be in the future".into(),
            });
        }
        let inv = invoice(txn, self.id, "id").await?;
        expect_version(inv.version, self.expected_version)?;
        if inv.status != InvoiceStatus::Open {
            return Err(DomainError::Invalid {
                field: "id",
                message: format!(
                    "only an OPEN invoice can be marked paid; this one is {}",
                    inv.status.to_value()
                ),
            });
        }
        if self.paid_at < inv.issued_at {
            return Err(DomainError::Invalid {
                field: "paidAt",
                message: format!(
                    "cannot be before the invoice was issued ({})",
                    instant(inv.issued_at)
                ),
            });
        }
        let change = RecordChange::new("Invoice", inv.id)
            .field(
                "status",
                inv.status.to_value(),
                InvoiceStatus::Paid.to_value(),
            )
            .field("paidAt", inv.paid_at.map(instant), instant(self.paid_at))
            .field("paymentReference", &inv.payment_reference, &reference);
        let id = inv.id;
        let paid_at = self.paid_at;
        save(txn, inv, |row| {
            row.status = Set(InvoiceStatus::Paid);
            row.paid_at = Set(Some(paid_at));
            row.payment_reference = Set(Some(reference));
        })
        .await?;
        Ok(Applied {
            object: id,
            changes: vec![change],
        })
    }
}

/// `voidInvoice`: a DRAFT or OPEN invoice only; a PAID one is credited.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Void {
    pub id: i64,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for Void {
    const NAME: &'static str = "voidInvoice";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        _actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        required_reason(self.asked.reason.as_deref())?;
        let inv = invoice(txn, self.id, "id").await?;
        expect_version(inv.version, self.expected_version)?;
        match inv.status {
            InvoiceStatus::Draft | InvoiceStatus::Open => {}
            InvoiceStatus::Paid => {
                return Err(DomainError::Invalid {
                    field: "id",
                    message: "a PAID invoice cannot be voided; issue a credit note instead".into(),
                });
            }
            other => {
                return Err(DomainError::Invalid {
                    field: "id",
                    message: format!(
                        "only a DRAFT or OPEN invoice can be voided; this one is {}",
                        other.to_value()
                    ),
                });
            }
        }
        let change = RecordChange::new("Invoice", inv.id).field(
            "status",
            inv.status.to_value(),
            InvoiceStatus::Void.to_value(),
        );
        let id = inv.id;
        save(txn, inv, |row| row.status = Set(InvoiceStatus::Void)).await?;
        Ok(Applied {
            object: id,
            changes: vec![change],
        })
    }
}

/// `issueCreditNote`: only on a PAID invoice; all its credits together at
/// most its amount.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueCreditNote {
    pub invoice_id: i64,
    pub amount_cents: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for IssueCreditNote {
    const NAME: &'static str = "issueCreditNote";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        let reason = required_reason(self.asked.reason.as_deref())?;
        if self.amount_cents < 1 {
            return Err(DomainError::Invalid {
                field: "amountCents",
                message: "a credit note gives back at least 1 minor unit".into(),
            });
        }
        let inv = invoice(txn, self.invoice_id, "invoiceId").await?;
        if inv.status != InvoiceStatus::Paid {
            return Err(DomainError::Invalid {
                field: "invoiceId",
                message: format!(
                    "only a PAID invoice can be credited; this one is {}",
                    inv.status.to_value()
                ),
            });
        }
        let left = inv.amount_cents - inv.credited_cents;
        if self.amount_cents > left {
            return Err(DomainError::Invalid {
                field: "amountCents",
                message: format!(
                    "at most {left} can still be credited: {} of the invoice's {} are",
                    inv.credited_cents, inv.amount_cents
                ),
            });
        }
        let note = insert(
            txn,
            credit_note::ActiveModel {
                id: NotSet,
                invoice_id: Set(inv.id),
                amount_cents: Set(self.amount_cents),
                reason: Set(reason),
                issued_at: Set(actor.now),
                issued_by: Set(actor.subject.to_owned()),
            },
        )
        .await?;
        let credited = inv.credited_cents + self.amount_cents;
        let invoice_change = RecordChange::new("Invoice", inv.id)
            .field("creditedCents", inv.credited_cents, credited)
            .added(
                "creditNotes",
                json!({ "id": public_id("CreditNote", note.id), "amountCents": note.amount_cents }),
            );
        save(txn, inv, |row| row.credited_cents = Set(credited)).await?;
        Ok(Applied {
            object: note.id,
            changes: vec![invoice_change],
        })
    }
}
