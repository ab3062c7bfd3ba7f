//! Every field of the catalog, as every role and every pair of roles: the
//! introspection lists it exactly when the policy grants it, a query for it
//! gives its value or the answer a field that never existed gets, and on
//! PostgreSQL the compiled path answers byte for byte as the executor does.
//!
//! The cases are generated from the catalog (`backplane::catalog`): a field
//! added there is covered without editing this file.

use std::collections::BTreeSet;

use backplane::catalog::{self, Entity, Field, Need, Source};
use backplane::policy::{Permission, Role};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_configured, spawn_app_on_configured};
use crate::hidden_schema::same_as_never_existing;

/// Each role alone and every pair of roles.
pub fn role_sets() -> Vec<Vec<Role>> {
    let mut sets: Vec<Vec<Role>> = Role::ALL.iter().map(|r| vec![*r]).collect();
    for (i, a) in Role::ALL.iter().enumerate() {
        for b in &Role::ALL[i + 1..] {
            sets.push(vec![*a, *b]);
        }
    }
    sets
}

pub fn granted(roles: &[Role]) -> BTreeSet<Permission> {
    backplane::policy::permissions_of(&roles.iter().copied().collect())
}

fn met(need: Need, granted: &BTreeSet<Permission>) -> bool {
    need.met_by(|p| granted.contains(&p))
}

fn path_to(entity: &str) -> Vec<(&'static Entity, &'static Field)> {
    catalog::path_from_organizations(entity).expect("every entity is reachable")
}

/// Root fields (aliased) that together ask for every audited field of the
/// catalog on a few rows: each entity's from its own root list where it has
/// one, else through the relations from `organizations`.
pub fn asking_for_each_audited_field() -> String {
    use backplane::catalog::Lookup;

    let mut parts = Vec::new();
    for (i, entity) in catalog::ENTITIES.iter().enumerate() {
        let audited: Vec<String> = entity
            .fields()
            .filter(|f| f.class.audited())
            .map(selection_of)
            .collect();
        if audited.is_empty() {
            continue;
        }
        let selection = audited.join(" ");
        let root = catalog::ROOTS.iter().find(|r| {
            r.entity == entity.name && matches!(r.lookup, Lookup::List { .. } | Lookup::Every)
        });
        parts.push(match root.map(|r| (r.name, r.lookup)) {
            Some((name, Lookup::Every)) => format!("a{i}: {name} {{ {selection} }}"),
            Some((name, _)) => format!("a{i}: {name}(first: 5) {{ nodes {{ {selection} }} }}"),
            None => {
                let document = document(&path_to(entity.name), &selection);
                let inner = document
                    .strip_prefix("{ ")
                    .and_then(|d| d.strip_suffix(" }"))
                    .unwrap_or(&document);
                format!("a{i}: {inner}")
            }
        });
    }
    parts.join(" ")
}

/// How a field is asked for: a column by name, an object with
/// `__typename`, a page with its count.
fn selection_of(field: &Field) -> String {
    match field.source {
        Source::Column { .. } => field.name.to_owned(),
        Source::Embedded(_) | Source::ToOne { .. } => format!("{} {{ __typename }}", field.name),
        Source::Many { .. } => format!("{}(first: 2) {{ totalCount }}", field.name),
    }
}

/// A document reaching `entity` through `path` and selecting `selection`
/// on it (two organizations, two rows of each page).
fn document(path: &[(&Entity, &Field)], selection: &str) -> String {
    let mut inner = selection.to_owned();
    for (_, field) in path.iter().rev() {
        inner = match field.source {
            Source::Many { .. } => format!("{}(first: 2) {{ nodes {{ {inner} }} }}", field.name),
            _ => format!("{} {{ {inner} }}", field.name),
        };
    }
    format!("{{ organizations(first: 2) {{ nodes {{ {inner} }} }} }}")
}

/// The first name of the path to `entity.field` that `granted` may not see
/// (the root, a relation, the field), if any.
fn first_hidden(
    path: &[(&Entity, &Field)],
    entity: &Entity,
    field: &Field,
    granted: &BTreeSet<Permission>,
) -> Option<&'static str> {
    let root = catalog::root_needs("organizations").expect("a root");
    if !granted.contains(&root) {
        return Some("organizations");
    }
    path.iter()
        .copied()
        .chain(std::iter::once((entity, field)))
        .find(|(e, f)| {
            !met(
                catalog::needs(e.name, f.name).expect("a catalog field"),
                granted,
            )
        })
        .map(|(_, f)| f.name)
}

async fn every_catalog_field_is_listed_and_answers_exactly_as_the_policy_grants(backend: Backend) {
    let app = spawn_app(backend).await;
    for roles in role_sets() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let who = format!("{names:?}");
        let token = app
            .issuer
            .token(&format!("catalog-{}", names.join("-")), &names);
        let granted = granted(&roles);
        for entity in catalog::ENTITIES {
            // Introspection: the type exists with exactly the fields granted.
            let (_, body) = app
                .graphql_as(
                    Some(&token),
                    "query($t: String!) { __type(name: $t) { fields { name } } }",
                    json!({ "t": entity.name }),
                )
                .await;
            let listed: Option<BTreeSet<String>> =
                body["data"]["__type"]["fields"].as_array().map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| f["name"].as_str().map(str::to_owned))
                        .collect()
                });
            if granted.contains(&entity.read) {
                let expected: BTreeSet<String> = entity
                    .fields()
                    .filter(|f| met(catalog::needs(entity.name, f.name).expect("need"), &granted))
                    .map(|f| f.name.to_owned())
                    // A record's history is the entity's, read from the
                    // audit log (`business` tests it role by role).
                    .chain(entity.history.then(|| "history".to_owned()))
                    .collect();
                assert_eq!(
                    listed,
                    Some(expected),
                    "{who}: the fields of {}",
                    entity.name
                );
            } else {
                assert_eq!(
                    body["data"]["__type"],
                    Value::Null,
                    "{who}: {}",
                    entity.name
                );
            }

            // A query for each field: its value, or "does not exist".
            let path = path_to(entity.name);
            for field in entity.fields() {
                let doc = document(&path, &selection_of(field));
                match first_hidden(&path, entity, field, &granted) {
                    None => {
                        let (status, answer) = app.graphql_as(Some(&token), &doc, json!({})).await;
                        assert_eq!(status, 200, "{who}: {doc}: {answer}");
                        assert!(answer.get("errors").is_none(), "{who}: {doc}: {answer}");
                        let nodes = &answer["data"]["organizations"]["nodes"];
                        assert_eq!(
                            nodes.as_array().map(Vec::len),
                            Some(2),
                            "{who}: {doc}: {answer}"
                        );
                    }
                    Some(hidden) => {
                        same_as_never_existing(&app, &token, &who, &doc, &[hidden]).await;
                    }
                }
            }
        }
    }
}
crate::on_both_databases!(every_catalog_field_is_listed_and_answers_exactly_as_the_policy_grants);

/// As every role and pair, a document over every field of each entity that
/// the role may read: the compiled path (on its second sight of the
/// document, in one statement) answers the executor's very bytes.
async fn as_every_role_the_compiled_path_answers_every_catalog_field_as_the_executor(
    backend: Backend,
) {
    let reference = spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
        c.compile_reads = false;
    })
    .await;
    let compiled: TestApp =
        spawn_app_on_configured(reference.database_url(), &reference.issuer, |_| {}).await;
    let mut compared = 0;
    for roles in role_sets() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let who = format!("{names:?}");
        let token = reference
            .issuer
            .token(&format!("compiled-{}", names.join("-")), &names);
        let granted = granted(&roles);
        for entity in catalog::ENTITIES {
            let path = path_to(entity.name);
            let readable: Vec<String> = entity
                .fields()
                .filter(|f| first_hidden(&path, entity, f, &granted).is_none())
                .map(selection_of)
                .collect();
            if readable.is_empty() {
                continue;
            }
            let doc = document(&path, &readable.join(" "));
            let (status, expected) = reference.graphql_text(&token, &doc, json!({})).await;
            assert_eq!(status, 200, "{who}: {doc}: {expected}");
            assert!(!expected.contains("\"errors\""), "{who}: {doc}: {expected}");
            // The first sight is the executor's; the second is compiled.
            let (_, first) = compiled.graphql_text(&token, &doc, json!({})).await;
            assert_eq!(first, expected, "{who}: {doc}");
            let (statements, (_, answer)) = compiled
                .statements_during(compiled.graphql_text(&token, &doc, json!({})))
                .await;
            assert_eq!(
                answer, expected,
                "{who}: compiled and executed differ for {doc}"
            );
            assert_eq!(statements, 1, "{who}: {doc} was not compiled");
            compared += 1;
        }
    }
    // Every role but the auditor reads some of every entity's rows.
    assert!(
        compared >= catalog::ENTITIES.len() * 5,
        "{compared} compared"
    );
}
crate::on_both_databases!(
    as_every_role_the_compiled_path_answers_every_catalog_field_as_the_executor
);

/// The second wall: executed without the gate (whose role validation would
/// refuse the document first), every field a role may not read is refused
/// by the executor's own guards, derived from the catalog: `FORBIDDEN` at
/// the hidden field, and no value for it.
async fn without_the_gate_the_executor_refuses_every_field_a_role_may_not_read(backend: Backend) {
    use backplane::identity::{Principal, PrincipalKind};

    let app = spawn_app(backend).await;
    let schema = backplane::graphql::build_schema(
        Some(app.store.clone()),
        Default::default(),
        Default::default(),
    );
    let mut refused = 0;
    for roles in role_sets() {
        let granted = granted(&roles);
        let principal = Principal {
            subject: "second-wall".into(),
            email: None,
            name: None,
            kind: PrincipalKind::Staff,
            roles: roles.iter().copied().collect(),
            scopes: BTreeSet::new(),
            authentication: Default::default(),
            step_up: BTreeSet::new(),
        };
        for entity in catalog::ENTITIES {
            let path = path_to(entity.name);
            for field in entity.fields() {
                let Some(hidden) = first_hidden(&path, entity, field, &granted) else {
                    continue;
                };
                let doc = document(&path, &selection_of(field));
                let (principal, loader) =
                    backplane::graphql::request_data(&app.store, principal.clone());
                let response = schema
                    .execute(
                        async_graphql::Request::new(&doc)
                            .data(principal)
                            .data(loader),
                    )
                    .await;
                let answer = serde_json::to_value(&response).expect("JSON");
                let errors = answer["errors"].as_array().cloned().unwrap_or_default();
                assert!(!errors.is_empty(), "{roles:?}: {doc} answered {answer}");
                for error in &errors {
                    assert_eq!(
                        error["extensions"]["code"], "FORBIDDEN",
                        "{roles:?}: {doc}: {error}"
                    );
                }
                assert!(
                    errors.iter().any(|e| e["path"]
                        .as_array()
                        .and_then(|p| p.last())
                        .is_some_and(|last| last == hidden)),
                    "{roles:?}: {doc}: no refusal at {hidden}: {answer}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
}
crate::on_both_databases!(without_the_gate_the_executor_refuses_every_field_a_role_may_not_read);
