//! The gate every GraphQL operation passes before async-graphql executes it,
//! and its audit record after.
//!
//! In order: the document's length; one parse, which async-graphql then reuses;
//! the limits, measured on that parse against the caller's own schema with
//! fragments memoised (async-graphql's own recursion check expands fragments
//! without memoisation, so a chain of doubling fragments must be refused before
//! it runs); validation of the whole document against the schema of the
//! caller's permission set (`role_schema`: what it may not see does not exist
//! there, in any part of any document); required variables; the step-up (a
//! person's right that needs a recent strong sign-in, `identity::step_up`,
//! refuses the whole document with RFC 9470's challenge); the caller's cost
//! budget per minute (`budget`: past it, the operation is refused as a
//! refusal at the edge is, folded in the audit log). After execution
//! the operation is recorded in the audit log unless a mutation already wrote
//! its event.
//!
//! Admitted operations then wait for their cost in a shared budget
//! (`admission`): the memory of a request in flight grows with the answer it
//! builds, and a few dozen deep pages at once would otherwise hold hundreds of
//! MiB where running them a few at a time is as fast on the same cores. No
//! caller holds more than its share of it while others wait.
//!
//! This is done here rather than in async-graphql extensions: with any
//! extension registered, async-graphql sends every field and every list item
//! through the extension chain, which cost more than the rest of execution on
//! large answers.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError};

use super::BackplaneSchema;
use super::admission::Admission;
use super::budget::{Budgets, Exhausted, FairUse};
use super::compiled::{CompiledAnswer, CompiledReads};
use super::error::{Code, or_code};
use super::limits::{self, DocumentLimits, Limits};
use super::role_schema::RoleSchemas;
use super::visibility::{self, TypeMap};
use crate::audit::{AuditWriter, OperationAudit, RequestIdentity};
use crate::identity::Principal;
use crate::identity::step_up::StepUpSettings;
use crate::policy::Permission;

/// An operation's answer.
pub enum Answer {
    /// What async-graphql's executor returned (or the gate's refusal).
    Executed(Response),
    /// A compiled read's answer, written as the response body (no errors).
    Compiled(CompiledAnswer),
    /// Refused before it ran, for a reason HTTP has its own status for.
    Refused(Refusal),
}

/// Why an operation was refused before it ran, beyond what its errors say.
pub enum Refusal {
    /// A right that needs a step-up (401; `challenge` is the
    /// `WWW-Authenticate` value). Recorded by the gate.
    StepUp {
        response: Response,
        challenge: String,
    },
    /// Over the caller's budget per minute (429). Not recorded by the gate:
    /// the HTTP layer marks it as a refusal, folded in the audit log.
    OverBudget {
        response: Response,
        exhausted: Exhausted,
    },
}

impl Refusal {
    /// The refusal of an operation over its caller's budget per minute.
    pub fn over_budget(exhausted: Exhausted) -> Self {
        Refusal::OverBudget {
            response: Response::from_errors(vec![over_budget(&exhausted)]),
            exhausted,
        }
    }
}

impl Answer {
    /// The answer as async-graphql's response (parses a compiled answer).
    pub fn into_response(self) -> Response {
        match self {
            Answer::Executed(response) => response,
            Answer::Refused(Refusal::StepUp { response, .. })
            | Answer::Refused(Refusal::OverBudget { response, .. }) => response,
            Answer::Compiled(answer) => match answer.parsed::<async_graphql::Value>() {
                Ok(data) => Response::new(data),
                Err(err) => Response::from_errors(vec![err]),
            },
        }
    }
}

/// What the gate needs to know of the schema and the configuration.
pub struct Gate {
    /// Every type and field, hidden ones included: names what a refused
    /// document asked for, for the audit log only.
    types: TypeMap,
    /// The input types, by which the audit log keeps variables.
    inputs: crate::audit::values::InputTypes,
    /// The schema of each permission set, which documents are validated and
    /// measured against.
    roles: RoleSchemas,
    limits: Limits,
    audit: Option<AuditWriter>,
    /// The cost executing at once, shared fairly between callers.
    in_flight: Admission,
    /// Reads answered by one SQL statement.
    reads: Option<CompiledReads>,
    /// What the step-up challenge asks for.
    step_up: StepUpSettings,
    /// Each caller's cost budget per minute.
    budgets: Budgets,
    /// Documents parsed, by their text's SHA-256, the least recently used
    /// dropped first.
    documents: Mutex<Kept>,
}

impl Gate {
    /// A gate for `schema`: `in_flight` bounds the cost executing at once; operations are audited when `audit` is given; reads are compiled
    /// to SQL when `reads` is given.
    pub fn new(
        schema: &BackplaneSchema,
        limits: Limits,
        in_flight: Admission,
        audit: Option<AuditWriter>,
        reads: Option<CompiledReads>,
    ) -> Self {
        let sdl = schema.sdl();
        // The SDL is async-graphql's own print of a schema that built.
        let types = match TypeMap::from_sdl(&sdl) {
            Ok(types) => types,
            Err(err) => panic!("the schema's SDL does not parse: {err}"),
        };
        let inputs = match crate::audit::values::InputTypes::from_sdl(&sdl) {
            Ok(inputs) => inputs,
            Err(err) => panic!("the schema's SDL does not parse: {err}"),
        };
        Self {
            types,
            inputs,
            roles: RoleSchemas::default(),
            limits,
            audit,
            in_flight,
            reads,
            step_up: StepUpSettings::off(),
            budgets: Budgets::new(FairUse::default()),
            documents: Mutex::new(Kept::new(super::compiled::DEFAULT_PREPARED_DOCUMENTS)),
        }
    }

    /// The gate keeping up to `documents` parsed documents (at least one).
    pub fn with_prepared_documents(mut self, documents: usize) -> Self {
        self.documents = Mutex::new(Kept::new(documents));
        self
    }

    /// The gate with step-up settings (for its challenge; who must step up
    /// is `Principal::step_up`) and cost budgets per minute.
    pub fn with_fair_use(mut self, step_up: StepUpSettings, fair_use: FairUse) -> Self {
        self.step_up = step_up;
        self.budgets = Budgets::new(fair_use);
        self
    }

    /// Charges `principal`'s budget per minute for an operation of `cost`
    /// (an export is charged once, for its first page's cost).
    pub fn charge(&self, principal: &Principal, cost: u64) -> Result<(), Exhausted> {
        let (kind, roles) = super::budget::labels(principal);
        match self.budgets.charge(principal, cost) {
            Ok(_) => {
                metrics::counter!("backplane_fair_use_cost_total", "kind" => kind, "roles" => roles)
                    .increment(cost);
                Ok(())
            }
            Err(exhausted) => {
                metrics::counter!("backplane_fair_use_refused_total", "kind" => kind, "roles" => roles)
                    .increment(1);
                tracing::debug!(
                    retry_after = exhausted.retry_after,
                    "operation refused: over the caller's budget per minute"
                );
                Err(exhausted)
            }
        }
    }

    /// The refusal of a caller refused over budget whose `Retry-After` has
    /// not come yet, before anything of its request is read; answered once
    /// it has been held back as `budget` says.
    pub async fn early_refusal(&self, principal: &Principal) -> Option<Exhausted> {
        let (exhausted, hold) = self.budgets.early(principal)?;
        let (kind, roles) = super::budget::labels(principal);
        metrics::counter!("backplane_fair_use_refused_total", "kind" => kind, "roles" => roles)
            .increment(1);
        if let Some(hold) = hold {
            tokio::time::sleep(hold.delay).await;
        }
        Some(exhausted)
    }

    /// The `WWW-Authenticate` value of a step-up refusal.
    pub fn step_up_challenge(&self) -> String {
        self.step_up.challenge()
    }

    /// Whether `request` would be refused for a missing step-up (a batch is
    /// refused whole before any of it runs). Parses the document: call it
    /// only for a principal with rights pending (`Principal::step_up`).
    pub fn needs_step_up(&self, request: &Request, principal: &Principal) -> bool {
        if principal.step_up.is_empty() {
            return false;
        }
        async_graphql::parser::parse_query(&request.query)
            .ok()
            .is_some_and(|document| self.step_up_refusal(&document, principal).is_some())
    }

    /// The right pending a step-up that `document` uses, with the name that
    /// uses it, if any.
    fn step_up_refusal(
        &self,
        document: &ExecutableDocument,
        principal: &Principal,
    ) -> Option<(Permission, String)> {
        // `can` says no to pending rights: the walk of visibility finds the
        // first name that needs one.
        let refused = visibility::check(&self.types, Some(principal), document).err()?;
        let name = refused.1;
        let usable = |p: Permission| principal.can(p);
        let missing = match name.split_once('.') {
            Some((ty, field)) => crate::policy::field_need(ty, field)
                .and_then(|need| need.missing(usable))
                .or_else(|| crate::policy::type_permission(ty).filter(|p| !usable(*p))),
            None if crate::policy::WRITE_TYPES.contains(&name.as_str()) => {
                crate::policy::WRITE_PERMISSIONS
                    .iter()
                    .copied()
                    .find(|p| !usable(*p))
            }
            None => crate::policy::type_permission(&name).filter(|p| !usable(*p)),
        };
        // Anything else missing is validation's to refuse, not a step-up.
        let permission = missing.filter(|p| principal.step_up.contains(p))?;
        Some((permission, name))
    }

    /// The error of a refused step-up.
    fn step_up_error(&self, permission: Permission) -> ServerError {
        let mut error = super::error::request_error(
            Code::InsufficientAuthentication,
            format!(
                "this operation uses {}, which needs a recent multi-factor sign-in: sign in again with a second factor",
                permission.as_str()
            ),
            None,
        );
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("permission", permission.as_str());
        if !self.step_up.acr.is_empty() {
            extensions.set(
                "acrValues",
                async_graphql::Value::List(
                    self.step_up
                        .acr
                        .iter()
                        .map(|a| async_graphql::Value::String(a.clone()))
                        .collect(),
                ),
            );
        }
        extensions.set("maxAge", self.step_up.max_age_secs());
        error
    }

    /// `response` as a step-up refusal when that is what it is.
    fn refusal_of(&self, response: Response) -> Answer {
        let step_up = !response.errors.is_empty()
            && response
                .errors
                .iter()
                .all(|e| Code::of(e) == Some(Code::InsufficientAuthentication));
        if step_up {
            Answer::Refused(Refusal::StepUp {
                response,
                challenge: self.step_up.challenge(),
            })
        } else {
            Answer::Executed(response)
        }
    }

    /// Runs one operation for `principal`, as far as it may go, and records it.
    pub async fn execute(
        &self,
        schema: &BackplaneSchema,
        mut request: Request,
        principal: &Principal,
        identity: RequestIdentity,
    ) -> Answer {
        let operation = Arc::new(OperationAudit::begin(identity, &request));
        let limits = self.limits.of(Some(principal));
        let answer = match self
            .admit(schema, &mut request, principal, limits, &operation)
            .await
        {
            Ok(Admitted {
                cost,
                document,
                digest,
            }) => {
                if let Err(exhausted) = self.charge(principal, cost) {
                    return Answer::Refused(Refusal::over_budget(exhausted));
                }
                let _turn = self.in_flight.acquire(&principal.subject, cost).await;
                let max_page_size = self.limits.of(Some(principal)).max_page_size;
                let compiled = match &self.reads {
                    Some(reads) => {
                        reads
                            .run(
                                &request,
                                (&document, digest),
                                principal,
                                max_page_size,
                                &operation,
                            )
                            .await
                    }
                    None => None,
                };
                let by = if compiled.is_some() {
                    "compiled"
                } else {
                    "executor"
                };
                metrics::counter!("backplane_graphql_answered_total", "by" => by).increment(1);
                match compiled {
                    Some(data) => Answer::Compiled(data),
                    None => {
                        request.set_parsed_query(ExecutableDocument::clone(&document));
                        Answer::Executed(self.run_executor(schema, request, &operation).await)
                    }
                }
            }
            Err(errors) => Answer::Executed(Response::from_errors(errors)),
        };
        let Some(writer) = &self.audit else {
            return match answer {
                Answer::Executed(response) => self.refusal_of(response),
                other => other,
            };
        };
        match answer {
            Answer::Executed(response) => self.refusal_of(operation.finish(writer, response).await),
            refused @ Answer::Refused(_) => refused,
            Answer::Compiled(data) => {
                // No errors: recorded as `ok`, or refused when it cannot be.
                let recorded = operation.finish(writer, Response::default()).await;
                if recorded.errors.is_empty() {
                    Answer::Compiled(data)
                } else {
                    Answer::Executed(recorded)
                }
            }
        }
    }

    /// The audit writer, when operations are audited.
    pub fn audit(&self) -> Option<&AuditWriter> {
        self.audit.as_ref()
    }

    /// Admits an export's document as a query is admitted (its length,
    /// limits, the caller's visibility, its variables) and returns it parsed,
    /// with its cost. Records nothing: the export writes its one event.
    pub async fn admit_export(
        &self,
        schema: &BackplaneSchema,
        request: &mut Request,
        principal: &Principal,
        operation: &OperationAudit,
    ) -> Result<(ExecutableDocument, u64), Vec<ServerError>> {
        let limits = self.limits.of(Some(principal));
        let Admitted { cost, document, .. } = self
            .admit(schema, request, principal, limits, operation)
            .await?;
        Ok((ExecutableDocument::clone(&document), cost))
    }

    /// Runs one page of an export (a query the export's plan wrote from an
    /// admitted document) with pages of up to `page_size`, as a query runs
    /// (compiled when it can be), its sensitive fields noted in `operation`
    /// but no event recorded. Returns the answer's `data` as JSON.
    pub async fn run_export_page(
        &self,
        schema: &BackplaneSchema,
        mut request: Request,
        principal: &Principal,
        operation: &Arc<OperationAudit>,
        page_size: i32,
        cost: u64,
    ) -> Result<serde_json::Value, Vec<ServerError>> {
        let page_limits = DocumentLimits {
            max_page_size: page_size,
            max_complexity: u64::MAX,
            ..*self.limits.of(Some(principal))
        };
        // The export's record keeps the name and hash of the document the
        // caller sent; a page's are the plan's.
        let Admitted {
            document, digest, ..
        } = self
            .admit(
                schema,
                &mut request,
                principal,
                &page_limits,
                &OperationAudit::default(),
            )
            .await?;
        let _turn = self.in_flight.acquire(&principal.subject, cost).await;
        if let Some(reads) = &self.reads
            && let Some(data) = reads
                .run(
                    &request,
                    (&document, digest),
                    principal,
                    page_size,
                    operation,
                )
                .await
        {
            metrics::counter!("backplane_graphql_answered_total", "by" => "compiled").increment(1);
            return data.parsed().map_err(|err| vec![err]);
        }
        metrics::counter!("backplane_graphql_answered_total", "by" => "executor").increment(1);
        request.set_parsed_query(ExecutableDocument::clone(&document));
        // The resolvers read the page limit from the request's data first.
        let request = request.data(Limits {
            people: page_limits,
            services: page_limits,
        });
        let response = self.run_executor(schema, request, operation).await;
        if !response.errors.is_empty() {
            return Err(response.errors);
        }
        serde_json::to_value(&response.data).map_err(|err| {
            tracing::error!(error = %err, "an answer is not JSON");
            vec![super::error::internal_error()]
        })
    }

    /// A turn for one chunk of an export's plain rows (`export::rows`), shared
    /// with every operation as a page's is; given back when dropped.
    pub async fn export_turn(&self, principal: &Principal, cost: u64) -> super::admission::Turn {
        self.in_flight.acquire(&principal.subject, cost).await
    }

    /// async-graphql's executor, the reference for every operation; a document
    /// it ran without a request error may be compiled next time.
    async fn run_executor(
        &self,
        schema: &BackplaneSchema,
        request: Request,
        operation: &Arc<OperationAudit>,
    ) -> Response {
        let learn = self
            .reads
            .as_ref()
            .and_then(|r| r.to_learn(&request, operation));
        let mut response = schema.execute(request.data(operation.clone())).await;
        // Errors without a path are the executor's own findings about the
        // document (its validation, its choice of operation, its coercion of
        // variables): they carry no code of their own. With a path and no
        // code, an argument's value did not coerce (`Failed to parse
        // "DateTime"`), which is the caller's to fix; anything else is ours.
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(|mut error| {
                if error.path.is_empty() {
                    error.message = visibility::without_names(&error.message);
                    or_code(error, Code::GraphqlValidationFailed)
                } else if error.message.starts_with("Failed to parse")
                    || error.message.starts_with("Invalid value")
                {
                    or_code(error, Code::BadUserInput)
                } else if error.message.starts_with("Variable ") {
                    // A variable the document uses but does not declare.
                    or_code(error, Code::GraphqlValidationFailed)
                } else {
                    or_code(error, Code::Internal)
                }
            })
            .collect();
        if let (Some(reads), Some(learning)) = (&self.reads, &learn) {
            reads.learn(learning, &response);
        }
        drop(learn);
        response
    }

    /// Everything checked before execution; the parsed document is left in
    /// `request` for async-graphql. Returns the cost of the operation that runs.
    async fn admit(
        &self,
        schema: &BackplaneSchema,
        request: &mut Request,
        principal: &Principal,
        limits: &DocumentLimits,
        operation: &OperationAudit,
    ) -> Result<Admitted, Vec<ServerError>> {
        limits::check_length(&request.query, limits).map_err(|e| vec![e])?;
        let (document, digest) = self.parsed(request)?;
        if let Ok(variables) = serde_json::to_value(&request.variables) {
            let wanted = request.operation_name.as_deref();
            operation.variables(&self.inputs.recorded(&document, wanted, &variables));
        }
        let role = self.roles.of(schema, principal).await.map_err(|err| {
            tracing::error!(error = %err, "request refused: no schema for the caller's permissions");
            vec![super::error::internal_error()]
        })?;
        let wanted = request.operation_name.as_deref();
        let cost = limits::check(&document, wanted, &request.variables, &role.types, limits)
            .map_err(|e| vec![e])?;
        if let Some((name, ty)) = running(&document, wanted) {
            operation.name(ty, name.as_deref());
        }
        if let Some((_, op)) = operation_to_run(&document, wanted)
            && op.ty == async_graphql::parser::types::OperationType::Mutation
        {
            operation.fields(root_fields(&document, &op.selection_set.node));
        }
        let key = format!(
            "{}\0{}",
            operation.document_hash(),
            request.operation_name.as_deref().unwrap_or("")
        );
        let errors = role.validate(request, &document, &key).await;
        if !errors.is_empty() {
            // The audit log, unlike the caller, learns what hidden name was
            // asked for, if one was.
            if let Err(refusal) = visibility::check(&self.types, Some(principal), &document) {
                operation.deny(&refusal.1);
            }
            return Err(errors
                .into_iter()
                .map(|e| or_code(e, Code::GraphqlValidationFailed))
                .collect());
        }
        visibility::missing_variables(&document, wanted, &request.variables)
            .map_err(|e| vec![e])?;
        if !principal.step_up.is_empty()
            && let Some((permission, name)) = self.step_up_refusal(&document, principal)
        {
            tracing::info!(
                permission = permission.as_str(),
                "operation refused: the right needs a step-up"
            );
            operation.deny(&name);
            return Err(vec![self.step_up_error(permission)]);
        }
        Ok(Admitted {
            cost,
            document,
            digest,
        })
    }

    /// `request`'s document parsed: the one kept for its hash, else parsed
    /// now (and kept, the least recently used dropped first). Parsing does
    /// not depend on who asks; everything decided from the document is
    /// decided again per caller.
    fn parsed(
        &self,
        request: &Request,
    ) -> Result<(Arc<ExecutableDocument>, [u8; 32]), Vec<ServerError>> {
        // The text's own digest: an export's pages are documents of their
        // own, recorded under the export's.
        let hash = super::compiled::digest(&request.query);
        if let Some(document) = self
            .documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .documents
            .get(&hash)
        {
            return Ok((document.0.clone(), hash));
        }
        let document = Arc::new(
            async_graphql::parser::parse_query(&request.query)
                .map_err(|e| vec![super::error::parse_error(e)])?,
        );
        self.documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep(hash, &document, request.query.len());
        Ok((document, hash))
    }
}

/// An operation admitted: its cost, its document parsed, and the text's
/// SHA-256 (what the parse and the compiled templates are kept under).
struct Admitted {
    cost: u64,
    document: Arc<ExecutableDocument>,
    digest: [u8; 32],
}

/// Parsed documents kept, bounded by count and by the length of their texts
/// (a parsed document takes several times its text): whoever sends large
/// documents cannot make the cache grow past its budget.
struct Kept {
    documents: lru::LruCache<[u8; 32], (Arc<ExecutableDocument>, usize)>,
    bytes: usize,
}

/// The most text the kept documents hold together.
const KEPT_TEXT_BYTES: usize = 1 << 20;

/// A longer document is parsed for each request, never kept.
const MAX_KEPT_DOCUMENT: usize = 16 * 1024;

impl Kept {
    fn new(count: usize) -> Self {
        Self {
            documents: lru::LruCache::new(NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN)),
            bytes: 0,
        }
    }

    fn keep(&mut self, hash: [u8; 32], document: &Arc<ExecutableDocument>, len: usize) {
        if len > MAX_KEPT_DOCUMENT {
            return;
        }
        if let Some((_, (_, old))) = self.documents.push(hash, (document.clone(), len)) {
            self.bytes -= old;
        }
        self.bytes += len;
        while self.bytes > KEPT_TEXT_BYTES {
            match self.documents.pop_lru() {
                Some((_, (_, old))) => self.bytes -= old,
                None => break,
            }
        }
    }
}

/// The root fields of a selection set, through its fragments, as the audit
/// log names them: `key: name` when aliased, else `name`. Each fragment is
/// entered once (a cycle, which validation refuses later, ends there).
fn root_fields(
    document: &ExecutableDocument,
    set: &async_graphql::parser::types::SelectionSet,
) -> Vec<String> {
    use async_graphql::parser::types::Selection;
    fn walk<'a>(
        document: &'a ExecutableDocument,
        set: &'a async_graphql::parser::types::SelectionSet,
        entered: &mut Vec<&'a str>,
        out: &mut Vec<String>,
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let named = match &field.alias {
                        Some(alias) if alias.node.as_str() != name => {
                            format!("{}: {name}", alias.node)
                        }
                        _ => name.to_owned(),
                    };
                    if !out.contains(&named) {
                        out.push(named);
                    }
                }
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node, entered, out)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if entered.contains(&name) {
                        continue;
                    }
                    entered.push(name);
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(document, &fragment.node.selection_set.node, entered, out);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(document, set, &mut Vec::new(), &mut out);
    out
}

/// The name and type of the operation that runs.
fn running(
    document: &ExecutableDocument,
    wanted: Option<&str>,
) -> Option<(Option<String>, async_graphql::parser::types::OperationType)> {
    operation_to_run(document, wanted).map(|(name, op)| (name.map(|n| n.to_string()), op.ty))
}

/// The operation that runs, with its name: the one the request names, or else
/// the first (validation refuses an unnamed choice among several).
pub(crate) fn operation_to_run<'a>(
    document: &'a ExecutableDocument,
    wanted: Option<&str>,
) -> Option<(
    Option<&'a async_graphql::Name>,
    &'a async_graphql::parser::types::OperationDefinition,
)> {
    document
        .operations
        .iter()
        .find(|(name, _)| match (wanted, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (None, _) => true,
            _ => false,
        })
        .map(|(name, op)| (name, &op.node))
}

/// The error of an operation over its caller's budget per minute.
pub fn over_budget(exhausted: &Exhausted) -> ServerError {
    let mut error = super::error::request_error(
        Code::LimitExceeded,
        format!(
            "over your budget of {} cost units per minute; retry in {} s",
            exhausted.standing.limit, exhausted.retry_after
        ),
        None,
    );
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("limit", "costPerMinute");
    extensions.set("retryAfter", exhausted.retry_after);
    extensions.set("cost", exhausted.charged);
    error
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[test]
    fn kept_documents_stay_within_their_count_and_text_budget() {
        let document = Arc::new(async_graphql::parser::parse_query("{ a }").expect("parses"));
        let mut kept = Kept::new(3);
        for i in 0..10u8 {
            kept.keep([i; 32], &document, 10);
        }
        assert_eq!(kept.documents.len(), 3);
        assert_eq!(kept.bytes, 30);
        kept.keep([99; 32], &document, MAX_KEPT_DOCUMENT + 1);
        assert!(!kept.documents.contains(&[99; 32]), "too long to keep");
        let mut kept = Kept::new(1000);
        for i in 0..200u8 {
            kept.keep([i; 32], &document, MAX_KEPT_DOCUMENT);
        }
        assert!(kept.bytes <= KEPT_TEXT_BYTES, "{}", kept.bytes);
        assert_eq!(kept.documents.len(), KEPT_TEXT_BYTES / MAX_KEPT_DOCUMENT);
        // The same document again replaces its entry.
        kept.keep([199; 32], &document, MAX_KEPT_DOCUMENT);
        assert_eq!(kept.documents.len(), KEPT_TEXT_BYTES / MAX_KEPT_DOCUMENT);
    }
}
