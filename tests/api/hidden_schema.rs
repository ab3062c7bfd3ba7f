//! For a caller, what its role may not see does not exist in any way: every
//! part of every document is validated against that role's own schema, so a
//! hidden name gets exactly the answer a name that never existed gets — the
//! same number of errors, in the same order, with the same messages (each
//! echoing the name the client sent), locations, extensions and status.
//!
//! The cases are generated from the policy's own tables (every guarded field
//! and type, every role and a few role pairs): a field added to the policy is
//! covered without editing this file.

use std::collections::{BTreeMap, BTreeSet};

use backplane::policy::{Permission, Role, WRITE_TYPES, guarded_fields, guarded_types};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

/// A name of the same length as `name` that never existed (same length, so
/// that the errors' locations line up).
fn fake_name(name: &str) -> String {
    let keep = name.len().saturating_sub(2);
    format!("{}Zq", &name[..keep])
}

/// The role sets tried: each role alone and pairs that cross the matrix.
fn role_sets() -> Vec<Vec<Role>> {
    let mut sets: Vec<Vec<Role>> = Role::ALL.iter().map(|r| vec![*r]).collect();
    sets.push(vec![Role::Support, Role::Ops]);
    sets.push(vec![Role::Finance, Role::Auditor]);
    sets.push(vec![Role::Billing, Role::Ops]);
    sets
}

fn permissions(roles: &[Role]) -> BTreeSet<Permission> {
    backplane::policy::permissions_of(&roles.iter().copied().collect())
}

/// Asks `document` (with `real` names) and the same document with each name
/// made up; the two answers, with the made-up names put back, must be equal.
pub async fn same_as_never_existing(
    app: &TestApp,
    token: &str,
    who: &str,
    document: &str,
    real: &[&str],
) {
    let mut fake_document = document.to_owned();
    // Longest first, so that `invoices` is not rewritten inside `invoicesX`.
    let mut names: Vec<&str> = real.to_vec();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in &names {
        fake_document = replace_word(&fake_document, name, &fake_name(name));
    }
    let (status, hidden) = app.graphql_as(Some(token), document, json!({})).await;
    let (fake_status, fake) = app.graphql_as(Some(token), &fake_document, json!({})).await;
    let mut fake_text = fake.to_string();
    for name in &names {
        fake_text = fake_text.replace(
            &format!("\\\"{}\\\"", fake_name(name)),
            &format!("\\\"{name}\\\""),
        );
    }
    let fake: Value = serde_json::from_str(&fake_text).expect("JSON");
    assert_eq!(status, fake_status, "{who}: status for {document}");
    assert_eq!(
        hidden, fake,
        "{who}: a hidden name is told apart from one that never existed\n  document: {document}"
    );
    assert!(
        hidden["data"].is_null() && hidden["errors"].is_array(),
        "{who}: {document} was not refused: {hidden}"
    );
    for error in hidden["errors"].as_array().into_iter().flatten() {
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            !message.to_lowercase().contains("did you mean"),
            "{who}: a suggestion: {message}"
        );
    }
}

/// `text` with every whole-word `name` replaced.
fn replace_word(text: &str, name: &str, with: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + name.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(name);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + name.len()..];
    }
    out.push_str(rest);
    out
}

/// Enum values and input fields of a type, from an admin's introspection.
async fn shape(app: &TestApp, admin: &str, type_name: &str) -> (String, Vec<String>) {
    let (_, body) = app
        .graphql_as(
            Some(admin),
            "query($t: String!) { __type(name: $t) { kind enumValues { name } inputFields { name } } }",
            json!({ "t": type_name }),
        )
        .await;
    let ty = &body["data"]["__type"];
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect()
    };
    let kind = ty["kind"].as_str().unwrap_or_default().to_owned();
    let mut members = names(&ty["enumValues"]);
    members.extend(names(&ty["inputFields"]));
    (kind, members)
}

async fn what_a_role_may_not_see_does_not_exist_in_any_part_of_a_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.issuer.token("hidden-admin", &["admin"]);
    for roles in role_sets() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let who = format!("{names:?}");
        let token = app
            .issuer
            .token(&format!("hidden-{}", names.join("-")), &names);
        let granted = permissions(&roles);
        let guarded = guarded_types();
        let may_write = backplane::policy::WRITE_PERMISSIONS
            .iter()
            .any(|p| granted.contains(p));
        let type_hidden = |t: &str| {
            if WRITE_TYPES.contains(&t) {
                return !may_write;
            }
            guarded
                .iter()
                .any(|(name, p)| name == t && !granted.contains(p))
        };

        // Hidden fields, by type, on every type whose fields the role may not
        // all see (the type itself may be hidden too: then its name is).
        let mut fields: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (type_name, field, need) in guarded_fields() {
            if !need.met_by(|p| granted.contains(&p)) {
                fields.entry(type_name).or_default().push(field);
            }
        }
        for (type_name, hidden) in &fields {
            let mut real: Vec<&str> = hidden.clone();
            if type_hidden(type_name) {
                real.push(type_name);
            }
            let list = hidden.join(" ");
            let with_selection: String = hidden
                .iter()
                .map(|f| format!("{f} {{ __typename }} "))
                .collect();
            let with_argument: String = hidden.iter().map(|f| format!("{f}(first: 1) ")).collect();
            let spread_on = if *type_name == "Query" {
                "query { ...F }".to_owned()
            } else {
                "query { __typename ...F }".to_owned()
            };
            for document in [
                format!("{spread_on} fragment F on {type_name} {{ {list} }}"),
                format!("query {{ __typename }} fragment F on {type_name} {{ {list} }}"),
                format!("query {{ __typename ... on {type_name} {{ {list} }} }}"),
                format!("{spread_on} fragment F on {type_name} {{ {with_selection} }}"),
                format!("{spread_on} fragment F on {type_name} {{ {with_argument} }}"),
            ] {
                same_as_never_existing(&app, &token, &who, &document, &real).await;
            }
        }

        // Hidden types: named in a fragment, an inline fragment, a variable,
        // and (enums, inputs) with a value of their own.
        let mut types: Vec<&str> = guarded
            .iter()
            .map(|(t, _)| t.as_str())
            .chain(WRITE_TYPES.iter().copied())
            .filter(|t| type_hidden(t))
            .collect();
        types.sort();
        types.dedup();
        for type_name in types {
            let (kind, members) = shape(&app, &admin, type_name).await;
            let mut documents = vec![
                format!("query($v: {type_name}) {{ __typename }}"),
                format!("query($v: [{type_name}!]!) {{ __typename }}"),
            ];
            match kind.as_str() {
                "OBJECT" | "INTERFACE" | "UNION" => {
                    documents.push(format!(
                        "query {{ __typename }} fragment F on {type_name} {{ __typename }}"
                    ));
                    documents.push(format!(
                        "query {{ __typename ... on {type_name} {{ __typename }} }}"
                    ));
                }
                "ENUM" => {
                    if let Some(value) = members.first() {
                        documents
                            .push(format!("query($v: {type_name} = {value}) {{ __typename }}"));
                        documents.push(format!(
                            "query($v: {type_name} = NOT_A_VALUE) {{ __typename }}"
                        ));
                    }
                }
                "INPUT_OBJECT" => {
                    documents.push(format!("query($v: {type_name} = {{}}) {{ __typename }}"));
                    documents.push(format!(
                        "query($v: {type_name} = {{ notAField: 1 }}) {{ __typename }}"
                    ));
                }
                _ => {}
            }
            for document in documents {
                same_as_never_existing(&app, &token, &who, &document, &[type_name]).await;
            }
        }
    }
}
crate::on_both_databases!(what_a_role_may_not_see_does_not_exist_in_any_part_of_a_document);

/// Bisecting a word list by error counts recovers nothing: two hidden fields
/// and two made-up ones give two errors each, worded alike.
async fn hidden_fields_are_counted_as_unknown_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let support = app.issuer.token("count-support", &["support"]);
    let document = "{ organizations(first: 1) { nodes { monthlyCostCents internalFlags { vip } grossMarginBps } } }";
    same_as_never_existing(
        &app,
        &support,
        "support",
        document,
        &["monthlyCostCents", "internalFlags", "grossMarginBps"],
    )
    .await;
    let (_, body) = app.graphql_as(Some(&support), document, json!({})).await;
    assert_eq!(
        body["errors"].as_array().map(Vec::len),
        Some(3),
        "one error per hidden field: {body}"
    );
    assert_eq!(
        body["errors"][0]["message"],
        "Unknown field \"monthlyCostCents\" on type \"Organization\".",
        "{body}"
    );
}
crate::on_both_databases!(hidden_fields_are_counted_as_unknown_ones);
