//! sea-orm entities: the tables as the database has them. Never exposed as the API:
//! `graphql/types` maps them explicitly, so a column can change without the schema.

pub mod audit_change;
pub mod audit_event;
pub mod credit_note;
pub mod idempotency_key;
pub mod invoice;
pub mod invoice_line;
pub mod organization;
pub mod plan;
pub mod staff_member;
pub mod subscription;
pub mod support_ticket;
pub mod ticket_message;
pub mod user;
