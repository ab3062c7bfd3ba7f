//! The catalog: one description of the domain, each fact written once.
//!
//! For each entity: its GraphQL name and description, its table and id
//! prefix, and the permission reading it needs; for each field: its GraphQL
//! name, where its value comes from (a column with its type and nullability,
//! an object over the same row, a related row, a page of related rows with
//! their order), its description and its **class** (public, personal data,
//! cost data, internal flag, internal note). A field's permission and whether
//! its reads are audited follow from its class; a relation needs what its
//! target needs. The root lookups and lists, with their orderings, are here
//! too.
//!
//! A column is described where it is declared, once: on the sea-orm model's
//! field, `#[catalog(CostData, nullable, "…")]` (`backplane_macros::Catalog`
//! derives the model's `CATALOG` of column fields: GraphQL name from the
//! field's, type and nullability from its Rust type). The entities here take
//! their columns from there and add their relations, orderings and roots.
//!
//! Derived from it rather than written again:
//! - the schema's descriptions and each role's visibility of every catalog
//!   type and field (`graphql::described` rewrites async-graphql's registry
//!   from the catalog when the schema is built, so the role schemas, the
//!   introspection and the printed SDL all follow it);
//! - the column fields themselves: an entity's GraphQL object flattens one
//!   container (`graphql::described::Columns`) that declares and resolves
//!   every column field of the catalog, with its guard and its audit note;
//!   only relations, which go through DataLoaders, are written as resolvers,
//!   and their guard and foreign key come from here;
//! - the loaders' relations, the keyset orderings and their cursor tags, the
//!   store's tables and joins;
//! - the compiled SQL (`graphql::compiled`), which checks each field's and
//!   type's permission here for itself (a second wall behind the gate);
//! - the id prefixes (`graphql::ids`) and the audited fields (`policy`).
//!
//! Why a catalog that rewrites code-first types rather than a wholly dynamic
//! schema: the relations, filters and mutations keep async-graphql's typed
//! resolvers and inputs (the compiler checks them), while everything that is
//! a fact of the domain (a column, its class, a description, an order) is
//! data. A new public or cost column is a migration, the model's field with
//! its `#[catalog]` attribute, and its seed; nothing else names it.
//!
//! **Closed by default:** a model field without a `#[catalog]` attribute is
//! of class [`Class::Unclassified`]: hidden from every caller that does not
//! hold every permission (admin), not open to all.

use crate::policy::Permission;
use crate::store::entities::{
    credit_note, invoice, invoice_line, organization, plan, staff_member, subscription,
    support_ticket, ticket_message, user,
};

/// What kind of data a field holds: its permission and whether reading it is
/// audited follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Readable by whoever may read the entity; reads not recorded by name.
    Public,
    /// About a person (an email, a name): readable with the entity, every read
    /// recorded by name in the audit log.
    PersonalData,
    /// What a customer costs us: needs `read:cost_data`; reads audited.
    CostData,
    /// Fraud review, VIP, churn risk, beta access: needs
    /// `read:internal_flags`; reads audited.
    InternalFlag,
    /// Notes between staff: readable with the entity; reads audited.
    InternalNote,
    /// Not classified yet: hidden from every caller but one holding every
    /// permission (admin), and its reads audited. The default is closed.
    Unclassified,
}

impl Class {
    /// Whether reading a field of this class is recorded by name.
    pub const fn audited(self) -> bool {
        !matches!(self, Class::Public)
    }
}

/// What reading a field needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// One permission.
    One(Permission),
    /// Two permissions (the entity's, and the class's).
    Both(Permission, Permission),
    /// Every permission there is (an unclassified field: admin only).
    Everything,
}

impl Need {
    /// Whether a caller holding exactly `held` may read it.
    pub fn met_by(self, held: impl Fn(Permission) -> bool) -> bool {
        match self {
            Need::One(p) => held(p),
            Need::Both(a, b) => held(a) && held(b),
            Need::Everything => Permission::ALL.into_iter().all(held),
        }
    }

    /// The permission named in a refusal: the first one missing.
    pub fn missing(self, held: impl Fn(Permission) -> bool) -> Option<Permission> {
        let all: &[Permission] = match &self {
            Need::One(p) => std::slice::from_ref(p),
            Need::Both(a, b) => return [*a, *b].into_iter().find(|p| !held(*p)),
            Need::Everything => &Permission::ALL,
        };
        all.iter().copied().find(|p| !held(*p))
    }
}

/// The order of a list: a column (or none, for id order) and a direction;
/// ties are always broken by id in the same direction. The store turns it
/// into SQL (`store::page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sort {
    pub column: Option<&'static str>,
    pub descending: bool,
    /// For a column of enum values sorted by meaning rather than by name:
    /// the values, lowest first (a ticket's priority).
    pub rank: Option<&'static [&'static str]>,
}

impl Sort {
    pub const ID_ASC: Sort = Sort {
        column: None,
        descending: false,
        rank: None,
    };

    pub const fn by(column: &'static str, descending: bool) -> Self {
        Sort {
            column: Some(column),
            descending,
            rank: None,
        }
    }

    /// The same order, the other way (ties by id reversed too).
    pub const fn reversed(self) -> Self {
        Sort {
            descending: !self.descending,
            ..self
        }
    }

    /// By `column`'s enum values in the order of `values`, lowest first.
    pub const fn ranked(
        column: &'static str,
        values: &'static [&'static str],
        descending: bool,
    ) -> Self {
        Sort {
            column: Some(column),
            descending,
            rank: Some(values),
        }
    }
}

/// One ordering of one list: the cursor tag that binds a cursor to it (the
/// entity's id prefix and the order), and the sort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ordering {
    pub tag: &'static str,
    pub sort: Sort,
}

impl Ordering {
    pub const fn new(tag: &'static str, sort: Sort) -> Self {
        Self { tag, sort }
    }
}

/// How a column's value becomes a GraphQL value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// The row's opaque id (`org_42`): the entity's prefix and the column.
    Id,
    Text,
    Int,
    Bool,
    /// An instant: `DateTime`, RFC 3339 in UTC.
    Time,
    /// A GraphQL enum of this name; the column holds the value's name.
    Enum(&'static str),
    /// A comma-separated column, as a list of strings.
    TextList,
}

impl Scalar {
    /// The GraphQL type's name.
    pub fn type_name(self) -> &'static str {
        match self {
            Scalar::Id => "ID",
            Scalar::Text => "String",
            Scalar::Int => "Int",
            Scalar::Bool => "Boolean",
            Scalar::Time => "DateTime",
            Scalar::Enum(name) => name,
            Scalar::TextList => "[String!]",
        }
    }
}

/// How an object reaches the one related row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// The related row's id is in this column of ours.
    Forward(&'static str),
    /// The related row holds our id in this column (at most one such row).
    Back(&'static str),
    /// Through a row of `table` that holds our id in `back` and the related
    /// row's id in `forward` (an organization's plan, through its
    /// subscription).
    Through {
        table: &'static str,
        back: &'static str,
        forward: &'static str,
    },
}

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A column of the row.
    Column {
        column: &'static str,
        scalar: Scalar,
        /// Whether the GraphQL field may be null.
        nullable: bool,
    },
    /// An object of this catalog type over the same row (`internalFlags`).
    Embedded(&'static str),
    /// The one related row of `target`; `required` when every row has one
    /// (a non-null foreign key: the GraphQL field is non-null), else null
    /// when there is none.
    ToOne {
        target: &'static str,
        join: Join,
        required: bool,
    },
    /// A page of the `target` rows that hold our id in `parent_column`, in
    /// `ordering`.
    Many {
        target: &'static str,
        parent_column: &'static str,
        ordering: Ordering,
    },
}

/// One field of an entity.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub description: &'static str,
    pub class: Class,
    pub source: Source,
}

/// A column field, as a model's derive declares it: the catalog type it
/// belongs to (the model's entity, or an object embedded over its row).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub owner: &'static str,
    pub field: Field,
}

/// A GraphQL object type over a table.
#[derive(Debug)]
pub struct Entity {
    pub name: &'static str,
    pub description: &'static str,
    pub table: &'static str,
    /// The prefix of its opaque ids; none for an object embedded in another
    /// entity's row.
    pub id_prefix: Option<&'static str>,
    /// "an organization": how errors name it.
    pub noun: &'static str,
    /// What reading any of it needs.
    pub read: Permission,
    /// The column fields, declared where the columns are: on the sea-orm
    /// model's fields (`#[catalog(Class, "description")]`, derived by
    /// `backplane_macros::Catalog`), each once; those whose `owner` is this
    /// entity are its own (a model may carry an embedded object's).
    pub columns: &'static [Column],
    /// Its relations and embedded objects.
    pub relations: &'static [Field],
    /// Its orderings, by the GraphQL value of its order enum, the default
    /// first; empty when its lists have one order only.
    pub orderings: &'static [(&'static str, Ordering)],
    /// Whether its records keep a history: a `history(first, after)` field
    /// read from the audit log (not a column, so not among `fields`).
    pub history: bool,
}

/// How a root field finds its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// One row by its opaque id (argument `id`).
    ById,
    /// One row by a unique column, from the argument of the same meaning.
    ByColumn {
        argument: &'static str,
        column: &'static str,
    },
    /// A page of every row (filters are the store's); ordered by the
    /// entity's `orderings` (or `default` when it has none).
    List { default: Ordering },
    /// Every row, unpaged (a short list: the plans).
    Every,
}

/// A field of `Query` over a catalog entity.
#[derive(Clone, Copy, Debug)]
pub struct Root {
    pub name: &'static str,
    pub description: &'static str,
    pub entity: &'static str,
    pub lookup: Lookup,
}

const fn field(
    name: &'static str,
    class: Class,
    source: Source,
    description: &'static str,
) -> Field {
    Field {
        name,
        description,
        class,
        source,
    }
}

const fn many(target: &'static str, parent_column: &'static str, ordering: Ordering) -> Source {
    Source::Many {
        target,
        parent_column,
        ordering,
    }
}

/// A link every row has: a non-null foreign key.
const fn forward(target: &'static str, column: &'static str) -> Source {
    Source::ToOne {
        target,
        join: Join::Forward(column),
        required: true,
    }
}

/// A link a row may lack: a nullable foreign key.
const fn optional(target: &'static str, column: &'static str) -> Source {
    Source::ToOne {
        target,
        join: Join::Forward(column),
        required: false,
    }
}

/// A page's `first`, as every relation's description says it.
macro_rules! paged {
    ($what:literal) => {
        concat!(
            $what,
            " `first`: default 20, at most 100 (1,000 for service identities) unless configured."
        )
    };
}

use Class::{InternalFlag, Public};
use Permission::{ReadBilling, ReadCustomers, ReadInternalFlags};

/// An organization's users: oldest first.
const USERS_OLDEST_FIRST: Ordering = Ordering::new("usr:id", Sort::ID_ASC);
/// Invoices under a parent: newest first.
const INVOICES_NEWEST_FIRST: Ordering =
    Ordering::new("inv:issued_desc", Sort::by("issued_at", true));
/// Tickets under a parent: newest first.
const TICKETS_NEWEST_FIRST: Ordering =
    Ordering::new("tkt:created_desc", Sort::by("created_at", true));
const LINES_IN_ORDER: Ordering = Ordering::new("inl:id", Sort::ID_ASC);
const CREDIT_NOTES_IN_ORDER: Ordering = Ordering::new("crn:id", Sort::ID_ASC);
const MESSAGES_IN_ORDER: Ordering = Ordering::new("msg:id", Sort::ID_ASC);
const SUBSCRIPTIONS_OLDEST_FIRST: Ordering = Ordering::new("sub:id", Sort::ID_ASC);
const STAFF_BY_ID: Ordering = Ordering::new("stf:id", Sort::ID_ASC);
/// A ticket's priorities as stored, least urgent first (a test holds it to
/// the store's enum).
pub const TICKET_PRIORITIES: &[&str] = &["LOW", "NORMAL", "HIGH", "URGENT"];

/// Every entity of the domain.
pub const ENTITIES: &[Entity] = &[
    Entity {
        name: "Organization",
        description: "A customer account.",
        table: "organizations",
        id_prefix: Some("org"),
        noun: "an organization",
        read: ReadCustomers,
        columns: organization::Model::CATALOG,
        relations: &[
            field(
                "internalFlags",
                InternalFlag,
                Source::Embedded("InternalFlags"),
                "Internal flags: fraud review, VIP, churn risk, beta access. Only callers who may read internal flags (`read:internal_flags`) have this field.",
            ),
            field(
                "plan",
                Public,
                Source::ToOne {
                    target: "Plan",
                    join: Join::Through {
                        table: "subscriptions",
                        back: "organization_id",
                        forward: "plan_id",
                    },
                    required: false,
                },
                "The plan of the current subscription; null when there is none.",
            ),
            field(
                "subscription",
                Public,
                Source::ToOne {
                    target: "Subscription",
                    join: Join::Back("organization_id"),
                    required: false,
                },
                "The current subscription; null when there is none.",
            ),
            field(
                "users",
                Public,
                many("User", "organization_id", USERS_OLDEST_FIRST),
                paged!("The account's users, oldest first."),
            ),
            field(
                "invoices",
                Public,
                many("Invoice", "organization_id", INVOICES_NEWEST_FIRST),
                paged!("The account's invoices, newest first."),
            ),
            field(
                "tickets",
                Public,
                many("SupportTicket", "organization_id", TICKETS_NEWEST_FIRST),
                paged!("The account's support tickets, newest first."),
            ),
        ],
        orderings: &[
            (
                "CREATED_AT_ASC",
                Ordering::new("org:created_asc", Sort::by("created_at", false)),
            ),
            (
                "CREATED_AT_DESC",
                Ordering::new("org:created_desc", Sort::by("created_at", true)),
            ),
            (
                "NAME_ASC",
                Ordering::new("org:name_asc", Sort::by("name", false)),
            ),
            (
                "NAME_DESC",
                Ordering::new("org:name_desc", Sort::by("name", true)),
            ),
        ],
        history: true,
    },
    Entity {
        name: "InternalFlags",
        description: "Internal flags of an account; never shown to customers.",
        table: "organizations",
        id_prefix: None,
        noun: "the internal flags of an organization",
        read: ReadInternalFlags,
        columns: organization::Model::CATALOG,
        relations: &[],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "Plan",
        description: "A price plan.",
        table: "plans",
        id_prefix: Some("pln"),
        noun: "a plan",
        read: ReadCustomers,
        columns: plan::Model::CATALOG,
        relations: &[field(
            "subscriptions",
            Public,
            many("Subscription", "plan_id", SUBSCRIPTIONS_OLDEST_FIRST),
            paged!("Subscriptions on this plan, oldest first."),
        )],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "Subscription",
        description: "An organization's plan and seats.",
        table: "subscriptions",
        id_prefix: Some("sub"),
        noun: "a subscription",
        read: ReadBilling,
        columns: subscription::Model::CATALOG,
        relations: &[
            field(
                "plan",
                Public,
                forward("Plan", "plan_id"),
                "The plan subscribed to.",
            ),
            field(
                "organization",
                Public,
                forward("Organization", "organization_id"),
                "The subscribing organization.",
            ),
        ],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "Invoice",
        description: "An invoice sent to an organization.",
        table: "invoices",
        id_prefix: Some("inv"),
        noun: "an invoice",
        read: ReadBilling,
        columns: invoice::Model::CATALOG,
        relations: &[
            field(
                "organization",
                Public,
                forward("Organization", "organization_id"),
                "The invoiced organization.",
            ),
            field(
                "lines",
                Public,
                many("InvoiceLine", "invoice_id", LINES_IN_ORDER),
                paged!("The invoice's lines in order."),
            ),
            field(
                "creditNotes",
                Public,
                many("CreditNote", "invoice_id", CREDIT_NOTES_IN_ORDER),
                paged!("Credit notes issued on this invoice, oldest first."),
            ),
        ],
        orderings: &[
            ("ISSUED_AT_DESC", INVOICES_NEWEST_FIRST),
            (
                "ISSUED_AT_ASC",
                Ordering::new("inv:issued_asc", Sort::by("issued_at", false)),
            ),
        ],
        history: true,
    },
    Entity {
        name: "InvoiceLine",
        description: "One line of an invoice.",
        table: "invoice_lines",
        id_prefix: Some("inl"),
        noun: "an invoice line",
        read: ReadBilling,
        columns: invoice_line::Model::CATALOG,
        relations: &[field(
            "invoice",
            Public,
            forward("Invoice", "invoice_id"),
            "The invoice this line belongs to.",
        )],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "CreditNote",
        description: "Money given back on a paid invoice.",
        table: "credit_notes",
        id_prefix: Some("crn"),
        noun: "a credit note",
        read: ReadBilling,
        columns: credit_note::Model::CATALOG,
        relations: &[field(
            "invoice",
            Public,
            forward("Invoice", "invoice_id"),
            "The invoice credited.",
        )],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "User",
        description: "A person in a customer organization.",
        table: "users",
        id_prefix: Some("usr"),
        noun: "a user",
        read: ReadCustomers,
        columns: user::Model::CATALOG,
        relations: &[
            field(
                "organization",
                Public,
                forward("Organization", "organization_id"),
                "The organization the user belongs to.",
            ),
            field(
                "tickets",
                Public,
                many("SupportTicket", "requester_id", TICKETS_NEWEST_FIRST),
                paged!("Tickets this user opened, newest first."),
            ),
        ],
        orderings: &[
            (
                "CREATED_AT_ASC",
                Ordering::new("usr:created_asc", Sort::by("created_at", false)),
            ),
            (
                "CREATED_AT_DESC",
                Ordering::new("usr:created_desc", Sort::by("created_at", true)),
            ),
            (
                "EMAIL_ASC",
                Ordering::new("usr:email_asc", Sort::by("email", false)),
            ),
            (
                "EMAIL_DESC",
                Ordering::new("usr:email_desc", Sort::by("email", true)),
            ),
            (
                "NAME_ASC",
                Ordering::new("usr:name_asc", Sort::by("name", false)),
            ),
        ],
        history: false,
    },
    Entity {
        name: "SupportTicket",
        description: "A customer's support request.",
        table: "support_tickets",
        id_prefix: Some("tkt"),
        noun: "a ticket",
        read: ReadCustomers,
        columns: support_ticket::Model::CATALOG,
        relations: &[
            field(
                "organization",
                Public,
                forward("Organization", "organization_id"),
                "The organization the ticket belongs to.",
            ),
            field(
                "requester",
                Public,
                forward("User", "requester_id"),
                "The customer user who opened the ticket.",
            ),
            field(
                "assignee",
                Public,
                optional("StaffMember", "assignee_id"),
                "The staff member working on it; null when unassigned.",
            ),
            field(
                "messages",
                Public,
                many("TicketMessage", "ticket_id", MESSAGES_IN_ORDER),
                paged!("The conversation, oldest first."),
            ),
        ],
        orderings: &[
            ("CREATED_AT_DESC", TICKETS_NEWEST_FIRST),
            (
                "CREATED_AT_ASC",
                Ordering::new("tkt:created_asc", Sort::by("created_at", false)),
            ),
            (
                "PRIORITY_DESC",
                Ordering::new(
                    "tkt:priority_desc",
                    Sort::ranked("priority", TICKET_PRIORITIES, true),
                ),
            ),
            (
                "PRIORITY_ASC",
                Ordering::new(
                    "tkt:priority_asc",
                    Sort::ranked("priority", TICKET_PRIORITIES, false),
                ),
            ),
            (
                "UPDATED_AT_DESC",
                Ordering::new("tkt:updated_desc", Sort::by("updated_at", true)),
            ),
            (
                "UPDATED_AT_ASC",
                Ordering::new("tkt:updated_asc", Sort::by("updated_at", false)),
            ),
        ],
        history: true,
    },
    Entity {
        name: "TicketMessage",
        description: "One message of a ticket's conversation.",
        table: "ticket_messages",
        id_prefix: Some("msg"),
        noun: "a ticket message",
        read: ReadCustomers,
        columns: ticket_message::Model::CATALOG,
        relations: &[
            field(
                "ticket",
                Public,
                forward("SupportTicket", "ticket_id"),
                "The ticket.",
            ),
            field(
                "authorUser",
                Public,
                optional("User", "author_user_id"),
                "The customer who wrote it; null when staff wrote it.",
            ),
            field(
                "authorStaff",
                Public,
                optional("StaffMember", "author_staff_id"),
                "The staff member who wrote it; null when the customer wrote it.",
            ),
        ],
        orderings: &[],
        history: false,
    },
    Entity {
        name: "StaffMember",
        description: "An employee, as last seen in a token from the identity provider.",
        table: "staff_members",
        id_prefix: Some("stf"),
        noun: "a staff member",
        read: ReadCustomers,
        columns: staff_member::Model::CATALOG,
        relations: &[field(
            "assignedTickets",
            Public,
            many("SupportTicket", "assignee_id", TICKETS_NEWEST_FIRST),
            paged!("Tickets assigned to this person, newest first."),
        )],
        orderings: &[
            ("CREATED_AT_ASC", STAFF_BY_ID),
            (
                "NAME_ASC",
                Ordering::new("stf:name_asc", Sort::by("name", false)),
            ),
            (
                "NAME_DESC",
                Ordering::new("stf:name_desc", Sort::by("name", true)),
            ),
            (
                "EMAIL_ASC",
                Ordering::new("stf:email_asc", Sort::by("email", false)),
            ),
        ],
        history: false,
    },
];

/// The audit log's ids (`aud_42`): it is not an entity of the catalog yet
/// (its type is written by hand, readable with `read:audit_log`), but its id
/// prefix and order are facts of the domain like the others.
pub const AUDIT_EVENT_PREFIX: &str = "aud";

/// The audit log, newest first.
pub const AUDIT_NEWEST_FIRST: Ordering = Ordering::new(
    "aud:id_desc",
    Sort {
        column: None,
        descending: true,
        rank: None,
    },
);

/// The root fields over catalog entities.
pub const ROOTS: &[Root] = &[
    Root {
        name: "organizations",
        description: "Customer accounts. `first`: default 20, at most 100 (1,000 for service identities) unless configured; `after`: an `endCursor` of the same list and order.",
        entity: "Organization",
        lookup: Lookup::List {
            default: Ordering::new("org:created_asc", Sort::by("created_at", false)),
        },
    },
    Root {
        name: "organization",
        description: "One organization by id; null when there is none.",
        entity: "Organization",
        lookup: Lookup::ById,
    },
    Root {
        name: "organizationBySlug",
        description: "One organization by slug; null when there is none.",
        entity: "Organization",
        lookup: Lookup::ByColumn {
            argument: "slug",
            column: "slug",
        },
    },
    Root {
        name: "users",
        description: paged!("Customer users."),
        entity: "User",
        lookup: Lookup::List {
            default: Ordering::new("usr:created_asc", Sort::by("created_at", false)),
        },
    },
    Root {
        name: "user",
        description: "One user by id; null when there is none.",
        entity: "User",
        lookup: Lookup::ById,
    },
    Root {
        name: "userByEmail",
        description: "One user by email, case-insensitively; null when there is none.",
        entity: "User",
        lookup: Lookup::ByColumn {
            argument: "email",
            column: "email",
        },
    },
    Root {
        name: "invoices",
        description: paged!("Invoices."),
        entity: "Invoice",
        lookup: Lookup::List {
            default: INVOICES_NEWEST_FIRST,
        },
    },
    Root {
        name: "invoice",
        description: "One invoice by id; null when there is none.",
        entity: "Invoice",
        lookup: Lookup::ById,
    },
    Root {
        name: "tickets",
        description: paged!("Support tickets."),
        entity: "SupportTicket",
        lookup: Lookup::List {
            default: TICKETS_NEWEST_FIRST,
        },
    },
    Root {
        name: "ticket",
        description: "One ticket by id; null when there is none.",
        entity: "SupportTicket",
        lookup: Lookup::ById,
    },
    Root {
        name: "plans",
        description: "Every price plan, cheapest first.",
        entity: "Plan",
        lookup: Lookup::Every,
    },
    Root {
        name: "staffMembers",
        description: paged!(
            "Staff members known from the identity provider, in the order first seen."
        ),
        entity: "StaffMember",
        lookup: Lookup::List {
            default: STAFF_BY_ID,
        },
    },
    Root {
        name: "staffMember",
        description: "One staff member by id; null when there is none.",
        entity: "StaffMember",
        lookup: Lookup::ById,
    },
];

/// The entity named `name` (a GraphQL type name).
pub fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.name == name)
}

/// The entity named `name`; the catalog refers only to its own entities (a
/// unit test holds it to that), so a miss is a bug of the caller's literal.
pub fn expect_entity(name: &str) -> &'static Entity {
    entity(name).unwrap_or_else(|| panic!("{name} is not an entity of the catalog"))
}

/// The root field named `name`.
pub fn root(name: &str) -> Option<&'static Root> {
    ROOTS.iter().find(|r| r.name == name)
}

impl Entity {
    /// Its fields: its own columns, then its relations.
    pub fn fields(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.columns
            .iter()
            .filter(move |c| c.owner == self.name)
            .map(|c| &c.field)
            .chain(self.relations.iter())
    }

    /// Its field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields().find(|f| f.name == name)
    }

    /// The ordering its order enum's `value` stands for.
    pub fn ordering(&self, value: &str) -> Option<Ordering> {
        self.orderings
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, o)| *o)
    }

    /// Every ordering its lists may be in (those of its order enum, and of
    /// the relations and root lists that page through it).
    pub fn every_ordering(&self) -> impl Iterator<Item = Ordering> + '_ {
        let relations = ENTITIES
            .iter()
            .flat_map(|e| e.fields())
            .filter_map(move |f| match f.source {
                Source::Many {
                    target, ordering, ..
                } if target == self.name => Some(ordering),
                _ => None,
            });
        let roots = ROOTS.iter().filter_map(move |r| match r.lookup {
            Lookup::List { default } if r.entity == self.name => Some(default),
            _ => None,
        });
        self.orderings
            .iter()
            .map(|(_, o)| *o)
            .chain(relations)
            .chain(roots)
    }
}

impl Entity {
    /// The GraphQL types that exist for its sake, visible with it: itself,
    /// its connection, edge, filter and order (those the schema has), and
    /// the enums of its columns.
    pub fn types(&self) -> impl Iterator<Item = std::borrow::Cow<'static, str>> + '_ {
        use std::borrow::Cow;
        let companions = ["Connection", "Edge", "Filter", "Order"]
            .into_iter()
            .map(move |suffix| Cow::Owned(format!("{}{suffix}", self.name)));
        let enums = self.fields().filter_map(|f| match f.source {
            Source::Column {
                scalar: Scalar::Enum(name),
                ..
            } => Some(Cow::Borrowed(name)),
            _ => None,
        });
        std::iter::once(Cow::Borrowed(self.name))
            .chain(companions)
            .chain(enums)
    }
}

impl Field {
    /// The GraphQL type of a column field (`String!`, `[String!]!`, `Int`);
    /// `None` for relations and embedded objects, whose types are their
    /// targets'.
    pub fn column_type(&self) -> Option<String> {
        match self.source {
            Source::Column {
                scalar, nullable, ..
            } => Some(format!(
                "{}{}",
                scalar.type_name(),
                if nullable { "" } else { "!" }
            )),
            _ => None,
        }
    }

    /// The catalog entity a relation or embedded object leads to.
    pub fn target(&self) -> Option<&'static Entity> {
        match self.source {
            Source::Column { .. } => None,
            Source::Embedded(target)
            | Source::ToOne { target, .. }
            | Source::Many { target, .. } => entity(target),
        }
    }
}

/// What reading `entity.field` needs: the entity's read permission, and the
/// class's (`read:cost_data`, `read:internal_flags`), and for a relation
/// the target's read permission; `None` when it is not a catalog field.
pub fn needs(entity_name: &str, field_name: &str) -> Option<Need> {
    let entity = entity(entity_name)?;
    Some(needs_of(entity, entity.field(field_name)?))
}

/// What reading `field` of `entity` needs (see [`needs`]).
pub fn needs_of(entity: &Entity, field: &Field) -> Need {
    let own = entity.read;
    let extra = match field.class {
        Class::Unclassified => return Need::Everything,
        Class::CostData => Some(Permission::ReadCostData),
        Class::InternalFlag => Some(Permission::ReadInternalFlags),
        Class::Public | Class::PersonalData | Class::InternalNote => {
            field.target().map(|t| t.read).filter(|p| *p != own)
        }
    };
    match extra {
        Some(extra) if extra != own => Need::Both(own, extra),
        _ => Need::One(own),
    }
}

/// The extra permission `entity.field` needs beyond its entity's (what its
/// visibility reads); `Some(None)` when none.
pub fn extra_need(entity_name: &str, field_name: &str) -> Option<Option<Need>> {
    let own = entity(entity_name)?.read;
    Some(match needs(entity_name, field_name)? {
        Need::One(p) if p == own => None,
        Need::Both(a, b) if a == own => Some(Need::One(b)),
        other => Some(other),
    })
}

/// What a root field needs: its entity's read permission.
pub fn root_needs(name: &str) -> Option<Permission> {
    root(name).and_then(|r| entity(r.entity)).map(|e| e.read)
}

/// The order of the root list `name` (its default, when its entity has an
/// order enum).
pub fn root_ordering(name: &str) -> Ordering {
    match root(name).map(|r| r.lookup) {
        Some(Lookup::List { default }) => default,
        _ => panic!("{name} is not a root list of the catalog"),
    }
}

/// The text input fields whose values the audit log keeps in clear
/// (`audit::values`): why a change was made, what was searched for, the codes
/// and names a filter or change names. Any other text a caller sends (a
/// message body, an idempotency key, a variable of type `String`, whatever
/// its name) is kept as its length and a keyed hash only.
pub const RECORDED_TEXT: &[(&str, &str)] = &[
    ("AuditEventFilter", "actor"),
    ("AuditEventFilter", "field"),
    ("AuditEventFilter", "operationName"),
    ("AuditEventFilter", "outcome"),
    ("BulkInvoiceVoidInput", "reason"),
    ("BulkOrganizationFlagInput", "reason"),
    ("BulkOrganizationStatusInput", "reason"),
    ("BulkTicketAssignmentInput", "reason"),
    ("ChangeSubscriptionInput", "planCode"),
    ("ChangeSubscriptionInput", "reason"),
    ("ExtendTrialInput", "reason"),
    ("InvoiceFilter", "currency"),
    ("InvoiceFilter", "search"),
    ("IssueCreditNoteInput", "reason"),
    ("MarkInvoicePaidInput", "paymentReference"),
    ("OrganizationFilter", "planCode"),
    ("OrganizationFilter", "search"),
    ("SetOrganizationFlagInput", "reason"),
    ("SetOrganizationStatusInput", "reason"),
    ("SupportTicketFilter", "search"),
    ("UpdateTicketInput", "reason"),
    ("UserFilter", "search"),
    ("VoidInvoiceInput", "reason"),
];

/// Whether the audit log keeps the text of `input.field` in clear.
pub fn is_recorded_text(input: &str, field: &str) -> bool {
    RECORDED_TEXT
        .iter()
        .any(|(i, f)| *i == input && *f == field)
}

/// Whether reads of `entity.field` are recorded by name in the audit log.
pub fn is_audited(entity_name: &str, field_name: &str) -> bool {
    entity(entity_name)
        .and_then(|e| e.field(field_name))
        .is_some_and(|f| f.class.audited())
}

/// Every audited field, as `Type.field`.
pub fn audited_fields() -> impl Iterator<Item = String> {
    ENTITIES.iter().flat_map(|e| {
        e.fields()
            .filter(|f| f.class.audited())
            .map(move |f| format!("{}.{}", e.name, f.name))
    })
}

/// The relations followed from the root list `organizations` to reach
/// `entity`, shortest first, as `(entity, field)` steps; `None` when it
/// cannot be reached. (Tests generate their documents with it.)
pub fn path_from_organizations(target: &str) -> Option<Vec<(&'static Entity, &'static Field)>> {
    type Path = Vec<(&'static Entity, &'static Field)>;
    let start = entity("Organization")?;
    let mut queue: std::collections::VecDeque<(&'static Entity, Path)> =
        std::collections::VecDeque::from([(start, Vec::new())]);
    let mut seen = std::collections::HashSet::from([start.name]);
    while let Some((at, path)) = queue.pop_front() {
        if at.name == target {
            return Some(path);
        }
        for field in at.fields() {
            if let Some(related) = field.target()
                && seen.insert(related.name)
            {
                let mut next = path.clone();
                next.push((at, field));
                queue.push_back((related, next));
            }
        }
    }
    None
}

/// The table of the entity named `entity`.
pub fn table(entity: &str) -> &'static str {
    expect_entity(entity).table
}

/// The column of the column field `entity.field`. The callers name fields
/// of the catalog (their tests run each); a miss is a bug of the literal.
pub fn column_of(entity: &str, field: &str) -> &'static str {
    match expect_entity(entity).field(field).map(|f| f.source) {
        Some(Source::Column { column, .. }) => column,
        _ => panic!("{entity}.{field} is not a column field of the catalog"),
    }
}

/// The column of `entity`'s table holding the related row's id of its
/// to-one relation `field` (`SupportTicket.assignee` → `assignee_id`).
pub fn foreign_key(entity: &str, field: &str) -> &'static str {
    match expect_entity(entity).field(field).map(|f| f.source) {
        Some(Source::ToOne {
            join: Join::Forward(column),
            ..
        }) => column,
        _ => panic!("{entity}.{field} is not a to-one relation by a column of the catalog"),
    }
}

/// The join of the to-one relation `entity.field` through another table:
/// `(table, back, forward, target table)`.
pub fn through(
    entity: &str,
    field: &str,
) -> (&'static str, &'static str, &'static str, &'static str) {
    match expect_entity(entity)
        .field(field)
        .map(|f| (f.source, f.target()))
    {
        Some((
            Source::ToOne {
                join:
                    Join::Through {
                        table,
                        back,
                        forward,
                    },
                ..
            },
            Some(target),
        )) => (table, back, forward, target.table),
        _ => panic!("{entity}.{field} is not a to-one relation through a table of the catalog"),
    }
}

/// Whether `ordering` sorts by a column holding instants: the column's
/// catalog type, on the entity its tag's prefix names (its cursors carry an
/// instant, not text).
pub fn sorts_by_instant(ordering: &Ordering) -> bool {
    let Some(column) = ordering.sort.column else {
        return false;
    };
    let prefix = ordering.tag.split(':').next().unwrap_or_default();
    entity_with_prefix(prefix)
        .and_then(|e| {
            e.fields().find_map(|f| match f.source {
                Source::Column {
                    column: c, scalar, ..
                } if c == column => Some(scalar == Scalar::Time),
                _ => None,
            })
        })
        .unwrap_or(false)
}

/// The entity whose ids carry `prefix`.
pub fn entity_with_prefix(prefix: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.id_prefix == Some(prefix))
}

/// The opaque id of row `row` of `entity` (`org_42`), as the API shows it.
pub fn public_id(entity: &str, row: i64) -> String {
    format!(
        "{}_{row}",
        expect_entity(entity).id_prefix.unwrap_or_default()
    )
}

/// What reading the field at `path` of `entity` needs, one [`Need`] per
/// step (`subscription.seats`: the subscription's, then the seats'); `None`
/// when the path is not in the catalog (then nobody reads it: closed).
pub fn path_needs(entity_name: &str, path: &str) -> Option<Vec<Need>> {
    let mut entity = entity(entity_name)?;
    let mut needs = Vec::new();
    let mut steps = path.split('.').peekable();
    while let Some(step) = steps.next() {
        let field = entity.field(step)?;
        needs.push(needs_of(entity, field));
        if steps.peek().is_some() {
            entity = field.target()?;
        }
    }
    Some(needs)
}

/// Every field path of `entity` a change can name: its fields, and the
/// fields of the objects its to-one fields lead to (`subscription.seats`,
/// `internalFlags.vip`).
pub fn field_paths(entity_name: &str) -> Vec<String> {
    let Some(entity) = entity(entity_name) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for field in entity.fields() {
        paths.push(field.name.to_owned());
        if let (Source::Embedded(_) | Source::ToOne { .. }, Some(target)) =
            (&field.source, field.target())
        {
            paths.extend(
                target
                    .fields()
                    .map(|f| format!("{}.{}", field.name, f.name)),
            );
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// An internal message (`addInternalNote`) is an internal note in a
    /// ticket's conversation: reading one needs what reading the ticket's
    /// internal notes needs, and is audited as theirs is. The messages
    /// relation has no row filter: should internal notes ever need more than
    /// their message does, this fails and the relation needs one.
    #[test]
    fn reading_a_message_needs_what_reading_internal_notes_does() {
        assert_eq!(
            needs("TicketMessage", "body"),
            needs("SupportTicket", "internalNotes")
        );
        assert_eq!(
            needs("SupportTicket", "messages"),
            needs("SupportTicket", "internalNotes")
        );
        assert!(is_audited("TicketMessage", "body"));
        assert!(is_audited("SupportTicket", "internalNotes"));
    }

    #[test]
    fn ticket_priorities_rank_as_the_store_declares_them() {
        use sea_orm::{ActiveEnum, Iterable};
        let stored: Vec<String> = support_ticket::TicketPriority::iter()
            .map(|p| p.to_value())
            .collect();
        assert_eq!(stored, TICKET_PRIORITIES);
    }

    /// A link is required exactly when its foreign key is not null.
    #[test]
    fn required_links_are_non_null_foreign_keys() {
        for e in ENTITIES {
            for f in e.fields() {
                if let Source::ToOne {
                    join: Join::Forward(column),
                    required,
                    ..
                } = f.source
                {
                    let nullable = model_column_nullable(e.name, column);
                    assert_eq!(required, !nullable, "{}.{}", e.name, f.name);
                }
            }
        }
    }

    /// Whether the sea-orm model's column is nullable.
    fn model_column_nullable(entity: &str, column: &str) -> bool {
        use sea_orm::{ColumnTrait, EntityTrait, IdenStatic, Iterable};
        fn of<E: EntityTrait>(column: &str) -> bool {
            E::Column::iter()
                .find(|c| c.as_str() == column)
                .map(|c| c.def().is_null())
                .unwrap_or_else(|| panic!("no column {column}"))
        }
        match entity {
            "Subscription" => of::<subscription::Entity>(column),
            "Invoice" => of::<invoice::Entity>(column),
            "InvoiceLine" => of::<invoice_line::Entity>(column),
            "CreditNote" => of::<credit_note::Entity>(column),
            "User" => of::<user::Entity>(column),
            "SupportTicket" => of::<support_ticket::Entity>(column),
            "TicketMessage" => of::<ticket_message::Entity>(column),
            other => panic!("{other} has no forward link known to the test"),
        }
    }

    #[test]
    fn every_reference_names_an_entity_of_the_catalog() {
        for e in ENTITIES {
            for f in e.fields() {
                if let Source::Embedded(t)
                | Source::ToOne { target: t, .. }
                | Source::Many { target: t, .. } = f.source
                {
                    assert!(entity(t).is_some(), "{}.{} → {t}", e.name, f.name);
                }
            }
        }
        for r in ROOTS {
            assert!(entity(r.entity).is_some(), "{}", r.name);
        }
    }

    #[test]
    fn names_prefixes_and_cursor_tags_are_unique() {
        let mut names = HashSet::new();
        let mut prefixes = HashSet::new();
        for e in ENTITIES {
            assert!(names.insert(e.name), "{}", e.name);
            if let Some(p) = e.id_prefix {
                assert!(prefixes.insert(p), "{p}");
            }
            let mut fields = HashSet::new();
            for f in e.fields() {
                assert!(fields.insert(f.name), "{}.{}", e.name, f.name);
            }
        }
        // One tag, one sort: a cursor opens only where it was made.
        let mut tags: std::collections::HashMap<&str, Sort> = Default::default();
        for e in ENTITIES {
            for o in e.every_ordering() {
                let prefix = o.tag.split(':').next().unwrap_or_default();
                assert_eq!(Some(prefix), e.id_prefix, "{} on {}", o.tag, e.name);
                if let Some(sort) = tags.insert(o.tag, o.sort) {
                    assert_eq!(sort, o.sort, "{}", o.tag);
                }
            }
        }
    }

    /// `Need` holds two permissions: a classed relation whose target needs a
    /// third would lose one. None exists; this fails the day one is added.
    #[test]
    fn no_field_needs_more_than_its_entity_and_one_more_permission() {
        for e in ENTITIES {
            for f in e.fields() {
                if let (Class::CostData | Class::InternalFlag, Some(t)) = (f.class, f.target()) {
                    let class = if f.class == Class::CostData {
                        Permission::ReadCostData
                    } else {
                        Permission::ReadInternalFlags
                    };
                    assert!(
                        t.read == e.read || t.read == class,
                        "{}.{}: a {:?} relation to {} (which needs {}) needs three permissions",
                        e.name,
                        f.name,
                        f.class,
                        t.name,
                        t.read.as_str()
                    );
                }
            }
        }
    }

    /// A type's visibility is its entity's: a type shared by entities that
    /// need different permissions would be visible by whichever came last.
    #[test]
    fn no_type_belongs_to_entities_read_with_different_permissions() {
        let mut owners: std::collections::HashMap<String, Permission> = Default::default();
        for e in ENTITIES {
            for t in e.types() {
                if let Some(p) = owners.insert(t.to_string(), e.read) {
                    assert_eq!(
                        p, e.read,
                        "{t} is shared by entities read with {p:?} and {:?}",
                        e.read
                    );
                }
            }
        }
    }

    #[test]
    fn a_cursor_holds_an_instant_exactly_when_its_column_is_one() {
        let by = |tag, column| Ordering::new(tag, Sort::by(column, false));
        assert!(sorts_by_instant(&by("org:created_asc", "created_at")));
        assert!(sorts_by_instant(&by("inv:issued_asc", "issued_at")));
        assert!(!sorts_by_instant(&by("usr:email_asc", "email")));
        assert!(!sorts_by_instant(&by("org:name_asc", "name")));
        assert!(!sorts_by_instant(&Ordering::new("org:id", Sort::ID_ASC)));
    }

    #[test]
    fn a_class_decides_the_permission_and_the_audit() {
        use Permission::*;
        assert_eq!(
            needs("Organization", "monthlyCostCents"),
            Some(Need::Both(ReadCustomers, ReadCostData))
        );
        assert_eq!(
            needs("Organization", "invoices"),
            Some(Need::Both(ReadCustomers, ReadBilling))
        );
        assert_eq!(
            needs("Organization", "name"),
            Some(Need::One(ReadCustomers))
        );
        assert_eq!(
            needs("Invoice", "organization"),
            Some(Need::Both(ReadBilling, ReadCustomers))
        );
        assert!(is_audited("User", "email"));
        assert!(!is_audited("User", "status"));
        assert_eq!(needs("Organization", "nothing"), None);
    }

    #[test]
    fn a_field_without_a_class_is_hidden_from_all_but_admin() {
        use crate::policy::{Role, permissions_of};

        const SECRET: Field = field(
            "secret",
            Class::Unclassified,
            Source::Column {
                column: "secret",
                scalar: Scalar::Text,
                nullable: false,
            },
            "Not reviewed yet.",
        );
        let entity = Entity {
            name: "Organization",
            description: "",
            table: "organizations",
            id_prefix: Some("org"),
            noun: "an organization",
            read: ReadCustomers,
            columns: &[Column {
                owner: "Organization",
                field: SECRET,
            }],
            relations: &[],
            orderings: &[],
            history: false,
        };
        let need = needs_of(&entity, &SECRET);
        for role in Role::ALL {
            let held = permissions_of(&std::collections::BTreeSet::from([role]));
            assert_eq!(
                need.met_by(|p| held.contains(&p)),
                role == Role::Admin,
                "{role}"
            );
        }
        // A service holding every scope it can hold (never the audit log)
        // does not see it either.
        let scopes: Vec<Permission> = Permission::ALL
            .into_iter()
            .filter(|p| *p != Permission::ReadAuditLog)
            .collect();
        assert!(!need.met_by(|p| scopes.contains(&p)));
    }

    /// The derive reads a model's fields: a field without `#[catalog]` is
    /// unclassified (admin only), `skip` leaves a column out, the GraphQL
    /// name and type follow the Rust field.
    #[test]
    fn a_model_field_without_a_class_is_unclassified() {
        #[derive(backplane_macros::Catalog)]
        #[catalog(entity = "Probe")]
        #[expect(dead_code, reason = "only its derived catalog is read")]
        struct Probe {
            #[catalog(Public, "The id.")]
            id: i64,
            forgotten_column: String,
            #[catalog(skip)]
            organization_id: i64,
            #[catalog(CostData, nullable, "A cost.")]
            cost_cents: i64,
            #[catalog(Public, list, "Names.")]
            roles: String,
            #[catalog(Public, on = "Embedded", "When.")]
            seen_at: Option<sea_orm::prelude::DateTimeUtc>,
            #[sea_orm(column_name = "display_label")]
            #[catalog(Public, "Stored under another name.")]
            label: String,
        }
        let by_name = |name: &str| {
            Probe::CATALOG
                .iter()
                .find(|c| c.field.name == name)
                .copied()
        };
        let forgotten = by_name("forgottenColumn").expect("listed");
        assert_eq!(forgotten.field.class, Class::Unclassified);
        assert!(by_name("organizationId").is_none());
        assert_eq!(Probe::CATALOG.len(), 6);
        assert_eq!(
            by_name("label").map(|c| c.field.source),
            Some(Source::Column {
                column: "display_label",
                scalar: Scalar::Text,
                nullable: false,
            })
        );
        assert_eq!(
            by_name("id").map(|c| c.field.column_type()),
            Some(Some("ID!".into()))
        );
        assert_eq!(
            by_name("costCents").map(|c| (c.field.class, c.field.column_type())),
            Some((Class::CostData, Some("Int".into())))
        );
        assert_eq!(
            by_name("roles").and_then(|c| c.field.column_type()),
            Some("[String!]!".into())
        );
        let seen = by_name("seenAt").expect("listed");
        assert_eq!(
            (seen.owner, seen.field.column_type()),
            ("Embedded", Some("DateTime".into()))
        );
        let entity = Entity {
            name: "Probe",
            description: "",
            table: "probes",
            id_prefix: Some("prb"),
            noun: "a probe",
            read: ReadCustomers,
            columns: Probe::CATALOG,
            relations: &[],
            orderings: &[],
            history: false,
        };
        assert_eq!(needs_of(&entity, &forgotten.field), Need::Everything);
    }

    #[test]
    fn an_unclassified_field_is_for_a_caller_holding_everything() {
        let unclassified = Need::Everything;
        assert!(unclassified.met_by(|_| true));
        assert!(!unclassified.met_by(|p| p != Permission::ReadAuditLog));
        assert_eq!(
            unclassified.missing(|p| p != Permission::ReadAuditLog),
            Some(Permission::ReadAuditLog)
        );
        assert!(Class::Unclassified.audited());
    }
}
