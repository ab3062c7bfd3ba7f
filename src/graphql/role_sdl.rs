//! The schema one principal sees, as SDL: printed from a real introspection query
//! run as that principal, so it shows exactly what the per-role visibility lets
//! through (`backplane schema --role support`).

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::identity::{Principal, PrincipalKind};
use crate::policy::{Permission, Role};

/// Why a role's schema could not be printed.
#[derive(Debug, thiserror::Error)]
#[error("introspection failed: {0}")]
pub struct RoleSdlError(String);

/// The SDL a caller holding `roles` sees.
pub async fn sdl_for_roles(roles: BTreeSet<Role>) -> Result<String, RoleSdlError> {
    let schema = super::build_schema(None, Default::default(), Default::default());
    sdl_for_permissions(&schema, &crate::policy::permissions_of(&roles)).await
}

/// The SDL of `schema` as a caller holding exactly `permissions` sees it.
pub async fn sdl_for_permissions(
    schema: &super::BackplaneSchema,
    permissions: &BTreeSet<Permission>,
) -> Result<String, RoleSdlError> {
    let principal = Principal {
        subject: "schema-printer".into(),
        email: None,
        name: None,
        // Exactly `permissions`: a service's scopes are taken as they are.
        kind: PrincipalKind::Service,
        roles: BTreeSet::new(),
        scopes: permissions.clone(),
        authentication: Default::default(),
        step_up: Default::default(),
    };
    let response = schema
        .execute(async_graphql::Request::new(INTROSPECTION).data(principal))
        .await;
    if !response.errors.is_empty() {
        return Err(RoleSdlError(format!("{:?}", response.errors)));
    }
    let data = serde_json::to_value(&response.data).map_err(|e| RoleSdlError(e.to_string()))?;
    Ok(sdl_from_introspection(&data))
}

/// The introspection query the printer reads.
pub const INTROSPECTION: &str = r#"
query {
  __schema {
    queryType { name }
    mutationType { name }
    types {
      kind name description
      fields { name description args { name description type { ...T } defaultValue } type { ...T } isDeprecated deprecationReason }
      inputFields { name description type { ...T } defaultValue }
      enumValues { name description isDeprecated deprecationReason }
      interfaces { name }
      possibleTypes { name }
      specifiedByURL
    }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
"#;

fn type_ref(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or("?").to_owned(),
    }
}

fn description(out: &mut String, indent: &str, d: &Value) {
    if let Some(d) = d.as_str().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "{indent}\"\"\"");
        for line in d.lines() {
            let _ = writeln!(out, "{indent}{line}");
        }
        let _ = writeln!(out, "{indent}\"\"\"");
    }
}

fn sorted(list: &Value) -> Vec<&Value> {
    let mut items: Vec<&Value> = list
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    items
}

fn deprecated(v: &Value) -> String {
    if v["isDeprecated"].as_bool() == Some(true) {
        match v["deprecationReason"].as_str() {
            Some(r) => format!(" @deprecated(reason: {})", Value::String(r.to_owned())),
            None => " @deprecated".to_owned(),
        }
    } else {
        String::new()
    }
}

/// SDL from the `data` of [`INTROSPECTION`], sorted by name; built-in scalars and
/// introspection types left out.
pub fn sdl_from_introspection(data: &Value) -> String {
    let schema = &data["__schema"];
    let mut out = String::new();
    for t in sorted(&schema["types"]) {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || matches!(name, "String" | "Int" | "Float" | "Boolean" | "ID") {
            continue;
        }
        description(&mut out, "", &t["description"]);
        match t["kind"].as_str().unwrap_or_default() {
            "SCALAR" => {
                let _ = writeln!(out, "scalar {name}\n");
            }
            "ENUM" => {
                let _ = writeln!(out, "enum {name} {{");
                for v in sorted(&t["enumValues"]) {
                    description(&mut out, "\t", &v["description"]);
                    let _ = writeln!(
                        out,
                        "\t{}{}",
                        v["name"].as_str().unwrap_or_default(),
                        deprecated(v)
                    );
                }
                let _ = writeln!(out, "}}\n");
            }
            "UNION" => {
                let members: Vec<&str> = sorted(&t["possibleTypes"])
                    .iter()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let _ = writeln!(out, "union {name} = {}\n", members.join(" | "));
            }
            "INPUT_OBJECT" => {
                let oneof = t["fields"].is_null() && name.ends_with("Match");
                let _ = writeln!(out, "input {name}{} {{", if oneof { " @oneOf" } else { "" });
                for f in sorted(&t["inputFields"]) {
                    description(&mut out, "\t", &f["description"]);
                    let default = f["defaultValue"]
                        .as_str()
                        .map(|d| format!(" = {d}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "\t{}: {}{default}",
                        f["name"].as_str().unwrap_or_default(),
                        type_ref(&f["type"])
                    );
                }
                let _ = writeln!(out, "}}\n");
            }
            kind => {
                let keyword = if kind == "INTERFACE" {
                    "interface"
                } else {
                    "type"
                };
                let interfaces: Vec<&str> = sorted(&t["interfaces"])
                    .iter()
                    .filter_map(|i| i["name"].as_str())
                    .collect();
                let implements = if interfaces.is_empty() {
                    String::new()
                } else {
                    format!(" implements {}", interfaces.join(" & "))
                };
                let _ = writeln!(out, "{keyword} {name}{implements} {{");
                for f in sorted(&t["fields"]) {
                    description(&mut out, "\t", &f["description"]);
                    let args: Vec<String> = sorted(&f["args"])
                        .iter()
                        .map(|a| {
                            let default = a["defaultValue"]
                                .as_str()
                                .map(|d| format!(" = {d}"))
                                .unwrap_or_default();
                            format!(
                                "{}: {}{default}",
                                a["name"].as_str().unwrap_or_default(),
                                type_ref(&a["type"])
                            )
                        })
                        .collect();
                    let args = if args.is_empty() {
                        String::new()
                    } else {
                        format!("({})", args.join(", "))
                    };
                    let _ = writeln!(
                        out,
                        "\t{}{args}: {}{}",
                        f["name"].as_str().unwrap_or_default(),
                        type_ref(&f["type"]),
                        deprecated(f)
                    );
                }
                let _ = writeln!(out, "}}\n");
            }
        }
    }
    let _ = write!(
        out,
        "schema {{\n\tquery: {}\n",
        schema["queryType"]["name"].as_str().unwrap_or("Query")
    );
    if let Some(m) = schema["mutationType"]["name"].as_str() {
        let _ = writeln!(out, "\tmutation: {m}");
    }
    out.push_str("}\n");
    out
}
