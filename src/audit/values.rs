//! What of an operation's variables the audit log keeps: by their types,
//! never by their names.
//!
//! Only the variables the operation declares are kept. A value of an ID, an
//! enum (one of its values), a number or a boolean is kept as it is; a string
//! (and a value of any other scalar) is kept in clear only where the catalog
//! marks the input field as recorded ([`catalog::RECORDED_TEXT`]: reasons,
//! searches, codes), and otherwise replaced by its length and a keyed hash
//! (HMAC-SHA256 under a key of this deployment, so that equal values can be
//! matched across events while a guess cannot be checked without the key).
//! A value that is not of its declared type is hidden whole. Before the
//! document is parsed (a document that does not parse is recorded too),
//! nothing is known of the types: every value but null and booleans is
//! hidden.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Type, TypeKind, TypeSystemDefinition,
};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::catalog;

/// The key of the hashes: set once a server knows its secrets; a random one
/// until then (or in a process that sets none).
static KEY: RwLock<Option<[u8; 32]>> = RwLock::new(None);

/// Sets the key the hashes of hidden values are made with.
pub fn set_key(key: [u8; 32]) {
    *KEY.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
}

/// Sets the key from a deployment's secret (HKDF-SHA256, labelled for this
/// use alone: it opens nothing else the secret keys).
pub fn set_key_from(secret: &[u8]) {
    let mut key = [0; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 8,160.
    let _ = hkdf::Hkdf::<Sha256>::new(Some(b"backplane audit values v1"), secret)
        .expand(b"hidden variable hashes", &mut key);
    set_key(key);
}

fn key() -> [u8; 32] {
    if let Some(key) = *KEY.read().unwrap_or_else(|e| e.into_inner()) {
        return key;
    }
    let mut slot = KEY.write().unwrap_or_else(|e| e.into_inner());
    *slot.get_or_insert_with(|| {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        key
    })
}

/// A hidden value: its length (in characters of its text) and the first 16
/// bytes of its keyed hash.
pub fn hidden(text: &str) -> Value {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key()).expect("any key length");
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    Value::String(format!(
        "[hidden: {} characters, HMAC-SHA256 {}]",
        text.chars().count(),
        hex::encode(&digest[..16])
    ))
}

/// A value whose type is unknown or not its declared one, hidden whole.
fn hidden_value(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(text) => hidden(text),
        other => hidden(&other.to_string()),
    }
}

/// The variables before the document is parsed: their structure, every value
/// but null and booleans hidden.
pub fn unparsed(variables: &Value) -> Value {
    match variables {
        Value::Null | Value::Bool(_) => variables.clone(),
        Value::Array(items) => Value::Array(items.iter().map(unparsed).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), unparsed(v)))
                .collect::<Map<_, _>>(),
        ),
        other => hidden_value(other),
    }
}

/// The input types of a schema, as the recording needs them.
#[derive(Debug, Default)]
pub struct InputTypes {
    enums: HashMap<String, HashSet<String>>,
    /// Input object → field → its type.
    objects: HashMap<String, HashMap<String, Type>>,
}

impl InputTypes {
    /// Reads `sdl` (the whole schema's).
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let document = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut types = InputTypes::default();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = ty.node;
            match ty.kind {
                TypeKind::Enum(e) => {
                    types.enums.insert(
                        ty.name.node.to_string(),
                        e.values
                            .iter()
                            .map(|v| v.node.value.node.to_string())
                            .collect(),
                    );
                }
                TypeKind::InputObject(input) => {
                    types.objects.insert(
                        ty.name.node.to_string(),
                        input
                            .fields
                            .iter()
                            .map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        Ok(types)
    }

    /// The variables of the operation `wanted` of `document` as the audit
    /// log keeps them.
    pub fn recorded(
        &self,
        document: &ExecutableDocument,
        wanted: Option<&str>,
        variables: &Value,
    ) -> Value {
        let Some((_, operation)) = crate::graphql::gate::operation_to_run(document, wanted) else {
            return Value::Object(Map::new());
        };
        let mut out = Map::new();
        for definition in &operation.variable_definitions {
            let name = definition.node.name.node.as_str();
            if let Some(value) = variables.get(name) {
                out.insert(
                    name.to_owned(),
                    self.value(&definition.node.var_type.node, value),
                );
            }
        }
        Value::Object(out)
    }

    fn value(&self, ty: &Type, value: &Value) -> Value {
        match (&ty.base, value) {
            (_, Value::Null) => Value::Null,
            (BaseType::List(inner), Value::Array(items)) => {
                Value::Array(items.iter().map(|v| self.value(inner, v)).collect())
            }
            // A single value where a list is declared is coerced to one.
            (BaseType::List(inner), other) => self.value(inner, other),
            (BaseType::Named(_), Value::Array(_)) => hidden_value(value),
            (BaseType::Named(name), other) => self.named(name.as_str(), other),
        }
    }

    fn named(&self, name: &str, value: &Value) -> Value {
        match (name, value) {
            ("Int" | "Float", Value::Number(_))
            | ("Boolean", Value::Bool(_))
            | ("ID", Value::String(_) | Value::Number(_)) => value.clone(),
            (_, Value::String(text))
                if self
                    .enums
                    .get(name)
                    .is_some_and(|values| values.contains(text)) =>
            {
                value.clone()
            }
            (_, Value::Object(map)) if self.objects.contains_key(name) => {
                let fields = &self.objects[name];
                let mut out = Map::new();
                for (key, field_value) in map {
                    // A field the type lacks is refused by validation; its
                    // name was the caller's to choose: not kept.
                    let Some(field_type) = fields.get(key) else {
                        continue;
                    };
                    let recorded = catalog::is_recorded_text(name, key)
                        && matches!(field_value, Value::String(_));
                    out.insert(
                        key.clone(),
                        if recorded {
                            field_value.clone()
                        } else {
                            self.value(field_type, field_value)
                        },
                    );
                }
                Value::Object(out)
            }
            _ => hidden_value(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SDL: &str = "enum Status { ACTIVE SUSPENDED } \
        input Filter { search: String status: [Status!] ids: [ID!] token: String } \
        input Change { reason: String! note: String count: Int flag: Boolean filter: Filter } \
        type Query { a(f: Filter, c: Change, s: String, st: Status, n: Int): Int }";

    fn recorded(document: &str, variables: Value) -> Value {
        let types = InputTypes::from_sdl(SDL).expect("sdl");
        let document = async_graphql::parser::parse_query(document).expect("query");
        types.recorded(&document, None, &variables)
    }

    #[test]
    fn only_declared_typed_values_are_kept_in_clear() {
        let out = recorded(
            "query($s: String, $st: Status, $n: Int, $bad: Status, $pin: String) { a(s: $s, st: $st, n: $n) }",
            json!({
                "s": "hunter2", "st": "ACTIVE", "n": 3, "bad": "not-a-status-s3cret",
                "pin": 123456, "undeclared": "t0ps3cret"
            }),
        );
        assert_eq!(out["st"], "ACTIVE");
        assert_eq!(out["n"], 3);
        assert!(out.get("undeclared").is_none(), "{out}");
        let text = out.to_string();
        for secret in ["hunter2", "s3cret", "123456", "t0ps3cret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            out["s"]
                .as_str()
                .is_some_and(|s| s.starts_with("[hidden: 7 characters, HMAC-SHA256 ")),
            "{out}"
        );
    }

    #[test]
    fn text_is_kept_where_the_catalog_records_it_and_hidden_elsewhere() {
        // `Filter` and `Change` are not catalog types: nothing is recorded.
        let out = recorded(
            "query($c: Change) { a(c: $c) }",
            json!({ "c": { "reason": "why", "note": "x", "count": 2, "flag": true,
                           "filter": { "status": ["ACTIVE"], "ids": ["org_1"], "token": "abc" },
                           "extra": "zzz" } }),
        );
        assert_eq!(out["c"]["count"], 2);
        assert_eq!(out["c"]["flag"], true);
        assert_eq!(out["c"]["filter"]["status"], json!(["ACTIVE"]));
        assert_eq!(out["c"]["filter"]["ids"], json!(["org_1"]));
        assert!(
            out["c"]["reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("[hidden"))
        );
        assert!(out["c"].get("extra").is_none());
        assert!(!out.to_string().contains("abc"));
    }

    #[test]
    fn equal_values_hide_alike_and_before_parsing_only_booleans_show() {
        assert_eq!(hidden("same"), hidden("same"));
        assert_ne!(hidden("same"), hidden("other"));
        let out = unparsed(&json!({ "a": "x", "b": 42, "c": [true, null], "d": { "e": "y" } }));
        assert_eq!(out["c"], json!([true, null]));
        for value in [&out["a"], &out["b"], &out["d"]["e"]] {
            assert!(
                value.as_str().is_some_and(|s| s.starts_with("[hidden: ")),
                "{out}"
            );
        }
    }
}
