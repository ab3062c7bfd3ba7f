//! Reads compiled to one SQL statement, on PostgreSQL.
//!
//! A query over the customer entities (organizations and their users,
//! invoices, subscriptions, tickets, … at any depth) becomes one `SELECT` whose
//! single value is the answer's `data` as JSON, built by PostgreSQL: each
//! object a `json_build_array` of its fields' values, each relation a
//! correlated sub-select, each page an `ARRAY(… ORDER BY … LIMIT n)` over the
//! child's index. [`answer`] puts the response keys back and formats ids and
//! instants. One round trip per request instead of one per level, and no
//! resolver per field: async-graphql's executor spends a future on every field
//! of every object, which on a deep page cost more than the database did.
//!
//! What it does not understand it leaves to the executor, which stays the
//! reference: any field, argument or directive outside the subset below,
//! introspection, mutations, SQLite. It also waits until the executor has run
//! a document once without a request error, so that async-graphql's
//! validation has passed on that very document before it is answered here;
//! variable values are checked against their declared types on every request
//! and anything unexpected goes to the executor, which gives the error.
//!
//! Everything before execution is the gate's as for any operation (limits, the
//! role's visibility, admission), and the audit record is the same: the
//! sensitive fields resolved are read off the answer, a field counting when
//! at least one object holding it was returned, as the `Audited` guard counts.
//!
//! The values are formatted as the executor formats them (ids, RFC 3339
//! instants with chrono's fraction rules, cursors); a test runs documents both
//! ways and compares the answers byte for byte. A cursor is sealed (see
//! `pagination`), which PostgreSQL cannot do: the statement gives its parts
//! (the sort value and the id) and [`answer`] seals them with the server's
//! cursor key into the executor's very bytes.

use std::collections::HashSet;
use std::sync::Mutex;

use async_graphql::parser::types::{
    BaseType, Directive, ExecutableDocument, Field as GqlField, OperationDefinition, OperationType,
    Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{InputType, Positioned, Request, Response, Value as ConstValue, Variables};
use sea_orm::{ConnectionTrait, DbBackend};

use super::ids::{self, Kind};

mod answer;

use super::pagination::{Cursors, DEFAULT_PAGE_SIZE, Ordering};
use super::types::billing::{
    INVOICES_NEWEST_FIRST, InvoiceFilter, InvoiceOrder, LINES_IN_ORDER, SUBSCRIPTIONS_OLDEST_FIRST,
};
use super::types::organization::{OrganizationFilter, OrganizationOrder, OrganizationStatus};
use super::types::staff::STAFF_BY_ID;
use super::types::support::{
    MESSAGES_IN_ORDER, SupportTicketFilter, SupportTicketOrder, TICKETS_NEWEST_FIRST,
};
use super::types::user::{USERS_OLDEST_FIRST, UserFilter, UserOrder};
use crate::audit::OperationAudit;
use crate::store::Store;
use crate::store::organizations::{self, OrganizationQuery};
use crate::store::page::{Keyset, Sort};
use crate::store::people;
use crate::store::sql::Sql;
use answer::{Entry, Node};

/// How a column becomes a JSON value.
#[derive(Clone, Copy)]
enum Scalar {
    /// As stored: text, numbers, booleans, enum names.
    Plain,
    /// The opaque id with this prefix (`org_42`).
    Id(&'static str),
    /// An instant, as RFC 3339 in UTC.
    Time,
    /// A comma-separated list, as a list of strings.
    List,
}

/// How an object reaches a related one.
#[derive(Clone, Copy)]
enum Join {
    /// The related row's id is in this column of ours.
    Forward(&'static str),
    /// The related row holds our id in this column (at most one such row).
    Back(&'static str),
    /// The plan of the organization's subscription.
    PlanOfOrganization,
}

#[derive(Clone, Copy)]
enum Field {
    Column(&'static str, Scalar),
    /// An object over the same row (`internalFlags`).
    Embedded(&'static str),
    ToOne(&'static str, Join),
    /// A page of the related rows holding our id in this column.
    Many(&'static str, &'static str, Ordering),
}

/// A GraphQL object type over a table.
struct Entity {
    name: &'static str,
    table: &'static str,
    fields: &'static [(&'static str, Field)],
}

use Field::{Column, Embedded, Many, ToOne};
use Scalar::{Id, Plain, Time};

const ENTITIES: &[Entity] = &[
    Entity {
        name: "Organization",
        table: "organizations",
        fields: &[
            ("id", Column("id", Id("org"))),
            ("name", Column("name", Plain)),
            ("slug", Column("slug", Plain)),
            ("status", Column("status", Plain)),
            ("region", Column("region", Plain)),
            ("createdAt", Column("created_at", Time)),
            ("updatedAt", Column("updated_at", Time)),
            ("monthlyCostCents", Column("monthly_cost_cents", Plain)),
            ("grossMarginBps", Column("gross_margin_bps", Plain)),
            ("internalFlags", Embedded("InternalFlags")),
            ("plan", ToOne("Plan", Join::PlanOfOrganization)),
            (
                "subscription",
                ToOne("Subscription", Join::Back("organization_id")),
            ),
            ("users", Many("User", "organization_id", USERS_OLDEST_FIRST)),
            (
                "invoices",
                Many("Invoice", "organization_id", INVOICES_NEWEST_FIRST),
            ),
            (
                "tickets",
                Many("SupportTicket", "organization_id", TICKETS_NEWEST_FIRST),
            ),
        ],
    },
    Entity {
        name: "InternalFlags",
        table: "organizations",
        fields: &[
            ("fraudReview", Column("fraud_review", Plain)),
            ("vip", Column("vip", Plain)),
            ("churnRisk", Column("churn_risk", Plain)),
            ("betaAccess", Column("beta_access", Plain)),
        ],
    },
    Entity {
        name: "Plan",
        table: "plans",
        fields: &[
            ("id", Column("id", Id("pln"))),
            ("code", Column("code", Plain)),
            ("name", Column("name", Plain)),
            ("priceCents", Column("price_cents", Plain)),
            ("currency", Column("currency", Plain)),
            ("unitCostCents", Column("unit_cost_cents", Plain)),
            (
                "subscriptions",
                Many("Subscription", "plan_id", SUBSCRIPTIONS_OLDEST_FIRST),
            ),
        ],
    },
    Entity {
        name: "Subscription",
        table: "subscriptions",
        fields: &[
            ("id", Column("id", Id("sub"))),
            ("seats", Column("seats", Plain)),
            ("status", Column("status", Plain)),
            ("currentPeriodStart", Column("current_period_start", Time)),
            ("currentPeriodEnd", Column("current_period_end", Time)),
            ("discountPercent", Column("discount_percent", Plain)),
            ("createdAt", Column("created_at", Time)),
            ("plan", ToOne("Plan", Join::Forward("plan_id"))),
            (
                "organization",
                ToOne("Organization", Join::Forward("organization_id")),
            ),
        ],
    },
    Entity {
        name: "Invoice",
        table: "invoices",
        fields: &[
            ("id", Column("id", Id("inv"))),
            ("number", Column("number", Plain)),
            ("amountCents", Column("amount_cents", Plain)),
            ("currency", Column("currency", Plain)),
            ("status", Column("status", Plain)),
            ("issuedAt", Column("issued_at", Time)),
            ("dueAt", Column("due_at", Time)),
            ("paidAt", Column("paid_at", Time)),
            ("processingFeeCents", Column("processing_fee_cents", Plain)),
            (
                "organization",
                ToOne("Organization", Join::Forward("organization_id")),
            ),
            ("lines", Many("InvoiceLine", "invoice_id", LINES_IN_ORDER)),
        ],
    },
    Entity {
        name: "InvoiceLine",
        table: "invoice_lines",
        fields: &[
            ("id", Column("id", Id("inl"))),
            ("description", Column("description", Plain)),
            ("quantity", Column("quantity", Plain)),
            ("unitAmountCents", Column("unit_amount_cents", Plain)),
            ("amountCents", Column("amount_cents", Plain)),
            ("invoice", ToOne("Invoice", Join::Forward("invoice_id"))),
        ],
    },
    Entity {
        name: "User",
        table: "users",
        fields: &[
            ("id", Column("id", Id("usr"))),
            ("email", Column("email", Plain)),
            ("name", Column("name", Plain)),
            ("orgRole", Column("org_role", Plain)),
            ("status", Column("status", Plain)),
            ("lastSeenAt", Column("last_seen_at", Time)),
            ("createdAt", Column("created_at", Time)),
            (
                "organization",
                ToOne("Organization", Join::Forward("organization_id")),
            ),
            (
                "tickets",
                Many("SupportTicket", "requester_id", TICKETS_NEWEST_FIRST),
            ),
        ],
    },
    Entity {
        name: "SupportTicket",
        table: "support_tickets",
        fields: &[
            ("id", Column("id", Id("tkt"))),
            ("subject", Column("subject", Plain)),
            ("status", Column("status", Plain)),
            ("priority", Column("priority", Plain)),
            ("createdAt", Column("created_at", Time)),
            ("updatedAt", Column("updated_at", Time)),
            ("internalNotes", Column("internal_notes", Plain)),
            (
                "organization",
                ToOne("Organization", Join::Forward("organization_id")),
            ),
            ("requester", ToOne("User", Join::Forward("requester_id"))),
            (
                "assignee",
                ToOne("StaffMember", Join::Forward("assignee_id")),
            ),
            (
                "messages",
                Many("TicketMessage", "ticket_id", MESSAGES_IN_ORDER),
            ),
        ],
    },
    Entity {
        name: "TicketMessage",
        table: "ticket_messages",
        fields: &[
            ("id", Column("id", Id("msg"))),
            ("body", Column("body", Plain)),
            ("internal", Column("internal", Plain)),
            ("createdAt", Column("created_at", Time)),
            ("ticket", ToOne("SupportTicket", Join::Forward("ticket_id"))),
            ("authorUser", ToOne("User", Join::Forward("author_user_id"))),
            (
                "authorStaff",
                ToOne("StaffMember", Join::Forward("author_staff_id")),
            ),
        ],
    },
    Entity {
        name: "StaffMember",
        table: "staff_members",
        fields: &[
            ("id", Column("id", Id("stf"))),
            ("subject", Column("subject", Plain)),
            ("email", Column("email", Plain)),
            ("name", Column("name", Plain)),
            ("roles", Column("roles", Scalar::List)),
            ("lastSeenAt", Column("last_seen_at", Time)),
            (
                "assignedTickets",
                Many("SupportTicket", "assignee_id", TICKETS_NEWEST_FIRST),
            ),
        ],
    },
];

/// Root lookups by opaque id: field, entity, kind of id.
const BY_ID: &[(&str, &str, Kind)] = &[
    ("organization", "Organization", Kind::Organization),
    ("user", "User", Kind::User),
    ("invoice", "Invoice", Kind::Invoice),
    ("ticket", "SupportTicket", Kind::Ticket),
    ("staffMember", "StaffMember", Kind::Staff),
];

fn entity_named(name: &str) -> &'static Entity {
    ENTITIES
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no compiled entity {name}"))
}

/// One response key of a selection set, its occurrences merged.
struct Selected<'a> {
    key: &'a str,
    name: &'a str,
    /// The first occurrence (validation has made every occurrence's arguments
    /// equal).
    field: &'a GqlField,
    sets: Vec<&'a SelectionSet>,
}

/// Documents the executor has run without a request error, so validated.
const MAX_KNOWN: usize = 10_000;

/// A document and the operation asked for: the document's SHA-256 (the one
/// its audit record already computed; documents may be hundreds of KiB) and
/// the operation's name.
type KnownKey = String;

/// The compiled read path: on when the store is PostgreSQL.
pub struct CompiledReads {
    store: Store,
    /// The executor's cursor key: cursors are opened and sealed as it does.
    cursors: Cursors,
    known: Mutex<HashSet<KnownKey>>,
}

fn known_key(request: &Request, operation: &OperationAudit) -> KnownKey {
    let mut key = operation.document_hash();
    key.push('\0');
    key.push_str(request.operation_name.as_deref().unwrap_or(""));
    key
}

impl CompiledReads {
    /// The compiled path over `store`, or none when it is not PostgreSQL;
    /// `cursors` are the schema's.
    pub fn new(store: Store, cursors: Cursors) -> Option<Self> {
        let on = store.db().get_database_backend() == DbBackend::Postgres;
        if on {
            tracing::info!("reads over the customer entities are compiled to one SQL statement");
        } else {
            tracing::info!(
                "reads are answered by the GraphQL executor (compiled reads need PostgreSQL)"
            );
        }
        on.then(|| Self {
            store,
            cursors,
            known: Mutex::new(HashSet::new()),
        })
    }

    fn knows(&self, request: &Request, operation: &OperationAudit) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&known_key(request, operation))
    }

    /// Remembers that the executor ran `request`'s document without a request
    /// error (so async-graphql validated it).
    pub fn learn(&self, request_key: KnownKey, response: &Response) {
        if response.errors.iter().any(|e| e.path.is_empty()) {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(request_key);
    }

    /// The key [`learn`](Self::learn) takes, when `request` could be compiled
    /// next time; `None` when it already is known.
    pub fn to_learn(&self, request: &Request, operation: &OperationAudit) -> Option<KnownKey> {
        (!self.knows(request, operation)).then(|| known_key(request, operation))
    }

    /// Answers `request` with one statement: its `data` as JSON text; `None`
    /// for the executor to answer it (not compiled, not yet validated, or the
    /// statement failed).
    pub async fn run(
        &self,
        request: &mut Request,
        max_page_size: i32,
        operation: &OperationAudit,
    ) -> Option<String> {
        if !self.knows(request, operation) {
            return None;
        }
        let variables = request.variables.clone();
        let wanted = request.operation_name.clone();
        let document = request.parsed_query().ok()?;
        let (sql, shape) = compile(
            document,
            wanted.as_deref(),
            &variables,
            max_page_size,
            &self.cursors,
        )?;
        let row = match self
            .store
            .db()
            .query_one_raw(sql.build(DbBackend::Postgres))
            .await
        {
            Ok(row) => row?,
            Err(err) => {
                tracing::warn!(error = %err, "compiled read failed; the executor answers instead");
                return None;
            }
        };
        let text: String = row.try_get("", "data").ok()?;
        let Some((answer, sensitive)) = answer::write(&shape, &text, &self.cursors) else {
            tracing::warn!(
                "compiled read gave an answer of another shape; the executor answers instead"
            );
            return None;
        };
        for field in &sensitive {
            operation.sensitive(field);
        }
        Some(answer)
    }
}

/// The statement answering the operation `wanted` of `document`, and the
/// answer's shape; `None` when the executor must answer.
fn compile(
    document: &ExecutableDocument,
    wanted: Option<&str>,
    variables: &Variables,
    max_page_size: i32,
    cursors: &Cursors,
) -> Option<(Sql, Node)> {
    let (_, operation) = super::gate::operation_to_run(document, wanted)?;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let mut compiler = Compiler {
        document,
        operation,
        variables,
        max_page_size,
        cursors,
        sql: Sql::default(),
        aliases: 0,
        spreads: 0,
    };
    compiler.check_variables()?;
    let shape = compiler.root()?;
    Some((compiler.sql, shape))
}

struct Compiler<'a> {
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    max_page_size: i32,
    /// Opens `after` as the executor does.
    cursors: &'a Cursors,
    sql: Sql,
    aliases: usize,
    /// Fragment spreads followed, to bound the work on any document.
    spreads: usize,
}

const MAX_SPREADS: usize = 1_000;

/// The rows a connection pages through.
struct PageOf<'p> {
    target: &'p Entity,
    ordering: &'p Ordering,
    /// On alias `c`; empty for none.
    condition: &'p Sql,
    /// The row the page continues after.
    after: Option<&'p Keyset>,
}

impl<'a> Compiler<'a> {
    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("t{}", self.aliases)
    }

    /// Every variable's value is of its declared type (else the executor
    /// answers, with its error).
    fn check_variables(&self) -> Option<()> {
        for definition in &self.operation.variable_definitions {
            let definition: &VariableDefinition = &definition.node;
            let value = self.variable(&definition.name.node);
            let ty = &definition.var_type.node;
            if value == ConstValue::Null {
                if ty.nullable {
                    continue;
                }
                return None;
            }
            let BaseType::Named(name) = &ty.base else {
                return None;
            };
            let ok = match (name.as_str(), &value) {
                ("Int", ConstValue::Number(n)) => {
                    n.as_i64().and_then(|n| i32::try_from(n).ok()).is_some()
                }
                ("String", ConstValue::String(_)) => true,
                ("ID", ConstValue::String(_)) => true,
                ("Boolean", ConstValue::Boolean(_)) => true,
                ("OrganizationFilter", _) => parses::<OrganizationFilter>(&value),
                ("OrganizationOrder", _) => parses::<OrganizationOrder>(&value),
                ("OrganizationStatus", _) => parses::<OrganizationStatus>(&value),
                ("UserFilter", _) => parses::<UserFilter>(&value),
                ("UserOrder", _) => parses::<UserOrder>(&value),
                ("InvoiceFilter", _) => parses::<InvoiceFilter>(&value),
                ("InvoiceOrder", _) => parses::<InvoiceOrder>(&value),
                ("SupportTicketFilter", _) => parses::<SupportTicketFilter>(&value),
                ("SupportTicketOrder", _) => parses::<SupportTicketOrder>(&value),
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        Some(())
    }

    /// A variable's value: given, else its default, else null.
    fn variable(&self, name: &str) -> ConstValue {
        if let Some(value) = self.variables.get(name) {
            return value.clone();
        }
        self.operation
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node.as_str() == name)
            .and_then(|d| d.node.default_value.as_ref())
            .map(|v| v.node.clone())
            .unwrap_or(ConstValue::Null)
    }

    /// An argument's value (null when not given).
    fn argument(&self, field: &Selected<'a>, name: &str) -> Option<ConstValue> {
        match field
            .field
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == name)
        {
            None => Some(ConstValue::Null),
            Some((_, value)) => value
                .node
                .clone()
                .into_const_with(|var| Ok::<_, ()>(self.variable(&var)))
                .ok(),
        }
    }

    /// Only these arguments are given.
    fn only_arguments(field: &Selected<'a>, allowed: &[&str]) -> Option<()> {
        field
            .field
            .arguments
            .iter()
            .all(|(n, _)| allowed.contains(&n.node.as_str()))
            .then_some(())
    }

    /// Whether `@skip` / `@include` keep a selection; `None` for any other
    /// directive. As async-graphql decides it: a variable the request does not
    /// give counts as false, whatever its default.
    fn included(&self, directives: &[Positioned<Directive>]) -> Option<bool> {
        let mut keep = true;
        for directive in directives {
            let directive = &directive.node;
            let condition = directive
                .get_argument("if")?
                .node
                .clone()
                .into_const_with(|var| {
                    Ok::<_, ()>(self.variables.get(&var).cloned().unwrap_or_default())
                })
                .ok()?;
            let condition = matches!(condition, ConstValue::Boolean(true));
            match directive.name.node.as_str() {
                "skip" => keep &= !condition,
                "include" => keep &= condition,
                _ => return None,
            }
        }
        Some(keep)
    }

    /// The fields of `sets` on an object of type `type_name`, by response key,
    /// fragments expanded and fields of one key merged.
    fn collect(&mut self, sets: &[&'a SelectionSet], type_name: &str) -> Option<Vec<Selected<'a>>> {
        let mut out: Vec<Selected<'a>> = Vec::new();
        for set in sets {
            self.collect_into(set, type_name, &mut out)?;
        }
        // The executor's answers go out with their keys sorted (a
        // `serde_json::Map`); the compiled ones are written sorted too, so that
        // both are the same bytes.
        out.sort_by(|a, b| a.key.cmp(b.key));
        Some(out)
    }

    fn collect_into(
        &mut self,
        set: &'a SelectionSet,
        type_name: &str,
        out: &mut Vec<Selected<'a>>,
    ) -> Option<()> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !self.included(&field.directives)? {
                        continue;
                    }
                    let key = field.response_key().node.as_str();
                    // Inlined into SQL text as a JSON key: names only.
                    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return None;
                    }
                    match out.iter_mut().find(|s| s.key == key) {
                        Some(existing) => existing.sets.push(&field.selection_set.node),
                        None => out.push(Selected {
                            key,
                            name: field.name.node.as_str(),
                            field,
                            sets: vec![&field.selection_set.node],
                        }),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.node.directives)? {
                        continue;
                    }
                    self.spreads += 1;
                    if self.spreads > MAX_SPREADS {
                        return None;
                    }
                    let fragment = &self
                        .document
                        .fragments
                        .get(&spread.node.fragment_name.node)?
                        .node;
                    if fragment.type_condition.node.on.node.as_str() != type_name
                        || !fragment.directives.is_empty()
                    {
                        return None;
                    }
                    self.collect_into(&fragment.selection_set.node, type_name, out)?;
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    if !self.included(&inline.directives)? {
                        continue;
                    }
                    if let Some(condition) = &inline.type_condition
                        && condition.node.on.node.as_str() != type_name
                    {
                        return None;
                    }
                    self.collect_into(&inline.selection_set.node, type_name, out)?;
                }
            }
        }
        Some(())
    }

    /// Between the values of a `json_build_array`.
    fn separator(&mut self, index: usize) {
        if index > 0 {
            self.sql.push(", ");
        }
    }

    /// `SELECT json_build_array(…)::text AS "data"` over the root fields.
    fn root(&mut self) -> Option<Node> {
        let fields = self.collect(&[&self.operation.selection_set.node], "Query")?;
        self.sql.push("SELECT json_build_array(");
        let mut entries = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.separator(i);
            let node = match field.name {
                "__typename" => {
                    self.sql.push("'Query'");
                    Node::Leaf
                }
                "organizationBySlug" => {
                    Self::only_arguments(field, &["slug"])?;
                    let ConstValue::String(slug) = self.argument(field, "slug")? else {
                        return None;
                    };
                    self.lookup(
                        entity_named("Organization"),
                        "slug",
                        slug.trim().to_owned(),
                        field,
                    )?
                }
                "organizations" | "users" | "invoices" | "tickets" | "staffMembers" => {
                    self.root_list(field)?
                }
                name => {
                    let (_, target, kind) = BY_ID.iter().find(|(f, _, _)| *f == name)?;
                    Self::only_arguments(field, &["id"])?;
                    let ConstValue::String(id) = self.argument(field, "id")? else {
                        return None;
                    };
                    let id = ids::decode(*kind, &id, "id").ok()?;
                    self.lookup(entity_named(target), "id", id, field)?
                }
            };
            entries.push(Entry {
                key: field.key.to_owned(),
                audited: None,
                node,
            });
        }
        self.sql.push(")::text AS \"data\"");
        Some(Node::Object(entries))
    }

    /// A root list: a page of its filtered rows, in the order asked for.
    fn root_list(&mut self, field: &Selected<'a>) -> Option<Node> {
        if field.name == "staffMembers" {
            Self::only_arguments(field, &["first", "after"])?;
        } else {
            Self::only_arguments(field, &["first", "after", "filter", "orderBy"])?;
        }
        let first = self.first(field)?;
        let filter = self.argument(field, "filter")?;
        let order = self.argument(field, "orderBy")?;
        let (entity, conditions, ordering) = match field.name {
            "organizations" => {
                let filter: OrganizationFilter = parse_or_default(filter)?;
                let query: OrganizationQuery = filter.into();
                let order: OrganizationOrder = parse_or_default(order)?;
                (
                    "Organization",
                    organizations::conditions(&query),
                    order.ordering(),
                )
            }
            "users" => {
                let query = parse_or_default::<UserFilter>(filter)?.into_query().ok()?;
                let order: UserOrder = parse_or_default(order)?;
                ("User", people::user_conditions(&query), order.ordering())
            }
            "invoices" => {
                let query = parse_or_default::<InvoiceFilter>(filter)?
                    .into_query()
                    .ok()?;
                let order: InvoiceOrder = parse_or_default(order)?;
                (
                    "Invoice",
                    people::invoice_conditions(&query),
                    order.ordering(),
                )
            }
            "tickets" => {
                let query = parse_or_default::<SupportTicketFilter>(filter)?
                    .into_query()
                    .ok()?;
                let order: SupportTicketOrder = parse_or_default(order)?;
                (
                    "SupportTicket",
                    people::ticket_conditions(&query),
                    order.ordering(),
                )
            }
            "staffMembers" => ("StaffMember", Sql::default(), STAFF_BY_ID),
            _ => return None,
        };
        let after = self.after(field, &ordering)?;
        self.connection(
            entity_named(entity),
            &format!("{entity}Connection"),
            &ordering,
            (&conditions, after.as_ref()),
            first,
            &field.sets,
        )
    }

    /// `(SELECT obj FROM table WHERE column = value)`: one row or null.
    fn lookup(
        &mut self,
        target: &'static Entity,
        column: &str,
        value: impl Into<sea_orm::Value>,
        field: &Selected<'a>,
    ) -> Option<Node> {
        let alias = self.alias();
        self.sql.push("(SELECT ");
        let node = self.object(target, &alias, &field.sets)?;
        self.sql
            .push(&format!(
                " FROM \"{}\" {alias} WHERE {alias}.\"{column}\" = ",
                target.table
            ))
            .bind(value)
            .push(")");
        Some(node)
    }

    /// `after`: the row the page continues after, if any (`None` for the
    /// executor to refuse a cursor of another list or order).
    fn after(&self, field: &Selected<'a>, ordering: &Ordering) -> Option<Option<Keyset>> {
        match self.argument(field, "after")? {
            ConstValue::Null => Some(None),
            ConstValue::String(cursor) => self.cursors.open(ordering, &cursor).ok().map(Some),
            _ => None,
        }
    }

    /// `first`, checked as the executor checks it.
    fn first(&self, field: &Selected<'a>) -> Option<i64> {
        match self.argument(field, "first")? {
            ConstValue::Null => Some(i64::from(DEFAULT_PAGE_SIZE)),
            ConstValue::Number(n) => n
                .as_i64()
                .filter(|n| (0..=i64::from(self.max_page_size)).contains(n)),
            _ => None,
        }
    }

    /// `json_build_array(…)` of the selected fields of the row `alias`.
    fn object(
        &mut self,
        entity: &'static Entity,
        alias: &str,
        sets: &[&'a SelectionSet],
    ) -> Option<Node> {
        let fields = self.collect(sets, entity.name)?;
        // A function takes at most 100 arguments.
        if fields.len() > 100 {
            return None;
        }
        self.sql.push("json_build_array(");
        let mut entries = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.separator(i);
            let audited = crate::policy::is_audited_field(entity.name, field.name)
                .then(|| format!("{}.{}", entity.name, field.name));
            let node = self.field(entity, alias, field)?;
            entries.push(Entry {
                key: field.key.to_owned(),
                audited,
                node,
            });
        }
        self.sql.push(")");
        Some(Node::Object(entries))
    }

    fn field(
        &mut self,
        entity: &'static Entity,
        alias: &str,
        field: &Selected<'a>,
    ) -> Option<Node> {
        if field.name == "__typename" {
            self.sql.push(&format!("'{}'", entity.name));
            return Some(Node::Leaf);
        }
        let (_, kind) = entity.fields.iter().find(|(name, _)| *name == field.name)?;
        match *kind {
            Column(column, scalar) => {
                Self::only_arguments(field, &[])?;
                self.sql.push(&scalar_sql(alias, column, scalar));
                Some(match scalar {
                    Scalar::Plain => Node::Leaf,
                    Scalar::Id(prefix) => Node::Id(prefix),
                    Scalar::Time => Node::Time,
                    Scalar::List => Node::List(Box::new(Node::Leaf)),
                })
            }
            Embedded(name) => {
                Self::only_arguments(field, &[])?;
                self.object(entity_named(name), alias, &field.sets)
            }
            ToOne(name, join) => {
                Self::only_arguments(field, &[])?;
                let target = entity_named(name);
                let other = self.alias();
                self.sql.push("(SELECT ");
                let node = self.object(target, &other, &field.sets)?;
                let from = match join {
                    Join::Forward(column) => format!(
                        " FROM \"{}\" {other} WHERE {other}.\"id\" = {alias}.\"{column}\")",
                        target.table
                    ),
                    Join::Back(column) => format!(
                        " FROM \"{}\" {other} WHERE {other}.\"{column}\" = {alias}.\"id\" LIMIT 1)",
                        target.table
                    ),
                    Join::PlanOfOrganization => format!(
                        " FROM \"subscriptions\" s{other} JOIN \"plans\" {other} ON {other}.\"id\" = s{other}.\"plan_id\" WHERE s{other}.\"organization_id\" = {alias}.\"id\" LIMIT 1)"
                    ),
                };
                self.sql.push(&from);
                Some(node)
            }
            Many(name, parent_column, ordering) => {
                Self::only_arguments(field, &["first", "after"])?;
                let first = self.first(field)?;
                // Every parent's page continues after the same row, as in the
                // executor.
                let after = self.after(field, &ordering)?;
                let mut condition = Sql::default();
                condition.push(&format!("c.\"{parent_column}\" = {alias}.\"id\""));
                let target = entity_named(name);
                let connection = format!("{name}Connection");
                self.connection(
                    target,
                    &connection,
                    &ordering,
                    (&condition, after.as_ref()),
                    first,
                    &field.sets,
                )
            }
        }
    }

    /// A page of `target`'s rows under `condition` (on alias `c`), after a
    /// row when given, as a connection object: `nodes`, `edges`, `pageInfo`,
    /// `totalCount` (which counts the whole list under the condition).
    ///
    /// Each part is its own sub-select over the page (`ORDER BY … LIMIT n` on
    /// the child's index): PostgreSQL re-runs a correlated sub-select per
    /// parent cheaply, while one sub-select computing every part with window
    /// functions cost ten times as much per parent.
    fn connection(
        &mut self,
        target: &'static Entity,
        type_name: &str,
        ordering: &Ordering,
        (condition, after): (&Sql, Option<&Keyset>),
        first: i64,
        sets: &[&'a SelectionSet],
    ) -> Option<Node> {
        let page_of = PageOf {
            target,
            ordering,
            condition,
            after,
        };
        let fields = self.collect(sets, type_name)?;
        self.sql.push("json_build_array(");
        let mut entries = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.separator(i);
            Self::only_arguments(field, &[])?;
            let node = match field.name {
                "__typename" => {
                    self.sql.push(&format!("'{type_name}'"));
                    Node::Leaf
                }
                "nodes" => {
                    let page = self.alias();
                    self.sql.push("array_to_json(ARRAY(SELECT ");
                    let node = self.object(target, &page, &field.sets)?;
                    self.page(&page_of, first, &page)?;
                    self.sql
                        .push(&format!(" ORDER BY {}))", ordering.sort.order_by(&page)));
                    Node::List(Box::new(node))
                }
                "edges" => {
                    let edge_type = type_name.replace("Connection", "Edge");
                    let edge_fields = self.collect(&field.sets, &edge_type)?;
                    let page = self.alias();
                    self.sql
                        .push("array_to_json(ARRAY(SELECT json_build_array(");
                    let mut edge_entries = Vec::with_capacity(edge_fields.len());
                    for (j, edge_field) in edge_fields.iter().enumerate() {
                        self.separator(j);
                        Self::only_arguments(edge_field, &[])?;
                        let node = match edge_field.name {
                            "__typename" => {
                                self.sql.push(&format!("'{edge_type}'"));
                                Node::Leaf
                            }
                            "cursor" => {
                                self.sql.push(&cursor_sql(&page, ordering));
                                Node::Cursor(*ordering)
                            }
                            "node" => self.object(target, &page, &edge_field.sets)?,
                            _ => return None,
                        };
                        edge_entries.push(Entry {
                            key: edge_field.key.to_owned(),
                            audited: None,
                            node,
                        });
                    }
                    self.sql.push(")");
                    self.page(&page_of, first, &page)?;
                    self.sql
                        .push(&format!(" ORDER BY {}))", ordering.sort.order_by(&page)));
                    Node::List(Box::new(Node::Object(edge_entries)))
                }
                "pageInfo" => {
                    let info_fields = self.collect(&field.sets, "PageInfo")?;
                    let mut info_entries = Vec::with_capacity(info_fields.len());
                    self.sql.push("json_build_array(");
                    for (j, info_field) in info_fields.iter().enumerate() {
                        self.separator(j);
                        Self::only_arguments(info_field, &[])?;
                        let page = self.alias();
                        let mut node = Node::Leaf;
                        match info_field.name {
                            "__typename" => {
                                self.sql.push("'PageInfo'");
                            }
                            "hasNextPage" => {
                                self.sql.push(&format!("(SELECT count(*) > {first}"));
                                self.page(&page_of, first + 1, &page)?;
                                self.sql.push(")");
                            }
                            "endCursor" => {
                                let last_first = Sort {
                                    descending: !ordering.sort.descending,
                                    ..ordering.sort
                                };
                                self.sql
                                    .push(&format!("(SELECT {}", cursor_sql(&page, ordering)));
                                self.page(&page_of, first, &page)?;
                                self.sql.push(&format!(
                                    " ORDER BY {} LIMIT 1)",
                                    last_first.order_by(&page)
                                ));
                                node = Node::Cursor(*ordering);
                            }
                            _ => return None,
                        }
                        info_entries.push(Entry {
                            key: info_field.key.to_owned(),
                            audited: None,
                            node,
                        });
                    }
                    self.sql.push(")");
                    Node::Object(info_entries)
                }
                "totalCount" => {
                    self.sql.push(&format!(
                        "(SELECT count(*) FROM \"{}\" c WHERE ",
                        target.table
                    ));
                    self.where_condition(condition);
                    self.sql.push(")");
                    Node::Leaf
                }
                _ => return None,
            };
            entries.push(Entry {
                key: field.key.to_owned(),
                audited: None,
                node,
            });
        }
        self.sql.push(")");
        Some(Node::Object(entries))
    }

    /// ` FROM (the page's rows) alias`: the first `first` rows of the list in
    /// its order.
    fn page(&mut self, page: &PageOf<'_>, first: i64, alias: &str) -> Option<()> {
        let sort = page.ordering.sort.order_by("c");
        self.sql.push(&format!(
            " FROM (SELECT c.* FROM \"{}\" c WHERE ",
            page.target.table
        ));
        self.where_condition(page.condition);
        if let Some(after) = page.after {
            self.sql.push(" AND ");
            page.ordering.sort.after("c", after, &mut self.sql).ok()?;
        }
        self.sql
            .push(&format!(" ORDER BY {sort} LIMIT {first}) {alias}"));
        Some(())
    }

    fn where_condition(&mut self, condition: &Sql) {
        if condition.is_empty() {
            self.sql.push("TRUE");
        } else {
            self.sql.append(condition);
        }
    }
}

/// Whether `value` is one of `T`'s.
fn parses<T: InputType>(value: &ConstValue) -> bool {
    T::parse(Some(value.clone())).is_ok()
}

/// An input argument's value, its type's default when null (as the executor
/// takes it); `None` when it does not parse (the executor gives the error).
fn parse_or_default<T: InputType + Default>(value: ConstValue) -> Option<T> {
    match value {
        ConstValue::Null => Some(T::default()),
        value => T::parse(Some(value)).ok(),
    }
}

/// A column's value for [`answer::write`], which formats ids and instants.
fn scalar_sql(alias: &str, column: &str, scalar: Scalar) -> String {
    let value = format!("{alias}.\"{column}\"");
    match scalar {
        Scalar::Plain | Scalar::Id(_) | Scalar::Time => value,
        Scalar::List => format!(
            "COALESCE((SELECT json_agg(r.v ORDER BY r.n) FROM unnest(string_to_array({value}, ',')) WITH ORDINALITY AS r(v, n) WHERE r.v <> ''), '[]'::json)"
        ),
    }
}

/// The parts of the row's cursor under `ordering`, which [`answer::write`]
/// seals: the id alone for an order by id, else `[sort value, id]`.
fn cursor_sql(alias: &str, ordering: &Ordering) -> String {
    match ordering.sort.column {
        None => format!("{alias}.\"id\""),
        Some(column) => format!("json_build_array({alias}.\"{column}\", {alias}.\"id\")"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compiles(query: &str, variables: serde_json::Value) -> bool {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        compile(
            &document,
            None,
            &Variables::from_json(variables),
            100,
            &Cursors::of_this_process(),
        )
        .is_some()
    }

    #[test]
    fn only_what_is_understood_is_compiled() {
        assert!(compiles(
            "{ organizations { nodes { id users { totalCount } } } }",
            json!({})
        ));
        assert!(compiles(
            "query($s: String!) { organizationBySlug(slug: $s) { name } }",
            json!({ "s": "a" })
        ));
        for (query, variables) in [
            (
                "mutation { bulkVoidInvoices(input: {ids: [], reason: \"x\"}) { changed } }",
                json!({}),
            ),
            ("{ __schema { types { name } } }", json!({})),
            ("{ viewer { subject } }", json!({})),
            (
                "{ organizations(after: \"c\") { nodes { id } } }",
                json!({}),
            ),
            ("{ organizations(first: 101) { nodes { id } } }", json!({})),
            ("{ organizations { nodes { id @deprecated } } }", json!({})),
            ("{ organization(id: \"inv_1\") { id } }", json!({})),
            (
                "query($n: Int!) { organizations(first: $n) { nodes { id } } }",
                json!({ "n": "3" }),
            ),
            (
                "query($n: Int!) { organizations(first: $n) { nodes { id } } }",
                json!({}),
            ),
            (
                "{ organizations { nodes { ... on Plan { code } } } }",
                json!({}),
            ),
        ] {
            assert!(!compiles(query, variables), "{query}");
        }
    }
}
