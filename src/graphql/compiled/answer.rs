//! From the database's positional JSON to the answer's JSON.
//!
//! The compiled statement builds every object as a JSON array of its selected
//! fields' values, in the order of their response keys, and leaves ids as
//! numbers, instants as the database writes them, booleans as SQLite's 0 and
//! 1 and lists of codes as their stored text: building objects with
//! `json_build_object`, prefixing ids and formatting instants cost PostgreSQL
//! about twice as much as the arrays. Here the answer's shape puts the keys
//! back, formats ids, instants, booleans and codes and seals cursors as the
//! executor does, in one pass over the text without building a tree, noting
//! the sensitive fields on the way.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, SeqAccess, Visitor};

use crate::graphql::pagination::{Cursors, Ordering};
use crate::store::page::{Keyset, SortValue};

/// The shape of the answer: what each value of the database's JSON is.
#[derive(Debug)]
pub(super) enum Node {
    /// Written as it comes: text, numbers, null.
    Leaf,
    /// A boolean: PostgreSQL gives `true`/`false`, SQLite `1`/`0`.
    Bool,
    /// A list of codes stored as one text, comma-separated (a staff
    /// member's roles): written as a list of its non-empty parts.
    Codes,
    /// An opaque id: PostgreSQL gives the number, written `"prefix_number"`.
    Id(&'static str),
    /// An instant: PostgreSQL gives it as RFC 3339 in the session's time zone,
    /// SQLite as stored (RFC 3339, or with a space for the `T`), written as
    /// chrono's `to_rfc3339` in UTC (the `DateTime` scalar).
    Time,
    /// A cursor of this ordering: PostgreSQL gives its parts (the id for an
    /// order by id, else `[sort value, id]`), written sealed as
    /// `pagination::Cursors::seal` writes it.
    Cursor(Ordering),
    /// An object: an array of its entries' values, in this order.
    Object(Vec<Entry>),
    List(Box<Node>),
}

/// One response key of an object.
#[derive(Debug)]
pub(super) struct Entry {
    pub key: String,
    /// `Type.field` when the policy audits the field.
    pub audited: Option<String>,
    pub node: Node,
}

/// The answer's `data` from PostgreSQL's `json`, its cursors sealed with
/// `cursors`, and the sensitive fields it holds (each audited field of an
/// object that was returned); `None` when the text does not have the shape
/// (the executor answers instead).
pub(super) fn write(
    shape: &Node,
    json: &str,
    cursors: &Cursors,
    growth: &Growth,
) -> Option<(CompiledAnswer, Vec<String>)> {
    // The response body is written here once, `{"data":` and all: the
    // answer is not copied again into it, nor moved to a larger buffer
    // halfway through.
    let mut out = Vec::with_capacity(growth.capacity(json.len()) + CompiledAnswer::HEAD.len() + 1);
    out.extend_from_slice(CompiledAnswer::HEAD.as_bytes());
    // A handful of names at most: kept unique as they come.
    let mut sensitive = Vec::new();
    let mut de = serde_json::Deserializer::from_str(json);
    Writer {
        node: shape,
        out: &mut out,
        sensitive: &mut sensitive,
        cursors,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    let mut fields: Vec<String> = sensitive.into_iter().map(str::to_owned).collect();
    fields.sort_unstable();
    out.push(b'}');
    growth.learn(json.len(), out.len());
    // Only valid UTF-8 was copied from a `&str`.
    Some((CompiledAnswer(String::from_utf8(out).ok()?), fields))
}

/// How much longer than the database's text a statement's answer came out
/// the last time (in 1/1024ths), so that the next answer's buffer is
/// allocated at its size once. Keys, id prefixes and instants' fractions
/// make an answer 1.3–2 times the positional text (the admin list page's
/// 62 KB became 98 KB); a buffer that starts too small is moved to one
/// twice its size halfway through the answer, a copy of all written so far
/// (3 % of the server's CPU on that page).
#[derive(Debug)]
pub(super) struct Growth(AtomicU32);

impl Default for Growth {
    fn default() -> Self {
        Self(AtomicU32::new(Self::FIRST))
    }
}

impl Growth {
    /// The first guess: one and a half times.
    const FIRST: u32 = 1536;
    /// Room above the last answer's growth, for a longer text next time.
    const SLACK: u32 = 64;
    /// The most it guesses: four times. An empty page's answer is many
    /// times its text (`[]` against `{"nodes":[]}`), and that must not make
    /// the next full page allocate tens of times its size.
    const MOST: u32 = 4096;
    /// Answers of a shorter text teach nothing: they are mostly keys, and
    /// moving a small buffer costs little.
    const LEARNS_FROM: usize = 4096;

    fn capacity(&self, text: usize) -> usize {
        let growth = self.0.load(Relaxed) as usize;
        text.saturating_mul(growth) / 1024
    }

    fn learn(&self, text: usize, answer: usize) {
        if text >= Self::LEARNS_FROM {
            let growth = (answer.saturating_mul(1024) / text).min(Self::MOST as usize) as u32;
            self.0
                .store(growth.saturating_add(Self::SLACK).min(Self::MOST), Relaxed);
        }
    }
}

/// A compiled read's answer, written once as the whole response body
/// `{"data":…}` (a compiled read has no errors).
#[derive(Debug)]
pub struct CompiledAnswer(String);

impl CompiledAnswer {
    /// What the body holds before the `data` member's value.
    const HEAD: &'static str = "{\"data\":";

    /// The `data` member's value, as JSON text.
    pub fn data(&self) -> &str {
        &self.0[Self::HEAD.len()..self.0.len() - 1]
    }

    /// The response body.
    pub fn into_body(self) -> String {
        self.0
    }

    /// The `data` member parsed, for a caller that needs a value (a batch,
    /// an export's page); text that is not JSON (never written so) is an
    /// internal error, logged.
    pub fn parsed<T: serde::de::DeserializeOwned>(&self) -> Result<T, async_graphql::ServerError> {
        serde_json::from_str(self.data()).map_err(|err| {
            tracing::error!(error = %err, "a compiled answer is not JSON");
            crate::graphql::error::internal_error()
        })
    }
}

/// An instant as the database wrote it: RFC 3339 (SQLite's stored text may
/// have a space for the `T`, which chrono's parser takes too).
fn instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc))
}

/// A UTC instant's date and time to the second, and its fraction's digits
/// in chrono's form (none, or 3, 6 or 9 of them); `None` for any other text.
fn utc_instant(text: &str) -> Option<(&str, [u8; 9], usize)> {
    let body = text.strip_suffix("+00:00")?;
    let bytes = body.as_bytes();
    // YYYY-MM-DDTHH:MM:SS
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if bytes.len() < shape.len()
        || !shape.iter().zip(bytes).all(|(s, b)| match s {
            b'd' => b.is_ascii_digit(),
            other => other == b,
        })
    {
        return None;
    }
    let (seconds, fraction) = body.split_at(shape.len());
    let digits = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => "",
        Some(d) if (1..=9).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) => d,
        _ => return None,
    };
    let mut nine = [b'0'; 9];
    nine[..digits.len()].copy_from_slice(digits.as_bytes());
    let kept = if nine == [b'0'; 9] {
        0
    } else if nine[3..] == [b'0'; 6] {
        3
    } else if nine[6..] == [b'0'; 3] {
        6
    } else {
        9
    };
    Some((seconds, nine, kept))
}

/// Writes one value of the shape `node`.
struct Writer<'n, 'o> {
    node: &'n Node,
    out: &'o mut Vec<u8>,
    sensitive: &'o mut Vec<&'n str>,
    cursors: &'o Cursors,
}

impl Writer<'_, '_> {
    fn string(&mut self, value: &str) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    fn number(&mut self, value: i64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// An instant in the `DateTime` scalar's form: chrono's `to_rfc3339` in
    /// UTC. The databases write UTC instants as `…T…:SS[.fraction]+00:00`,
    /// which needs only its fraction put in chrono's form (none, or 3, 6 or 9
    /// digits, as few as hold the value); anything else goes through chrono.
    fn instant(&mut self, text: &str) -> Result<(), chrono::ParseError> {
        if let Some((seconds, digits, kept)) = utc_instant(text) {
            self.out.push(b'"');
            self.out.extend_from_slice(seconds.as_bytes());
            if kept > 0 {
                self.out.push(b'.');
                self.out.extend_from_slice(&digits[..kept]);
            }
            self.out.extend_from_slice(b"+00:00\"");
            return Ok(());
        }
        let instant = instant(text)?;
        self.string(&instant.to_rfc3339());
        Ok(())
    }

    /// A cursor, sealed: URL-safe base64, nothing to escape.
    fn cursor(&mut self, ordering: &Ordering, keyset: &Keyset) {
        self.out.push(b'"');
        self.out
            .extend_from_slice(self.cursors.seal(ordering, keyset).as_bytes());
        self.out.push(b'"');
    }
}

impl<'de> DeserializeSeed<'de> for Writer<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Writer<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a value of the shape {:?}", self.node)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        if !matches!(self.node, Node::Leaf | Node::Bool) {
            return Err(E::custom("a boolean where the shape has none"));
        }
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<(), E> {
        match self.node {
            Node::Leaf => self.number(v),
            Node::Bool if v == 0 || v == 1 => {
                self.out
                    .extend_from_slice(if v == 1 { b"true" } else { b"false" });
            }
            Node::Id(prefix) => {
                self.out.push(b'"');
                self.out.extend_from_slice(prefix.as_bytes());
                self.out.push(b'_');
                self.number(v);
                self.out.push(b'"');
            }
            Node::Cursor(ordering) if ordering.sort.column.is_none() => {
                let keyset = Keyset {
                    value: SortValue::None,
                    id: v,
                };
                self.cursor(ordering, &keyset);
            }
            _ => return Err(E::custom("a number where the shape has none")),
        }
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom("a number out of range")),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if !matches!(self.node, Node::Leaf) {
            return Err(E::custom("a number where the shape has none"));
        }
        serde_json::to_writer(&mut *self.out, &v).map_err(E::custom)
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<(), E> {
        match self.node {
            Node::Leaf => self.string(v),
            Node::Time => self.instant(v).map_err(E::custom)?,
            Node::Codes => {
                self.out.push(b'[');
                for (i, code) in v.split(',').filter(|c| !c.is_empty()).enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.string(code);
                }
                self.out.push(b']');
            }
            _ => return Err(E::custom("text where the shape has none")),
        }
        Ok(())
    }

    /// Text the input held without an escape: it has no quote, backslash or
    /// control character, which is all serde_json would escape, so it is
    /// written as it came.
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<(), E> {
        if matches!(self.node, Node::Leaf) {
            self.out.push(b'"');
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
            return Ok(());
        }
        self.visit_str(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        match self.node {
            Node::Cursor(ordering) => {
                if ordering.sort.column.is_none() {
                    return Err(A::Error::custom("a list where the shape has an id"));
                }
                let value: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("a cursor without its sort value"))?;
                let id: i64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("a cursor without its id"))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("a cursor with too many parts"));
                }
                let value = if crate::catalog::sorts_by_instant(ordering) {
                    SortValue::Time(instant(&value).map_err(A::Error::custom)?)
                } else {
                    SortValue::Text(value)
                };
                self.cursor(ordering, &Keyset { value, id });
            }
            Node::Object(entries) => {
                self.out.push(b'{');
                for (i, entry) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    // Response keys are GraphQL names: nothing to escape.
                    self.out.push(b'"');
                    self.out.extend_from_slice(entry.key.as_bytes());
                    self.out.extend_from_slice(b"\":");
                    if let Some(name) = &entry.audited
                        && !self.sensitive.contains(&name.as_str())
                    {
                        self.sensitive.push(name);
                    }
                    let value = Writer {
                        node: &entry.node,
                        out: &mut *self.out,
                        sensitive: &mut *self.sensitive,
                        cursors: self.cursors,
                    };
                    seq.next_element_seed(value)?
                        .ok_or_else(|| A::Error::custom("an object with too few values"))?;
                }
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("an object with too many values"));
                }
                self.out.push(b'}');
            }
            Node::List(item) => {
                self.out.push(b'[');
                let mut first = true;
                loop {
                    if !first {
                        self.out.push(b',');
                    }
                    let value = Writer {
                        node: item,
                        out: &mut *self.out,
                        sensitive: &mut *self.sensitive,
                        cursors: self.cursors,
                    };
                    if seq.next_element_seed(value)?.is_none() {
                        if !first {
                            // The separator written before the end was seen.
                            self.out.pop();
                        }
                        break;
                    }
                    first = false;
                }
                self.out.push(b']');
            }
            _ => return Err(A::Error::custom("a list where the shape has none")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, audited: Option<&str>, node: Node) -> Entry {
        Entry {
            key: key.to_owned(),
            audited: audited.map(str::to_owned),
            node,
        }
    }

    /// An answer longer than the first guess is moved to a larger buffer
    /// once; the next answer of that statement is written into a buffer of
    /// its size from the start.
    #[test]
    fn a_statement_s_next_answer_is_allocated_at_its_size() {
        let shape = Node::List(Box::new(Node::Object(vec![
            entry("organizationIdentifier", None, Node::Id("org")),
            entry("createdAtInstant", None, Node::Time),
        ])));
        let row = "[7,\"2026-01-01T00:00:00+00:00\"]";
        let json = format!("[{}]", vec![row; 200].join(","));
        let body = |growth: &Growth| growth.capacity(json.len()) + CompiledAnswer::HEAD.len() + 1;
        let growth = Growth::default();
        let first_guess = body(&growth);
        let (first, _) =
            write(&shape, &json, &Cursors::of_this_process(), &growth).expect("the shape");
        assert!(
            first.0.len() > first_guess,
            "the answer fits the first guess: no test"
        );
        assert!(first.0.capacity() > first_guess);
        let learned = body(&growth);
        let (next, _) =
            write(&shape, &json, &Cursors::of_this_process(), &growth).expect("the shape");
        assert_eq!(next.0, first.0);
        assert_eq!(next.0.capacity(), learned, "the buffer was moved");
        assert!(
            learned < first.0.len() * 11 / 10,
            "{learned} for {}",
            first.0.len()
        );
        // An empty list's answer teaches nothing: the next full one is
        // allocated as the last full one was.
        write(&shape, "[]", &Cursors::of_this_process(), &growth).expect("the shape");
        assert_eq!(body(&growth), learned);
        // Nor does an answer many times its text make the next guess so.
        growth.learn(Growth::LEARNS_FROM, 100 * Growth::LEARNS_FROM);
        assert_eq!(growth.capacity(1024), 4096);
    }

    #[test]
    fn keys_ids_and_instants_are_put_back() {
        let shape = Node::Object(vec![
            entry("id", None, Node::Id("org")),
            entry("cost", Some("Organization.monthlyCostCents"), Node::Leaf),
            entry("at", None, Node::Time),
            entry(
                "users",
                None,
                Node::List(Box::new(Node::Object(vec![
                    entry("email", Some("User.email"), Node::Leaf),
                    entry("seen", None, Node::Time),
                ]))),
            ),
            entry(
                "plan",
                None,
                Node::Object(vec![entry(
                    "unitCost",
                    Some("Plan.unitCostCents"),
                    Node::Leaf,
                )]),
            ),
            entry("empty", None, Node::List(Box::new(Node::Leaf))),
        ]);
        let json = "[42, 1200, \"2026-11-23T16:03:27.12+01:00\", [[\"a\\\"b\\u0001 😀\", null], \
                    [\"c\", \"2026-01-01T00:00:00+00:00\"]], null, []]";
        let (out, sensitive) = write(
            &shape,
            json,
            &Cursors::of_this_process(),
            &Growth::default(),
        )
        .expect("the shape");
        assert_eq!(
            out.data(),
            "{\"id\":\"org_42\",\"cost\":1200,\"at\":\"2026-11-23T15:03:27.120+00:00\",\
             \"users\":[{\"email\":\"a\\\"b\\u0001 😀\",\"seen\":null},\
             {\"email\":\"c\",\"seen\":\"2026-01-01T00:00:00+00:00\"}],\"plan\":null,\"empty\":[]}"
        );
        // Plan.unitCostCents is under an object that was not returned.
        assert_eq!(sensitive, ["Organization.monthlyCostCents", "User.email"]);
    }

    #[test]
    fn cursors_are_sealed_from_their_parts_as_the_executor_seals_them() {
        use crate::store::page::Sort;
        let by_email = Ordering::new("usr:email_asc", Sort::by("email", false));
        let by_time = Ordering::new("usr:created_asc", Sort::by("created_at", false));
        let by_id = Ordering::new("usr:id", Sort::ID_ASC);
        let shape = Node::Object(vec![
            entry("a", None, Node::Cursor(by_email)),
            entry("b", None, Node::Cursor(by_time)),
            entry("c", None, Node::Cursor(by_id)),
            entry("d", None, Node::Cursor(by_id)),
        ]);
        let json =
            "[[\"j\\\"o@x.example\", 7], [\"2026-11-23T16:03:27.120001+01:00\", 8], 9, null]";
        let cursors = Cursors::of_this_process();
        let (out, _) = write(&shape, json, &cursors, &Growth::default()).expect("the shape");
        let instant = chrono::DateTime::parse_from_rfc3339("2026-11-23T15:03:27.120001Z")
            .expect("instant")
            .with_timezone(&chrono::Utc);
        let expected = serde_json::json!({
            "a": cursors.seal(&by_email, &Keyset { value: SortValue::Text("j\"o@x.example".into()), id: 7 }),
            "b": cursors.seal(&by_time, &Keyset { value: SortValue::Time(instant), id: 8 }),
            "c": cursors.seal(&by_id, &Keyset { value: SortValue::None, id: 9 }),
            "d": null,
        });
        assert_eq!(out.data(), expected.to_string());
        for json in [
            "[[\"a\"], 1, 1, 1]",
            "[[\"a\", 1, 2], 1, 1, 1]",
            "[[1, 1], 1, 1, 1]",
            "[[\"a\", 1], [\"not a time\", 1], 1, 1]",
            "[[\"a\", 1], [\"2026-01-01T00:00:00Z\", 1], [1], 1]",
        ] {
            assert!(
                write(&shape, json, &cursors, &Growth::default()).is_none(),
                "{json}"
            );
        }
    }

    #[test]
    fn booleans_and_codes_are_written_as_the_executor_writes_them() {
        let shape = Node::Object(vec![
            entry("a", None, Node::Bool),
            entry("b", None, Node::Bool),
            entry("c", None, Node::Bool),
            entry("roles", None, Node::Codes),
            entry("none", None, Node::Codes),
            entry("null", None, Node::Codes),
        ]);
        let cursors = Cursors::of_this_process();
        // PostgreSQL's booleans, SQLite's 1 and 0.
        let (out, _) = write(
            &shape,
            "[true, 1, 0, \"ops,,support\", \"\", null]",
            &cursors,
            &Growth::default(),
        )
        .expect("shape");
        assert_eq!(
            out.data(),
            "{\"a\":true,\"b\":true,\"c\":false,\"roles\":[\"ops\",\"support\"],\"none\":[],\"null\":null}"
        );
        for json in [
            "[2, 1, 0, \"\", \"\", null]",
            "[\"true\", 1, 0, \"\", \"\", null]",
            "[true, 1, 0, [\"ops\"], \"\", null]",
        ] {
            assert!(
                write(&shape, json, &cursors, &Growth::default()).is_none(),
                "{json}"
            );
        }
    }

    /// The fast form of UTC instants is chrono's, for every length of
    /// fraction and its trailing zeros; other texts go through chrono.
    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let mut texts = vec![
            "2026-11-23T15:03:27+00:00".to_owned(),
            "2026-11-23T15:03:27.000+00:00".to_owned(),
            "2026-11-23 15:03:27.5+00:00".to_owned(),
            "2026-11-23T16:03:27.12+01:00".to_owned(),
            "2026-11-23T15:03:27.120001Z".to_owned(),
        ];
        for digits in [
            "1",
            "12",
            "123",
            "1234",
            "12345",
            "123456",
            "1234567",
            "12345678",
            "123456789",
            "100",
            "000001",
            "000000001",
            "120000",
            "100000000",
            "000",
        ] {
            texts.push(format!("2026-11-23T15:03:27.{digits}+00:00"));
        }
        for text in texts {
            let shape = Node::Object(vec![entry("at", None, Node::Time)]);
            let json = serde_json::to_string(&[&text]).expect("json");
            let (out, _) = write(
                &shape,
                &json,
                &Cursors::of_this_process(),
                &Growth::default(),
            )
            .expect("an instant");
            let chrono = instant(&text).expect("parses").to_rfc3339();
            assert_eq!(out.data(), format!("{{\"at\":\"{chrono}\"}}"), "{text}");
        }
    }

    #[test]
    fn text_of_another_shape_is_refused() {
        let shape = Node::Object(vec![entry("id", None, Node::Id("org"))]);
        for json in ["[1, 2]", "[]", "{\"id\": 1}", "[\"x\"]", "[1] 2", "[[1]]"] {
            assert!(
                write(
                    &shape,
                    json,
                    &Cursors::of_this_process(),
                    &Growth::default()
                )
                .is_none(),
                "{json}"
            );
        }
    }
}
