//! An invoice sent to an organization.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "Invoice")]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub organization_id: i64,
    #[catalog(
        Public,
        "The invoice number the customer sees (e.g. `INV-000042-003`)."
    )]
    pub number: String,
    #[catalog(Public, "Total in minor units of `currency`.")]
    pub amount_cents: i64,
    #[catalog(Public, "ISO 4217 code.")]
    pub currency: String,
    #[catalog(Public, "Where the invoice is in its life.")]
    pub status: InvoiceStatus,
    #[catalog(Public, "When the invoice was issued.")]
    pub issued_at: DateTimeUtc,
    #[catalog(Public, "When payment is due.")]
    pub due_at: DateTimeUtc,
    #[catalog(Public, "When it was paid; null unless `status` is `PAID`.")]
    pub paid_at: Option<DateTimeUtc>,
    #[catalog(
        CostData,
        nullable,
        "Cost data: what the payment processor charged us, in minor units. Only callers who may read cost data (`read:cost_data`) have this field: for others it does not exist."
    )]
    pub processing_fee_cents: i64,
    #[catalog(skip)]
    pub created_at: DateTimeUtc,
    #[catalog(
        Public,
        "The payment's reference at the processor or bank; null unless paid."
    )]
    pub payment_reference: Option<String>,
    #[catalog(
        Public,
        "What credit notes have given back of this invoice, in all, in minor units of `currency`."
    )]
    pub credited_cents: i64,
    #[catalog(
        Public,
        "Raised by every change, bulk ones included; pass it back as `expectedVersion` to change the record only if nobody changed it since you read it."
    )]
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum InvoiceStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "PAID")]
    Paid,
    #[sea_orm(string_value = "VOID")]
    Void,
    #[sea_orm(string_value = "UNCOLLECTIBLE")]
    Uncollectible,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
