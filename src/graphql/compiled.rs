//! Reads compiled to one SQL statement, on PostgreSQL and SQLite.
//!
//! A query over the customer entities (organizations and their users,
//! invoices, subscriptions, tickets, … at any depth) becomes one `SELECT` whose
//! single value is the answer's `data` as JSON, built by the database: each
//! object a JSON array of its fields' values (`json_build_array`, SQLite's
//! `json_array`), each relation a correlated sub-select, each page its rows
//! `ORDER BY … LIMIT n` over the child's index, gathered into a JSON array
//! (`array_to_json(ARRAY(…))`, SQLite's `json_group_array(… ORDER BY …)`).
//! [`answer`] puts the response keys back and formats ids, instants, booleans
//! and lists of codes. One round trip per request instead of one per level, and no
//! resolver per field: async-graphql's executor spends a future on every field
//! of every object, which on a deep page cost more than the database did.
//!
//! What it does not understand it leaves to the executor, which stays the
//! reference: any field, argument or directive outside the subset below,
//! introspection, mutations. It also waits until the executor has run
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
//! `pagination`), which SQL cannot do: the statement gives its parts
//! (the sort value and the id) and [`answer`] seals them with the server's
//! cursor key into the executor's very bytes.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{
    BaseType, Directive, ExecutableDocument, Field as GqlField, OperationDefinition, OperationType,
    Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{InputType, Positioned, Request, Response, Value as ConstValue, Variables};
use sea_orm::{ConnectionTrait, DbBackend};

mod answer;
mod template;

pub use answer::CompiledAnswer;

use super::ids;

use super::filter::{Instant, InstantRange, ListFilter, ListOrder};
use super::pagination::{Cursors, DEFAULT_PAGE_SIZE, Ordering};
use super::types::billing::{InvoiceFilter, InvoiceOrder};
use super::types::organization::{OrganizationFilter, OrganizationOrder, OrganizationStatus};
use super::types::staff::{StaffMemberFilter, StaffMemberOrder};
use super::types::support::{SupportTicketFilter, SupportTicketOrder};
use super::types::user::{UserFilter, UserOrder};
use crate::audit::OperationAudit;
use crate::store::Store;
use crate::store::page::{Keyset, Sort};
use crate::store::sql::Sql;
use answer::{Entry, Node};
use template::{Slot, SlotKind, Template};

use crate::catalog::{self, Entity, Join, Lookup, Scalar, Source};
use crate::identity::Principal;

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

/// The compiled read path.
pub struct CompiledReads {
    store: Store,
    dialect: Dialect,
    /// The executor's cursor key: cursors are opened and sealed as it does.
    cursors: Cursors,
    known: Mutex<HashSet<KnownKey>>,
    /// Documents whose first run, on the executor, is under way, each with
    /// what wakes the requests waiting for its verdict. A query that finds
    /// its document here waits (at most [`LEARNING_WAIT`]) and is then
    /// compiled, rather than running on the executor too: a burst of first
    /// sights of one document (an admin page opened by many people after a
    /// deploy) would otherwise run them all on the executor at once, and the
    /// memory they take is kept by the allocator after them.
    learning: Arc<Mutex<HashMap<KnownKey, Arc<tokio::sync::Notify>>>>,
    /// Compiled statements kept for the next request of their document (see
    /// `template`), the least recently used dropped first. One lock, held for
    /// a lookup or an insertion only, never across the statement.
    templates: Mutex<lru::LruCache<TemplateKey, Vec<Arc<Template>>>>,
}

/// A document's SHA-256: what its parse and its templates are kept under.
pub(crate) fn digest(query: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(query.as_bytes()).into()
}

/// Whose templates: the document and operation, the permissions the caller
/// holds (the compiler checks every field against them) and its page limit.
/// Callers who may read different things never share one.
#[derive(Hash, PartialEq, Eq)]
struct TemplateKey {
    /// The text compiled (an export's pages are documents of their own,
    /// recorded under the export's) and the operation asked for.
    document: [u8; 32],
    operation: Option<String>,
    permissions: u32,
    max_page_size: i32,
}

/// Templates kept per document and caller key: one per set of values that
/// shape the text (a page size, a filter, an order).
const TEMPLATES_PER_DOCUMENT: usize = 4;

/// The longest statement text kept as a template (500 documents × 4
/// templates × this is the bound on the templates' memory).
const MAX_KEPT_TEMPLATE: usize = 16 * 1024;

/// The default number of documents whose templates are kept.
pub const DEFAULT_PREPARED_DOCUMENTS: usize = 500;

/// The permissions `principal` may use, one bit each.
fn permission_bits(principal: &Principal) -> u32 {
    crate::policy::Permission::ALL
        .iter()
        .enumerate()
        .filter(|(_, p)| principal.can(**p))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// How long a query waits for another request's first run of its document
/// before it runs on the executor itself.
const LEARNING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A document's first run on the executor, under way; dropping it (the run
/// ended, however it ended) wakes the requests waiting for it.
pub struct Learning {
    key: KnownKey,
    /// Whether this request holds the place the others wait on.
    first: bool,
    learning: Arc<Mutex<HashMap<KnownKey, Arc<tokio::sync::Notify>>>>,
}

impl Drop for Learning {
    fn drop(&mut self) {
        if !self.first {
            return;
        }
        let notify = self
            .learning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
}

fn known_key(request: &Request, operation: &OperationAudit) -> KnownKey {
    let mut key = operation.document_hash();
    key.push('\0');
    key.push_str(request.operation_name.as_deref().unwrap_or(""));
    key
}

impl CompiledReads {
    /// The compiled path over `store` (PostgreSQL or SQLite; none for
    /// another database); `cursors` are the schema's; the templates of up to
    /// `prepared` documents are kept (at least one).
    pub fn new(store: Store, cursors: Cursors, prepared: usize) -> Option<Self> {
        let backend = store.db().get_database_backend();
        let Some(dialect) = Dialect::of(backend) else {
            tracing::info!(
                "reads are answered by the GraphQL executor (compiled reads need PostgreSQL or SQLite)"
            );
            return None;
        };
        tracing::info!(
            database = ?backend,
            "reads over the customer entities are compiled to one SQL statement"
        );
        let prepared = NonZeroUsize::new(prepared).unwrap_or(NonZeroUsize::MIN);
        Some(Self {
            store,
            dialect,
            cursors,
            known: Mutex::new(HashSet::new()),
            learning: Arc::default(),
            templates: Mutex::new(lru::LruCache::new(prepared)),
        })
    }

    fn knows(&self, request: &Request, operation: &OperationAudit) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&known_key(request, operation))
    }

    /// Remembers that the executor ran the document being learned without a
    /// request error (so async-graphql validated it); the requests waiting
    /// for it go on when `learning` is dropped.
    pub fn learn(&self, learning: &Learning, response: &Response) {
        if response.errors.iter().any(|e| e.path.is_empty()) {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(learning.key.clone());
    }

    /// The learning of `request`'s document when it could be compiled next
    /// time; `None` when it already is known. Only the first of concurrent
    /// requests for one document holds the place the others wait on.
    pub fn to_learn(&self, request: &Request, operation: &OperationAudit) -> Option<Learning> {
        if self.knows(request, operation) {
            return None;
        }
        let key = known_key(request, operation);
        let mut learning = self.learning.lock().unwrap_or_else(|e| e.into_inner());
        let first = !learning.contains_key(&key);
        if first {
            learning.insert(key.clone(), Arc::default());
        }
        Some(Learning {
            key,
            first,
            learning: self.learning.clone(),
        })
    }

    /// Whether `request`'s document became known while this request waited
    /// for another one's first run of it; false at once when none is under
    /// way.
    async fn learned_meanwhile(&self, request: &Request, operation: &OperationAudit) -> bool {
        let key = known_key(request, operation);
        let Some(notify) = self
            .learning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
        else {
            return self.knows(request, operation);
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // It may have ended between the lookup and `enable`.
        let under_way = self
            .learning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .is_some_and(|n| Arc::ptr_eq(n, &notify));
        if under_way {
            let _ = tokio::time::timeout(LEARNING_WAIT, notified).await;
        }
        self.knows(request, operation)
    }

    /// Answers `request` with one statement: its `data` as JSON text; `None`
    /// for the executor to answer it (not compiled, not yet validated, or the
    /// statement failed).
    pub async fn run(
        &self,
        request: &Request,
        (document, digest): (&ExecutableDocument, [u8; 32]),
        principal: &Principal,
        max_page_size: i32,
        operation: &OperationAudit,
    ) -> Option<CompiledAnswer> {
        let wanted = request.operation_name.as_deref();
        let (_, definition) = super::gate::operation_to_run(document, wanted)?;
        // Only a document the executor ran (and so validated) is compiled; a
        // query whose first run is under way waits for it.
        let known = self.knows(request, operation)
            || (definition.ty == OperationType::Query
                && self.learned_meanwhile(request, operation).await);
        if !known {
            return None;
        }
        let key = TemplateKey {
            document: digest,
            operation: request.operation_name.clone(),
            permissions: permission_bits(principal),
            max_page_size,
        };
        let variables = &request.variables;
        if !variables_fit(definition, variables) {
            return None;
        }
        let backend = self.dialect.backend();
        let kept = self
            .templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .and_then(|kept| kept.iter().find(|t| t.fits(definition, variables)).cloned());
        let template = match kept {
            Some(template) => {
                metrics::counter!("backplane_compiled_templates_total", "result" => "reused")
                    .increment(1);
                template
            }
            None => {
                let compiled = compile(
                    self.dialect,
                    document,
                    wanted,
                    variables,
                    principal,
                    max_page_size,
                    &self.cursors,
                )?;
                let template = Arc::new(Template::new(backend, definition, variables, compiled));
                metrics::counter!("backplane_compiled_templates_total", "result" => "compiled")
                    .increment(1);
                // A statement longer than this is compiled for each request,
                // never kept: the templates' memory stays bounded whatever
                // documents are sent.
                if template.text.len() <= MAX_KEPT_TEMPLATE {
                    let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
                    let kept = templates.get_or_insert_mut(key, Vec::new);
                    if kept.len() >= TEMPLATES_PER_DOCUMENT {
                        kept.remove(0);
                    }
                    kept.push(template.clone());
                }
                template
            }
        };
        let statement = template.bind(backend, definition, variables, &self.cursors)?;
        let shape = &template.shape;
        let row = match self.store.db().query_one_raw(statement).await {
            Ok(row) => row?,
            Err(err) => {
                tracing::warn!(error = %err, "compiled read failed; the executor answers instead");
                return None;
            }
        };
        // The text as the driver holds it, not copied out of the row first.
        let text: &str = if let Some(row) = row.try_as_pg_row() {
            sea_orm::sqlx::Row::try_get(row, "data").ok()?
        } else if let Some(row) = row.try_as_sqlite_row() {
            sea_orm::sqlx::Row::try_get(row, "data").ok()?
        } else {
            // Compiled reads exist for PostgreSQL and SQLite only.
            return None;
        };
        let Some((answer, sensitive)) = answer::write(shape, text, &self.cursors, &template.growth)
        else {
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

/// The SQL each database speaks for the statement's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    fn of(backend: DbBackend) -> Option<Self> {
        match backend {
            DbBackend::Postgres => Some(Self::Postgres),
            DbBackend::Sqlite => Some(Self::Sqlite),
            _ => None,
        }
    }

    fn backend(self) -> DbBackend {
        match self {
            Self::Postgres => DbBackend::Postgres,
            Self::Sqlite => DbBackend::Sqlite,
        }
    }

    /// Opens a JSON array of the values that follow, separated by commas.
    fn array(self) -> &'static str {
        match self {
            Self::Postgres => "json_build_array(",
            Self::Sqlite => "json_array(",
        }
    }
}

/// The statement answering the operation `wanted` of `document`, and the
/// answer's shape; `None` when the executor must answer.
fn compile(
    dialect: Dialect,
    document: &ExecutableDocument,
    wanted: Option<&str>,
    variables: &Variables,
    principal: &Principal,
    max_page_size: i32,
    cursors: &Cursors,
) -> Option<Compiled> {
    let (_, operation) = super::gate::operation_to_run(document, wanted)?;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let candidates = template::slot_candidates(document, operation);
    let mut compiler = Compiler {
        dialect,
        document,
        operation,
        variables,
        principal,
        max_page_size,
        cursors,
        sql: Sql::default(),
        aliases: 0,
        spreads: 0,
        candidates: &candidates,
        tainted: HashSet::new(),
        slots: Vec::new(),
    };
    compiler.check_variables()?;
    let shape = compiler.root()?;
    let Compiler {
        sql,
        slots,
        tainted,
        ..
    } = compiler;
    // A variable bound through a slot and also used otherwise keys the
    // template by its value: its slots are filled with that same value.
    let pure = candidates
        .into_iter()
        .filter(|v| !tainted.contains(v))
        .collect();
    Some(Compiled {
        sql,
        shape,
        slots,
        pure,
    })
}

/// A compiled statement, the answer's shape, and what a template of it needs.
struct Compiled {
    sql: Sql,
    shape: Node,
    slots: Vec<Slot>,
    /// The variables that reach the statement through its slots only.
    pure: HashSet<String>,
}

struct Compiler<'a> {
    dialect: Dialect,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    /// Who asks: every field's permission is checked here again, from the
    /// catalog, as the executor's guards check it.
    principal: &'a Principal,
    max_page_size: i32,
    /// Opens `after` as the executor does.
    cursors: &'a Cursors,
    sql: Sql,
    aliases: usize,
    /// Fragment spreads followed, to bound the work on any document.
    spreads: usize,
    /// The variables that may be slots (see `template::slot_candidates`).
    candidates: &'a HashSet<String>,
    /// Of those, the ones read otherwise than through a slot.
    tainted: HashSet<String>,
    /// Where variables' values were bound.
    slots: Vec<Slot>,
}

const MAX_SPREADS: usize = 1_000;

/// The rows a connection pages through.
struct PageOf<'p> {
    target: &'p Entity,
    ordering: &'p Ordering,
    /// On alias `c`; empty for none.
    condition: &'p Sql,
    /// The row the page continues after, and the variable it came from.
    after: Option<&'p Keyset>,
    after_variable: Option<&'p str>,
}

/// `after`: the row a page continues after, and the variable that gave it.
type After<'a> = (Option<Keyset>, Option<&'a str>);

impl<'a> Compiler<'a> {
    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("t{}", self.aliases)
    }

    /// Every variable's value is of its declared type (else the executor
    /// answers, with its error).
    fn check_variables(&self) -> Option<()> {
        variables_fit(self.operation, self.variables).then_some(())
    }

    /// A variable's value: given, else its default, else null.
    fn variable(&self, name: &str) -> ConstValue {
        template::resolved(self.operation, self.variables, name)
    }

    /// An argument's value (null when not given), whose variables shape
    /// the statement's text.
    fn argument(&mut self, field: &Selected<'a>, name: &str) -> Option<ConstValue> {
        match field
            .field
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == name)
        {
            None => Some(ConstValue::Null),
            Some((_, value)) => {
                let mut read = Vec::new();
                let value = value
                    .node
                    .clone()
                    .into_const_with(|var| {
                        let value = self.variable(&var);
                        read.push(var);
                        Ok::<_, ()>(value)
                    })
                    .ok();
                for var in read {
                    if self.candidates.contains(var.as_str()) {
                        self.tainted.insert(var.to_string());
                    }
                }
                value
            }
        }
    }

    /// An argument's value that is bound, never written into the text: with
    /// the variable it is, when it is one that may be a slot.
    fn bound_argument(
        &mut self,
        field: &Selected<'a>,
        name: &str,
    ) -> Option<(ConstValue, Option<&'a str>)> {
        let given = field
            .field
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == name);
        if let Some((_, value)) = given
            && let async_graphql_value::Value::Variable(var) = &value.node
            && self.candidates.contains(var.as_str())
        {
            return Some((self.variable(var), Some(var.as_str())));
        }
        Some((self.argument(field, name)?, None))
    }

    /// Binds `value`, which came from `variable` when given.
    fn bind_from(
        &mut self,
        value: impl Into<sea_orm::Value>,
        variable: Option<&str>,
        kind: SlotKind,
    ) {
        if let Some(variable) = variable {
            self.slots.push(Slot {
                variable: variable.to_owned(),
                at: self.sql.value_count(),
                len: 1,
                kind,
            });
        }
        self.sql.bind(value);
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
                        // One key, one field: occurrences that differ in name
                        // or arguments are not merged here (validation should
                        // refuse them; the executor decides).
                        Some(existing) if !same_field(existing.field, field) => return None,
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

    /// Between the values of a JSON array.
    fn separator(&mut self, index: usize) {
        if index > 0 {
            self.sql.push(", ");
        }
    }

    /// `SELECT json_build_array(…)::text AS "data"` over the root fields
    /// (SQLite's `json_array` is text already).
    fn root(&mut self) -> Option<Node> {
        let fields = self.collect(&[&self.operation.selection_set.node], "Query")?;
        self.sql.push("SELECT ").push(self.dialect.array());
        let mut entries = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.separator(i);
            let node = match field.name {
                "__typename" => {
                    self.sql.push("'Query'");
                    Node::Leaf
                }
                name => {
                    let root = catalog::root(name)?;
                    if !self.may_read(catalog::root_needs(name).map(catalog::Need::One)) {
                        return None;
                    }
                    let target = catalog::entity(root.entity)?;
                    match root.lookup {
                        Lookup::List { .. } => self.root_list(field)?,
                        Lookup::Every => return None,
                        // As the executor reads it: the slug trimmed. (Other
                        // columns, an email, are the executor's.)
                        Lookup::ByColumn { argument, column } if name == "organizationBySlug" => {
                            Self::only_arguments(field, &[argument])?;
                            let (ConstValue::String(value), variable) =
                                self.bound_argument(field, argument)?
                            else {
                                return None;
                            };
                            let value = value.trim().to_owned();
                            self.lookup(target, column, (value, variable, SlotKind::Slug), field)?
                        }
                        Lookup::ByColumn { .. } => return None,
                        Lookup::ById => {
                            Self::only_arguments(field, &["id"])?;
                            let (ConstValue::String(id), variable) =
                                self.bound_argument(field, "id")?
                            else {
                                return None;
                            };
                            let id = ids::decode_of(target, &id, "id").ok()?;
                            self.lookup(target, "id", (id, variable, SlotKind::Id(target)), field)?
                        }
                    }
                }
            };
            entries.push(Entry {
                key: field.key.to_owned(),
                audited: None,
                node,
            });
        }
        self.sql.push(match self.dialect {
            Dialect::Postgres => ")::text AS \"data\"",
            Dialect::Sqlite => ") AS \"data\"",
        });
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
        let (entity, conditions, ordering) = list_query(field.name, filter, order)?;
        let (after, variable) = self.after(field, &ordering)?;
        self.connection(
            entity,
            &format!("{}Connection", entity.name),
            &ordering,
            (&conditions, after.as_ref(), variable),
            first,
            &field.sets,
        )
    }

    /// `(SELECT obj FROM table WHERE column = value)`: one row or null; the
    /// value came from the variable given, if any, through a slot of `kind`.
    fn lookup(
        &mut self,
        target: &'static Entity,
        column: &str,
        (value, variable, kind): (impl Into<sea_orm::Value>, Option<&str>, SlotKind),
        field: &Selected<'a>,
    ) -> Option<Node> {
        let alias = self.alias();
        self.sql.push("(SELECT ");
        let node = self.object(target, &alias, &field.sets)?;
        self.sql.push(&format!(
            " FROM \"{}\" {alias} WHERE {alias}.\"{column}\" = ",
            target.table
        ));
        self.bind_from(value, variable, kind);
        self.sql.push(")");
        Some(node)
    }

    /// `after`: the row the page continues after, if any, and the variable
    /// it came from (`None` for the executor to refuse a cursor of another
    /// list or order).
    fn after(&mut self, field: &Selected<'a>, ordering: &Ordering) -> Option<After<'a>> {
        let (value, variable) = self.bound_argument(field, "after")?;
        match value {
            ConstValue::Null => Some((None, variable)),
            ConstValue::String(cursor) => {
                let keyset = self.cursors.open(ordering, &cursor).ok()?;
                Some((Some(keyset), variable))
            }
            _ => None,
        }
    }

    /// `first`, checked as the executor checks it.
    fn first(&mut self, field: &Selected<'a>) -> Option<i64> {
        match self.argument(field, "first")? {
            ConstValue::Null => Some(i64::from(DEFAULT_PAGE_SIZE)),
            ConstValue::Number(n) => n
                .as_i64()
                .filter(|n| (0..=i64::from(self.max_page_size)).contains(n)),
            _ => None,
        }
    }

    /// A JSON array of the selected fields of the row `alias`.
    fn object(
        &mut self,
        entity: &'static Entity,
        alias: &str,
        sets: &[&'a SelectionSet],
    ) -> Option<Node> {
        let fields = self.collect(sets, entity.name)?;
        // A function takes at most 100 arguments (PostgreSQL; SQLite's
        // limit is higher).
        if fields.len() > 100 {
            return None;
        }
        self.sql.push(self.dialect.array());
        let mut entries = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.separator(i);
            let described = entity.field(field.name);
            let audited = described
                .filter(|f| f.class.audited())
                .map(|f| format!("{}.{}", entity.name, f.name));
            let node = self.field(entity, described, alias, field)?;
            entries.push(Entry {
                key: field.key.to_owned(),
                audited,
                node,
            });
        }
        self.sql.push(")");
        Some(Node::Object(entries))
    }

    /// One selected field of `entity`'s row `alias`; `described` is its
    /// catalog field (none for `__typename`, or a field the catalog lacks).
    fn field(
        &mut self,
        entity: &'static Entity,
        described: Option<&'static catalog::Field>,
        alias: &str,
        field: &Selected<'a>,
    ) -> Option<Node> {
        if field.name == "__typename" {
            self.sql.push(&format!("'{}'", entity.name));
            return Some(Node::Leaf);
        }
        let described = described?;
        // The second wall: the caller may read this field of this entity (the
        // entity's permission, the class's, a relation's target's), as the
        // executor's guards decide; else the executor answers, with its error.
        if !self.may_read(Some(catalog::needs_of(entity, described))) {
            return None;
        }
        match described.source {
            Source::Column { column, scalar, .. } => {
                Self::only_arguments(field, &[])?;
                self.sql.push(&format!("{alias}.\"{column}\""));
                Some(match scalar {
                    Scalar::Id => Node::Id(entity.id_prefix?),
                    Scalar::Time => Node::Time,
                    Scalar::TextList => Node::Codes,
                    Scalar::Bool => Node::Bool,
                    Scalar::Text | Scalar::Int | Scalar::Enum(_) => Node::Leaf,
                })
            }
            Source::Embedded(name) => {
                Self::only_arguments(field, &[])?;
                self.object(catalog::entity(name)?, alias, &field.sets)
            }
            Source::ToOne { target, join, .. } => {
                Self::only_arguments(field, &[])?;
                let target = catalog::entity(target)?;
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
                    Join::Through {
                        table,
                        back,
                        forward,
                    } => format!(
                        " FROM \"{table}\" s{other} JOIN \"{}\" {other} ON {other}.\"id\" = s{other}.\"{forward}\" WHERE s{other}.\"{back}\" = {alias}.\"id\" LIMIT 1)",
                        target.table
                    ),
                };
                self.sql.push(&from);
                Some(node)
            }
            Source::Many {
                target,
                parent_column,
                ordering,
            } => {
                Self::only_arguments(field, &["first", "after"])?;
                let first = self.first(field)?;
                // Every parent's page continues after the same row, as in the
                // executor.
                let (after, variable) = self.after(field, &ordering)?;
                let mut condition = Sql::default();
                condition.push(&format!("c.\"{parent_column}\" = {alias}.\"id\""));
                let target = catalog::entity(target)?;
                let connection = format!("{}Connection", target.name);
                self.connection(
                    target,
                    &connection,
                    &ordering,
                    (&condition, after.as_ref(), variable),
                    first,
                    &field.sets,
                )
            }
        }
    }

    /// Whether the caller holds what `need` asks (`None`: not a catalog
    /// field, which nothing here vouches for).
    fn may_read(&self, need: Option<catalog::Need>) -> bool {
        need.is_some_and(|need| need.met_by(|p| self.principal.can(p)))
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
        (condition, after, after_variable): (&Sql, Option<&Keyset>, Option<&str>),
        first: i64,
        sets: &[&'a SelectionSet],
    ) -> Option<Node> {
        let page_of = PageOf {
            target,
            ordering,
            condition,
            after,
            after_variable,
        };
        let fields = self.collect(sets, type_name)?;
        self.sql.push(self.dialect.array());
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
                    self.open_rows();
                    let node = self.object(target, &page, &field.sets)?;
                    self.close_rows(&page_of, first, &page)?;
                    Node::List(Box::new(node))
                }
                "edges" => {
                    let edge_type = type_name.replace("Connection", "Edge");
                    let edge_fields = self.collect(&field.sets, &edge_type)?;
                    let page = self.alias();
                    self.open_rows();
                    self.sql.push(self.dialect.array());
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
                                self.sql.push(&cursor_sql(self.dialect, &page, ordering));
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
                    self.close_rows(&page_of, first, &page)?;
                    Node::List(Box::new(Node::Object(edge_entries)))
                }
                "pageInfo" => {
                    let info_fields = self.collect(&field.sets, "PageInfo")?;
                    let mut info_entries = Vec::with_capacity(info_fields.len());
                    self.sql.push(self.dialect.array());
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
                                node = Node::Bool;
                            }
                            "hasPreviousPage" => {
                                // As the executor says it: a page that
                                // continues after a row has that row before it.
                                self.sql.push(if page_of.after.is_some() {
                                    "TRUE"
                                } else {
                                    "FALSE"
                                });
                                node = Node::Bool;
                            }
                            "startCursor" => {
                                self.edge_cursor(&page_of, first, &page, ordering.sort)?;
                                node = Node::Cursor(*ordering);
                            }
                            "endCursor" => {
                                let last_first = ordering.sort.reversed();
                                self.edge_cursor(&page_of, first, &page, last_first)?;
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

    /// The cursor of the page's first row in the order `sort` (the list's
    /// order for the start, its reverse for the end). SQLite forgets that a
    /// value is JSON once it has been through a sort, so there `json()` says
    /// it again.
    fn edge_cursor(
        &mut self,
        page_of: &PageOf<'_>,
        first: i64,
        page: &str,
        sort: Sort,
    ) -> Option<()> {
        let cursor = cursor_sql(self.dialect, page, page_of.ordering);
        let (open, close) = match self.dialect {
            Dialect::Postgres => ("(SELECT ", ")"),
            Dialect::Sqlite => ("json((SELECT ", "))"),
        };
        self.sql.push(open).push(&cursor);
        self.page(page_of, first, page)?;
        self.sql
            .push(&format!(" ORDER BY {} LIMIT 1", sort.order_by(page)))
            .push(close);
        Some(())
    }

    /// Opens a JSON array of a page's rows: each row's value follows, then
    /// [`close_rows`](Self::close_rows).
    fn open_rows(&mut self) {
        self.sql.push(match self.dialect {
            Dialect::Postgres => "array_to_json(ARRAY(SELECT ",
            Dialect::Sqlite => "(SELECT json_group_array(",
        });
    }

    /// Closes [`open_rows`](Self::open_rows) over the page's rows, as `alias`,
    /// in the list's order. (SQLite keeps no order of a sub-select's rows
    /// through an aggregate unless the aggregate is given one.)
    fn close_rows(&mut self, page: &PageOf<'_>, first: i64, alias: &str) -> Option<()> {
        let order = page.ordering.sort.order_by(alias);
        match self.dialect {
            Dialect::Postgres => {
                self.page(page, first, alias)?;
                self.sql.push(&format!(" ORDER BY {order}))"));
            }
            Dialect::Sqlite => {
                self.sql.push(&format!(" ORDER BY {order})"));
                self.page(page, first, alias)?;
                self.sql.push(")");
            }
        }
        Some(())
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
            let at = self.sql.value_count();
            page.ordering.sort.after("c", after, &mut self.sql).ok()?;
            if let Some(variable) = page.after_variable {
                self.slots.push(Slot {
                    variable: variable.to_owned(),
                    at,
                    len: self.sql.value_count() - at,
                    kind: SlotKind::After(*page.ordering),
                });
            }
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

/// Whether every variable's value of `operation` is of its declared type.
fn variables_fit(operation: &OperationDefinition, variables: &Variables) -> bool {
    operation.variable_definitions.iter().all(|definition| {
        let definition: &VariableDefinition = &definition.node;
        let value = template::resolved(operation, variables, &definition.name.node);
        fits(&definition.var_type.node, &value)
    })
}

/// Whether `value` is of type `ty`, as GraphQL coerces a variable: null only
/// where nullable, a list item by item (a single value where a list is
/// declared counts as a list of one), a named type by its own parse.
fn fits(ty: &async_graphql::parser::types::Type, value: &ConstValue) -> bool {
    if *value == ConstValue::Null {
        return ty.nullable;
    }
    match &ty.base {
        BaseType::List(inner) => match value {
            ConstValue::List(items) => items.iter().all(|item| fits(inner, item)),
            single => fits(inner, single),
        },
        BaseType::Named(name) => named_fits(name.as_str(), value),
    }
}

/// Whether `value` parses as the named input type (a type the compiled
/// reads do not know does not: the executor answers).
fn named_fits(name: &str, value: &ConstValue) -> bool {
    use super::types::billing::InvoiceStatus;
    use super::types::support::{TicketPriority, TicketStatus};
    use super::types::user::{UserOrgRole, UserStatus};
    match (name, value) {
        ("Int", ConstValue::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()).is_some(),
        ("String", ConstValue::String(_)) => true,
        ("ID", ConstValue::String(_)) => true,
        ("Boolean", ConstValue::Boolean(_)) => true,
        ("OrganizationFilter", _) => parses::<OrganizationFilter>(value),
        ("OrganizationOrder", _) => parses::<OrganizationOrder>(value),
        ("OrganizationStatus", _) => parses::<OrganizationStatus>(value),
        ("UserFilter", _) => parses::<UserFilter>(value),
        ("UserOrder", _) => parses::<UserOrder>(value),
        ("UserStatus", _) => parses::<UserStatus>(value),
        ("UserOrgRole", _) => parses::<UserOrgRole>(value),
        ("InvoiceFilter", _) => parses::<InvoiceFilter>(value),
        ("InvoiceOrder", _) => parses::<InvoiceOrder>(value),
        ("InvoiceStatus", _) => parses::<InvoiceStatus>(value),
        ("SupportTicketFilter", _) => parses::<SupportTicketFilter>(value),
        ("SupportTicketOrder", _) => parses::<SupportTicketOrder>(value),
        ("TicketStatus", _) => parses::<TicketStatus>(value),
        ("TicketPriority", _) => parses::<TicketPriority>(value),
        ("StaffMemberFilter", _) => parses::<StaffMemberFilter>(value),
        ("StaffMemberOrder", _) => parses::<StaffMemberOrder>(value),
        ("InstantRange", _) => parses::<InstantRange>(value),
        ("DateTime", _) => parses::<Instant>(value),
        _ => false,
    }
}

/// A root list's rows: its entity, the store's conditions of its `filter` (on
/// alias `c`) and the ordering of its `orderBy`, each argument null when not
/// given; `None` when a value does not parse (the executor gives the error).
/// Filters and orders are typed inputs of their own; the entity and the
/// orders are the catalog's.
pub(crate) fn list_query(
    name: &str,
    filter: ConstValue,
    order: ConstValue,
) -> Option<(&'static Entity, Sql, Ordering)> {
    let entity = catalog::entity(catalog::root(name)?.entity)?;
    fn rows<F: ListFilter, O: ListOrder>(
        filter: ConstValue,
        order: ConstValue,
    ) -> Option<(Sql, Ordering)> {
        let conditions = parse_or_default::<F>(filter)?.conditions().ok()?;
        Some((conditions, parse_or_default::<O>(order)?.ordering()))
    }
    let (conditions, ordering) = match name {
        "organizations" => rows::<OrganizationFilter, OrganizationOrder>(filter, order)?,
        "users" => rows::<UserFilter, UserOrder>(filter, order)?,
        "invoices" => rows::<InvoiceFilter, InvoiceOrder>(filter, order)?,
        "tickets" => rows::<SupportTicketFilter, SupportTicketOrder>(filter, order)?,
        "staffMembers" => rows::<StaffMemberFilter, StaffMemberOrder>(filter, order)?,
        _ => return None,
    };
    Some((entity, conditions, ordering))
}

/// Whether two occurrences of a response key are the same field with the
/// same arguments (values compared, positions not).
fn same_field(a: &GqlField, b: &GqlField) -> bool {
    a.name.node == b.name.node
        && a.arguments.len() == b.arguments.len()
        && a.arguments.iter().all(|(name, value)| {
            b.arguments
                .iter()
                .any(|(n, v)| n.node == name.node && v.node == value.node)
        })
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

/// The parts of the row's cursor under `ordering`, which [`answer::write`]
/// seals: the id alone for an order by id, else `[sort value, id]`.
fn cursor_sql(dialect: Dialect, alias: &str, ordering: &Ordering) -> String {
    match ordering.sort.column {
        None => format!("{alias}.\"id\""),
        Some(column) => format!("{}{alias}.\"{column}\", {alias}.\"id\")", dialect.array()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compiles(query: &str, variables: serde_json::Value) -> bool {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        compile(
            Dialect::Postgres,
            &document,
            None,
            &Variables::from_json(variables),
            &Principal::demo_admin(),
            100,
            &Cursors::of_this_process(),
        )
        .is_some()
    }

    /// The compiled path's own wall, generated from the catalog: as each
    /// role, a document selecting one catalog field is compiled exactly when
    /// the role may read the field and the relations leading to it.
    #[test]
    fn a_field_the_caller_may_not_read_is_never_compiled() {
        use crate::catalog::{self, Source};
        use crate::policy::Role;

        let mut refused = 0;
        for role in Role::ALL {
            let principal = Principal {
                roles: std::collections::BTreeSet::from([role]),
                ..Principal::demo_admin()
            };
            let can =
                |need: Option<catalog::Need>| need.is_some_and(|n| n.met_by(|p| principal.can(p)));
            for entity in catalog::ENTITIES {
                let path = catalog::path_from_organizations(entity.name).expect("reachable");
                for field in entity.fields() {
                    let mut inner = match field.source {
                        Source::Column { .. } => field.name.to_owned(),
                        Source::Many { .. } => format!("{}(first: 1) {{ totalCount }}", field.name),
                        _ => format!("{} {{ __typename }}", field.name),
                    };
                    for (_, step) in path.iter().rev() {
                        inner = match step.source {
                            Source::Many { .. } => {
                                format!("{}(first: 1) {{ nodes {{ {inner} }} }}", step.name)
                            }
                            _ => format!("{} {{ {inner} }}", step.name),
                        };
                    }
                    let query = format!("{{ organizations(first: 1) {{ nodes {{ {inner} }} }} }}");
                    let may = can(catalog::root_needs("organizations").map(catalog::Need::One))
                        && path
                            .iter()
                            .chain(std::iter::once(&(entity, field)))
                            .all(|(e, f)| can(catalog::needs(e.name, f.name)));
                    let document = async_graphql::parser::parse_query(&query).expect("parses");
                    let compiled = compile(
                        Dialect::Postgres,
                        &document,
                        None,
                        &Variables::default(),
                        &principal,
                        100,
                        &Cursors::of_this_process(),
                    )
                    .is_some();
                    assert_eq!(compiled, may, "{role}: {query}");
                    refused += usize::from(!may);
                }
            }
        }
        assert!(refused > 0);
    }

    /// Whenever a kept template fits a request, binding the request's values
    /// into it gives the statement a fresh compilation of the request gives
    /// (text and values, on both dialects); a value that shapes the text is
    /// never bound into a template compiled with another.
    #[test]
    fn a_template_bound_with_other_values_is_what_compiling_them_gives() {
        use crate::store::page::SortValue;
        let cursors = Cursors::of_this_process();
        let by_name = catalog::entity("Organization")
            .and_then(|e| e.orderings.iter().find(|(v, _)| *v == "NAME_ASC"))
            .map(|(_, o)| *o)
            .expect("organizations by name");
        let users = catalog::entity("Organization")
            .and_then(|e| e.field("users"))
            .map(|f| match f.source {
                Source::Many { ordering, .. } => ordering,
                _ => unreachable!("users is a list"),
            })
            .expect("an organization's users");
        let name_cursor = |name: &str, id| {
            cursors.seal(
                &by_name,
                &Keyset {
                    value: SortValue::Text(name.to_owned()),
                    id,
                },
            )
        };
        let user_cursor = |id| {
            cursors.seal(
                &users,
                &Keyset {
                    value: SortValue::None,
                    id,
                },
            )
        };
        let cases: Vec<(&str, Vec<serde_json::Value>, usize)> = vec![
            (
                "query($slug: String!) { organizationBySlug(slug: $slug) { name users(first: 2) { nodes { email } } } }",
                vec![json!({"slug": "a"}), json!({"slug": " b "}), json!({"slug": "c"})],
                2,
            ),
            (
                "query($o: ID!, $u: ID!) { organization(id: $o) { slug } user(id: $u) { email } }",
                vec![
                    json!({"o": "org_1", "u": "usr_2"}),
                    json!({"o": "org_22", "u": "usr_9"}),
                    json!({"o": "usr_1", "u": "usr_9"}),
                ],
                2,
            ),
            (
                "query($first: Int!, $after: String, $u: String) {
                   organizations(first: $first, after: $after, orderBy: NAME_ASC) {
                     nodes { id users(first: 2, after: $u) { nodes { id } pageInfo { hasPreviousPage endCursor } } }
                     pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } }",
                vec![
                    json!({"first": 3}),
                    json!({"first": 3, "after": name_cursor("Acme", 4)}),
                    json!({"first": 3, "after": name_cursor("Zeta \"q\"", 9)}),
                    json!({"first": 3, "after": name_cursor("Beta", 2), "u": user_cursor(5)}),
                    json!({"first": 3, "after": name_cursor("Gamma", 3), "u": user_cursor(8)}),
                    json!({"first": 5}),
                    json!({"first": 3, "after": user_cursor(1)}),
                    json!({"first": 3, "after": "not a cursor"}),
                ],
                4,
            ),
            (
                // Shaping uses: a slug also searched for, a skip.
                "query($s: String!, $x: Boolean!) { organizationBySlug(slug: $s) @skip(if: $x) { id }
                   organizations(filter: {search: $s}) { totalCount } }",
                vec![
                    json!({"s": "a", "x": false}),
                    json!({"s": "b", "x": false}),
                    json!({"s": "a", "x": true}),
                    json!({"s": "a", "x": false}),
                ],
                1,
            ),
        ];
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let backend = dialect.backend();
            for (query, sets, reuses) in &cases {
                let document = async_graphql::parser::parse_query(query).expect("parses");
                let (_, operation) =
                    crate::graphql::gate::operation_to_run(&document, None).expect("operation");
                let principal = Principal::demo_admin();
                let compiled = |variables: &Variables| {
                    compile(
                        dialect, &document, None, variables, &principal, 100, &cursors,
                    )
                };
                let mut kept: Vec<Template> = Vec::new();
                let mut reused = 0;
                for set in sets {
                    let variables = Variables::from_json(set.clone());
                    let fresh = compiled(&variables);
                    match kept.iter().find(|t| t.fits(operation, &variables)) {
                        Some(template) => {
                            reused += 1;
                            let bound = template.values_for(operation, &variables, &cursors);
                            match fresh {
                                Some(fresh) => {
                                    let (text, values) = fresh.sql.into_parts(backend);
                                    assert_eq!(template.text, text, "{set}");
                                    assert_eq!(bound, Some(values), "{set}");
                                }
                                None => assert_eq!(bound, None, "{set}: the executor answers"),
                            }
                        }
                        None => {
                            if let Some(fresh) = fresh {
                                kept.push(Template::new(backend, operation, &variables, fresh));
                            }
                        }
                    }
                }
                assert_eq!(reused, *reuses, "{dialect:?}: {query}");
            }
        }
    }

    #[test]
    fn one_response_key_for_two_different_fields_goes_to_the_executor() {
        assert!(!compiles(
            "{ organizations { nodes { a: name ... on Organization { a: slug } } } }",
            json!({})
        ));
        assert!(!compiles(
            "{ organizations { nodes { u: users(first: 1) { totalCount } u: users(first: 2) { totalCount } } } }",
            json!({})
        ));
        assert!(compiles(
            "{ organizations { nodes { a: name ... on Organization { a: name } } } }",
            json!({})
        ));
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
