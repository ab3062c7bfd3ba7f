//! The per-request DataLoaders: every relation the API resolves goes through one,
//! so a nested query costs one SQL statement per level of nesting, whatever the
//! page size.
//!
//! The loaders implement async-graphql's `Loader` trait (the interface of its
//! built-in `dataloader`, which the async-graphql services we model ourselves on
//! use; the standalone `dataloader` crate defaults to async-std). They are driven
//! by our [`Batcher`](super::batch::Batcher), which batches per level of the query
//! rather than per millisecond (see there why). Keys are newtypes, so each
//! relation has its own batch.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::entities::{
    credit_note, invoice, invoice_line, organization, plan, staff_member, subscription,
    support_ticket, ticket_message, user,
};
use super::page::{Keyset, Page, PageRequest, child_pages};
use super::sql::Sql;
use super::{Store, StoreError};
use crate::catalog::{self, Ordering, Source};

/// The loader behind every key type below. One per request.
pub struct StoreLoader {
    store: Store,
}

impl StoreLoader {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// What a loader returns when the database fails: shared by every waiting resolver.
pub type LoadError = Arc<StoreError>;

macro_rules! by_id {
    ($(#[$doc:meta])* $key:ident, $entity:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub i64);

        impl From<i64> for $key {
            fn from(id: i64) -> Self {
                $key(id)
            }
        }

        impl Loader<$key> for StoreLoader {
            type Value = $entity::Model;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                if keys.is_empty() {
                    return Ok(HashMap::new());
                }
                let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
                let rows = $entity::Entity::find()
                    .filter($entity::Column::Id.is_in(ids))
                    .all(self.store.db())
                    .await
                    .map_err(|e| Arc::new(StoreError::from(e)))?;
                Ok(rows.into_iter().map(|m| ($key(m.id), m)).collect())
            }
        }
    };
}

by_id!(/// An organization by id.
    OrganizationId, organization);
by_id!(/// A plan by id.
    PlanId, plan);
by_id!(/// A customer user by id.
    UserId, user);
by_id!(/// A staff member by id.
    StaffId, staff_member);
by_id!(/// A ticket by id.
    TicketId, support_ticket);
by_id!(/// An invoice by id.
    InvoiceId, invoice);
by_id!(/// A subscription by id.
    SubscriptionId, subscription);
by_id!(/// An invoice line by id.
    LineId, invoice_line);
by_id!(/// A credit note by id.
    CreditNoteId, credit_note);
by_id!(/// A ticket message by id.
    MessageId, ticket_message);

/// An organization's subscription with its plan, in one statement. The
/// organization's `subscription` and `plan` fields both load through this key,
/// so asking for both (an admin list does) costs one statement, not two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BillingOfOrganization(pub i64);

impl Loader<BillingOfOrganization> for StoreLoader {
    type Value = (subscription::Model, plan::Model);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[BillingOfOrganization],
    ) -> Result<HashMap<BillingOfOrganization, Self::Value>, Self::Error> {
        use sea_orm::{IdenStatic, Iterable};

        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        // The plan's columns under a prefix of their own: both tables have `id`,
        // `created_at`, … .
        let plan_columns = plan::Column::iter()
            .map(|c| format!("p.\"{0}\" AS \"{PLAN}{0}\"", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // The subscription and its plan, as the catalog joins an
        // organization's plan.
        let (table, back, forward, plans) = catalog::through("Organization", "plan");
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT s.*, {plan_columns} FROM \"{table}\" s JOIN \"{plans}\" p ON p.\"id\" = s.\"{forward}\" WHERE s.\"{back}\" IN "
        ))
        .bind_list(&ids);
        let db = self.store.db();
        let rows = db
            .query_all_raw(sql.build(db.get_database_backend()))
            .await
            .map_err(|e| Arc::new(StoreError::from(e)))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let subscription = subscription::Model::from_query_result(&row, "")
                .map_err(|e| Arc::new(StoreError::from(e)))?;
            let plan = plan::Model::from_query_result(&row, PLAN)
                .map_err(|e| Arc::new(StoreError::from(e)))?;
            out.insert(
                BillingOfOrganization(subscription.organization_id),
                (subscription, plan),
            );
        }
        Ok(out)
    }
}

/// The prefix of the plan's columns in [`BillingOfOrganization`]'s statement.
const PLAN: &str = "plan__";

/// A parent and where its page starts.
type ParentCursor = (i64, Option<Keyset>);

/// A one-to-many relation read a page per parent: the catalog's `Many`
/// field `FIELD` of `ENTITY` says the child table, the column holding the
/// parent's id, and the order.
pub trait ChildRelation: Send + Sync + 'static {
    type Model: FromQueryResult + Clone + Send + Sync + 'static;
    /// The parent's catalog entity.
    const ENTITY: &'static str;
    /// The relation's field on it.
    const FIELD: &'static str;

    /// The child table, its column holding the parent's id, and the order of
    /// each parent's page.
    fn relation() -> (&'static str, &'static str, Ordering) {
        match catalog::expect_entity(Self::ENTITY)
            .field(Self::FIELD)
            .map(|f| f.source)
        {
            Some(Source::Many {
                target,
                parent_column,
                ordering,
            }) => (
                catalog::expect_entity(target).table,
                parent_column,
                ordering,
            ),
            _ => panic!(
                "{}.{} is not a one-to-many relation of the catalog",
                Self::ENTITY,
                Self::FIELD
            ),
        }
    }
}

/// A page of `R`'s children of one parent.
#[derive(Debug)]
pub struct ChildPage<R> {
    pub parent: i64,
    pub page: PageRequest,
    relation: PhantomData<fn() -> R>,
}

impl<R> ChildPage<R> {
    pub fn new(parent: i64, page: PageRequest) -> Self {
        Self {
            parent,
            page,
            relation: PhantomData,
        }
    }
}

impl<R> Clone for ChildPage<R> {
    fn clone(&self) -> Self {
        Self::new(self.parent, self.page.clone())
    }
}
impl<R> PartialEq for ChildPage<R> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.page == other.page
    }
}
impl<R> Eq for ChildPage<R> {}
impl<R> std::hash::Hash for ChildPage<R> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.page.hash(state);
    }
}

impl<R: ChildRelation> Loader<ChildPage<R>> for StoreLoader {
    type Value = Page<R::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ChildPage<R>],
    ) -> Result<HashMap<ChildPage<R>, Self::Value>, Self::Error> {
        // Keys of one level share `first` and `with_total`; group anyway, so that
        // a document asking for two page sizes still gets right answers.
        let mut groups: HashMap<(u64, bool, bool), Vec<ParentCursor>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.page.first, key.page.with_total, key.page.backwards))
                .or_default()
                .push((key.parent, key.page.after.clone()));
        }
        let mut out = HashMap::with_capacity(keys.len());
        let (table, parent_column, ordering) = R::relation();
        for ((first, with_total, backwards), parents) in groups {
            // A page read backwards reads the reversed order (its caller
            // turns the rows back).
            let sort = if backwards {
                ordering.sort.reversed()
            } else {
                ordering.sort
            };
            let mut pages = child_pages::<R::Model>(
                &self.store,
                table,
                parent_column,
                sort,
                first,
                with_total,
                &parents,
            )
            .await
            .map_err(Arc::new)?;
            for (parent, after) in parents {
                let page = pages
                    .remove(&parent)
                    .unwrap_or_else(|| Page::empty(with_total));
                let key = ChildPage::new(
                    parent,
                    PageRequest {
                        first,
                        after,
                        with_total,
                        backwards,
                    },
                );
                out.insert(key, page);
            }
        }
        Ok(out)
    }
}

macro_rules! child_relation {
    ($(#[$doc:meta])* $name:ident, $entity:ident, $parent:literal, $field:literal) => {
        $(#[$doc])*
        pub struct $name;
        impl ChildRelation for $name {
            type Model = $entity::Model;
            const ENTITY: &'static str = $parent;
            const FIELD: &'static str = $field;
        }
    };
}

child_relation!(/// An organization's users.
    UsersOfOrganization, user, "Organization", "users");
child_relation!(/// An organization's invoices.
    InvoicesOfOrganization, invoice, "Organization", "invoices");
child_relation!(/// An organization's tickets.
    TicketsOfOrganization, support_ticket, "Organization", "tickets");
child_relation!(/// The tickets a user opened.
    TicketsOfRequester, support_ticket, "User", "tickets");
child_relation!(/// The tickets assigned to a staff member.
    TicketsOfAssignee, support_ticket, "StaffMember", "assignedTickets");
child_relation!(/// An invoice's lines.
    LinesOfInvoice, invoice_line, "Invoice", "lines");
child_relation!(/// An invoice's credit notes.
    CreditNotesOfInvoice, credit_note, "Invoice", "creditNotes");
child_relation!(/// A ticket's messages.
    MessagesOfTicket, ticket_message, "SupportTicket", "messages");
child_relation!(/// The subscriptions on a plan.
    SubscriptionsOfPlan, subscription, "Plan", "subscriptions");

/// One record's page of its history, as one caller may see it: the fields
/// it may read (the same for every key of a request), newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryOf {
    pub entity: &'static str,
    pub record: i64,
    /// The event id of the cursor: continue with older events.
    pub before: Option<i64>,
    pub first: u64,
    pub with_total: bool,
    pub fields: Arc<Vec<String>>,
}

/// One change in a record's history, read from its audit event.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The audit event's id.
    pub event: i64,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub actor_subject: String,
    /// The mutation that made it.
    pub mutation: String,
    pub reason: Option<String>,
    /// The record's field changes among the fields asked for.
    pub fields: Vec<super::changes::FieldChange>,
}

/// A page of a record's history, newest first.
#[derive(Clone, Debug)]
pub struct HistoryRows {
    pub entries: Vec<HistoryEntry>,
    pub has_next_page: bool,
    pub total: Option<i64>,
}

impl Loader<HistoryOf> for StoreLoader {
    type Value = HistoryRows;
    type Error = LoadError;

    /// Every record of a level in one statement (two with totals), then
    /// their events in one more.
    async fn load(&self, keys: &[HistoryOf]) -> Result<HashMap<HistoryOf, HistoryRows>, LoadError> {
        type Group = (&'static str, Option<i64>, u64, bool, Arc<Vec<String>>);
        let mut groups: HashMap<Group, Vec<i64>> = HashMap::new();
        for k in keys {
            groups
                .entry((k.entity, k.before, k.first, k.with_total, k.fields.clone()))
                .or_default()
                .push(k.record);
        }
        let mut pages = Vec::new();
        for ((entity, before, first, with_total, fields), records) in groups {
            let found = super::changes::history_pages(
                &self.store,
                entity,
                &records,
                before,
                &fields,
                first,
                with_total,
            )
            .await
            .map_err(Arc::new)?;
            pages.push((entity, before, first, with_total, fields, records, found));
        }
        let ids: Vec<i64> = pages
            .iter()
            .flat_map(|p| p.6.values().flat_map(|page| page.events.iter().copied()))
            .collect();
        // Each event's details parsed once (a bulk change's hold every record
        // it changed), whatever the number of records on the page.
        let events: HashMap<
            i64,
            (
                super::entities::audit_event::Model,
                super::changes::ChangeDetails,
            ),
        > = super::changes::events(&self.store, &ids)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|(id, mut e)| {
                let details = super::changes::ChangeDetails::of(e.details.as_deref());
                e.details = None;
                (id, (e, details))
            })
            .collect();
        let mut out = HashMap::with_capacity(keys.len());
        for (entity, before, first, with_total, fields, records, mut found) in pages {
            for record in records {
                let page = found.remove(&record).unwrap_or_default();
                let key = HistoryOf {
                    entity,
                    record,
                    before,
                    first,
                    with_total,
                    fields: fields.clone(),
                };
                out.insert(
                    key,
                    HistoryRows {
                        entries: page
                            .events
                            .iter()
                            .filter_map(|id| events.get(id))
                            .map(|(e, details)| HistoryEntry {
                                event: e.id,
                                occurred_at: e.occurred_at,
                                actor_subject: e.actor_subject.clone(),
                                mutation: details
                                    .mutation
                                    .clone()
                                    .or_else(|| e.operation_name.clone())
                                    .unwrap_or_default(),
                                reason: details.reason.clone(),
                                fields: details
                                    .fields_of(entity, record)
                                    .filter(|f| fields.contains(&f.field))
                                    .cloned()
                                    .collect(),
                            })
                            .collect(),
                        has_next_page: page.has_next_page,
                        total: page.total.or(with_total.then_some(0)),
                    },
                );
            }
        }
        Ok(out)
    }
}
