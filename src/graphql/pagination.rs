//! Relay-style connections over keyset pages: sealed cursors, a bounded `first`.
//!
//! A cursor stands for the row a page continues after: its sort value and id.
//! The sort value is data (an email, a name), so a cursor is sealed: encrypted
//! and authenticated with AES-256-GCM-SIV (RFC 8452) under a key from
//! configuration (`BACKPLANE_CURSOR_KEY`), the same on every instance. What a
//! client sees is URL-safe base64 of bytes it cannot read or forge; a cursor
//! it changed, cut, or got from another list, order or key is refused as
//! `BAD_USER_INPUT` naming `after`, and the refusal says nothing of what the
//! cursor holds.
//!
//! Sealing is deterministic (one fixed nonce): the compiled read path
//! (`compiled`) seals the parts PostgreSQL gives it into the executor's very
//! bytes, and a page asked twice has the same cursors. GCM-SIV is built for
//! this: its tag is a synthetic IV over the plaintext and the associated
//! data, so a repeated nonce reveals only that two cursors are equal, which
//! deterministic cursors are by design. The ordering's tag (`usr:email_asc`:
//! the entity and the order) is associated data, so a cursor opens only for
//! the list and order that made it. The payload is binary and padded to
//! whole blocks, so that a cursor's length tells little of its value's.

use std::sync::OnceLock;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use async_graphql::{Context, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;
use crate::config::Mode;
#[cfg(test)]
use crate::store::page::Sort;
use crate::store::page::{Keyset, Page, PageRequest, SortValue};

/// Rows a connection returns when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Where a page is in its list.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether rows follow this page.
    pub has_next_page: bool,
    /// Whether rows come before this page: more rows before a page read
    /// backwards (`last`, `before`); for a page read forwards, whether it
    /// continues `after` a row.
    pub has_previous_page: bool,
    /// The cursor of the first row of the page, to pass as `before`; null
    /// when the page is empty.
    pub start_cursor: Option<String>,
    /// The cursor of the last row of the page, to pass as `after`; null when the
    /// page is empty.
    pub end_cursor: Option<String>,
}

pub use crate::catalog::Ordering;

/// The first byte of every cursor, in the clear and in the associated data:
/// a later format or key can be told apart.
const FORMAT: u8 = 1;
/// Sealing is deterministic: one nonce for every cursor (see the module doc).
const NONCE: [u8; 12] = [0; 12];
/// The plaintext is padded to whole blocks of this many bytes.
const BLOCK: usize = 16;
/// GCM-SIV's tag.
const TAG_LEN: usize = 16;
/// HKDF's salt and info: the cursor key is derived from a configured secret,
/// never used as it is (the session key seals cookies with a key of its own).
const KDF_SALT: &[u8] = b"backplane cursors";
const KDF_INFO: &[u8] = b"aes-256-gcm-siv key, format 1";

/// Where the cursor key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorKeySource {
    /// `BACKPLANE_CURSOR_KEY`.
    Configured,
    /// Derived from `BACKPLANE_SESSION_KEY`.
    SessionKey,
    /// A random key of this process: cursors end with it.
    Process,
}

/// Seals and opens cursors with one key: part of the schema's data, and the
/// compiled path's.
#[derive(Clone)]
pub struct Cursors {
    cipher: Aes256GcmSiv,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Cursors { .. }")
    }
}

/// The random key of this process, drawn once: every server of the process
/// (tests run several) seals with it, as instances sharing a configured key do.
static PROCESS_KEY: OnceLock<[u8; 32]> = OnceLock::new();

impl Cursors {
    /// Cursors sealed with a key derived (HKDF-SHA256, salted and labelled for
    /// cursors) from `secret`.
    pub fn from_secret(secret: &SecretString) -> Self {
        Self::with_key(&derive_key(secret.expose_secret().as_bytes()))
    }

    /// Cursors sealed with this process's random key.
    pub fn of_this_process() -> Self {
        let key = PROCESS_KEY.get_or_init(|| {
            let mut key = [0; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            key
        });
        Self::with_key(key)
    }

    /// The cursors of a server: `BACKPLANE_CURSOR_KEY`, else derived from
    /// `BACKPLANE_SESSION_KEY`, else this process's random key, with a warning
    /// that cursors then end with the process and work on this instance only.
    pub fn configured(
        cursor_key: Option<&SecretString>,
        session_key: Option<&SecretString>,
        mode: Mode,
    ) -> (Self, CursorKeySource) {
        if let Some(key) = cursor_key {
            return (Self::from_secret(key), CursorKeySource::Configured);
        }
        if let Some(key) = session_key {
            tracing::info!(
                derived_from = "BACKPLANE_SESSION_KEY",
                "cursors are sealed with a key derived from the session key"
            );
            return (Self::from_secret(key), CursorKeySource::SessionKey);
        }
        match mode {
            Mode::Dev => tracing::warn!(
                "no BACKPLANE_CURSOR_KEY: cursors are sealed with a random key of this process and do not survive a restart or work on another instance"
            ),
            Mode::Serve => tracing::warn!(
                "no BACKPLANE_CURSOR_KEY: cursors are sealed with a random key of this process and do not survive a restart or work on another instance; set BACKPLANE_CURSOR_KEY (at least 32 random characters, the same on every instance)"
            ),
        }
        (Self::of_this_process(), CursorKeySource::Process)
    }

    fn with_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256GcmSiv::new(key.into()),
        }
    }

    /// The cursor of a row of `ordering`: URL-safe base64 of the format byte
    /// and the sealed id and sort value.
    pub fn seal(&self, ordering: &Ordering, keyset: &Keyset) -> String {
        let mut plain = Vec::with_capacity(32);
        plain.extend_from_slice(&keyset.id.to_be_bytes());
        match &keyset.value {
            SortValue::None => {}
            SortValue::Text(text) => plain.extend_from_slice(text.as_bytes()),
            SortValue::Time(t) => {
                plain.extend_from_slice(&t.timestamp().to_be_bytes());
                plain.extend_from_slice(&t.timestamp_subsec_nanos().to_be_bytes());
            }
        }
        // ISO/IEC 7816-4: 0x80, then zeros to the end of the block.
        plain.push(0x80);
        plain.resize(plain.len().div_ceil(BLOCK) * BLOCK, 0);
        let aad = associated_data(ordering);
        // Only a message over 64 GiB fails to seal.
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(NONCE),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut cursor = Vec::with_capacity(1 + sealed.len());
        cursor.push(FORMAT);
        cursor.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(cursor)
    }

    /// The row a cursor of `ordering` stands for. Whatever is wrong with it
    /// (not base64, cut, changed, of another list, order or key) gets the same
    /// error, which says nothing of its content.
    pub(crate) fn open(&self, ordering: &Ordering, cursor: &str) -> Result<Keyset, ApiError> {
        self.try_open(ordering, cursor)
            .ok_or_else(|| ApiError::bad_input("after", "not a cursor of this list and order"))
    }

    fn try_open(&self, ordering: &Ordering, cursor: &str) -> Option<Keyset> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
        let (&format, sealed) = bytes.split_first()?;
        if format != FORMAT || sealed.len() < TAG_LEN + BLOCK {
            return None;
        }
        let aad = associated_data(ordering);
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(NONCE),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()?;
        // The padding: zeros after the last 0x80.
        let marker = plain.iter().rposition(|&b| b != 0)?;
        if plain[marker] != 0x80 {
            return None;
        }
        let (id, value) = plain[..marker].split_first_chunk::<8>()?;
        let id = i64::from_be_bytes(*id);
        let value = match ordering.sort.column {
            None if value.is_empty() => SortValue::None,
            None => return None,
            Some(_) if crate::catalog::sorts_by_instant(ordering) => {
                let (secs, nanos) = value.split_first_chunk::<8>()?;
                let nanos: [u8; 4] = nanos.try_into().ok()?;
                SortValue::Time(DateTime::<Utc>::from_timestamp(
                    i64::from_be_bytes(*secs),
                    u32::from_be_bytes(nanos),
                )?)
            }
            Some(_) => SortValue::Text(String::from_utf8(value.to_vec()).ok()?),
        };
        Some(Keyset { value, id })
    }
}

/// What a cursor is bound to besides its key: the format and the ordering's
/// tag (the entity and the order).
fn associated_data(ordering: &Ordering) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + ordering.tag.len());
    aad.push(FORMAT);
    aad.extend_from_slice(ordering.tag.as_bytes());
    aad
}

/// The AES-256 key for cursors from a configured secret.
fn derive_key(secret: &[u8]) -> [u8; 32] {
    let mut key = [0; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 8,160.
    let _ = hkdf::Hkdf::<sha2::Sha256>::new(Some(KDF_SALT), secret).expand(KDF_INFO, &mut key);
    key
}

/// The schema's cursors.
pub fn cursors<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Cursors> {
    ctx.data::<Cursors>().map_err(|_| super::missing("cursors"))
}

/// Checks `first` and `after` and reads from the selection whether `totalCount`
/// is wanted.
pub fn page_request(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
    ordering: &Ordering,
) -> async_graphql::Result<PageRequest> {
    page_request_of(ctx, (first, "first"), after, ordering)
}

/// [`page_request`] for a page of `count` rows (`first`, or `last` when
/// paging backwards: the error names the argument given) after `after`.
pub fn page_request_of(
    ctx: &Context<'_>,
    (first, argument): (Option<i32>, &'static str),
    after: Option<&str>,
    ordering: &Ordering,
) -> async_graphql::Result<PageRequest> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    let max = ctx
        .data_opt::<super::limits::Limits>()
        .copied()
        .unwrap_or_default()
        .of(ctx.data_opt::<crate::identity::Principal>())
        .max_page_size;
    if !(0..=max).contains(&first) {
        return Err(ApiError::bad_input(argument, format!("must be between 0 and {max}")).into());
    }
    let cursor_argument = if argument == "last" {
        "before"
    } else {
        "after"
    };
    let after = match after {
        Some(cursor) => Some(cursors(ctx)?.open(ordering, cursor).map_err(|_| {
            ApiError::bad_input(cursor_argument, "not a cursor of this list and order")
        })?),
        None => None,
    };
    Ok(PageRequest {
        first: first as u64,
        after,
        with_total: ctx.look_ahead().field("totalCount").exists(),
        backwards: argument == "last",
    })
}

/// The page Relay's four arguments ask for: forwards (`first`, `after`) or
/// backwards (`last`, `before`), never both.
pub fn relay_request(
    ctx: &Context<'_>,
    (first, after): (Option<i32>, Option<&str>),
    (last, before): (Option<i32>, Option<&str>),
    ordering: &Ordering,
) -> async_graphql::Result<PageRequest> {
    if last.is_some() || before.is_some() {
        if first.is_some() || after.is_some() {
            return Err(ApiError::bad_input(
                "last",
                "page forwards (first, after) or backwards (last, before), not both",
            )
            .into());
        }
        page_request_of(ctx, (last, "last"), before, ordering)
    } else {
        page_request_of(ctx, (first, "first"), after, ordering)
    }
}

/// A page as read for `req`, in the list's own order, with Relay's flags: a
/// page read backwards is turned back, has rows before it when more were
/// found, and rows after it when it ends before a cursor; a page read
/// forwards has rows before it when it continues after one.
pub fn in_order<M>(mut page: Page<M>, req: &PageRequest) -> Page<M> {
    if req.backwards {
        page.items.reverse();
        page.has_previous_page = page.has_next_page;
        page.has_next_page = req.after.is_some();
    } else {
        page.has_previous_page = req.after.is_some();
    }
    page
}

/// A Relay connection type with `nodes`, `edges { node cursor }`, `pageInfo` and
/// `totalCount`, built from a store page.
macro_rules! connection {
    // A catalog entity's: its visibility is the entity's (`described`).
    ($conn:ident, $edge:ident, $node:ident, $what:literal $(,)?) => {
        $crate::graphql::pagination::connection!(@ $conn, $edge, $node, $what, []);

        impl $conn {
            /// The connection over a page of catalog rows in `ordering`.
            pub fn of<M: sea_orm::ModelTrait>(
                cursors: &$crate::graphql::pagination::Cursors,
                page: $crate::store::page::Page<M>,
                ordering: &$crate::graphql::pagination::Ordering,
            ) -> Self
            where
                $node: From<M>,
            {
                Self::from_page(
                    cursors,
                    page,
                    ordering,
                    $crate::graphql::pagination::keyset_of(ordering),
                    $node::from,
                )
            }
        }
    };
    ($conn:ident, $edge:ident, $node:ident, $what:literal, $visible:literal) => {
        $crate::graphql::pagination::connection!(@ $conn, $edge, $node, $what, [visible = $visible]);
    };
    (@ $conn:ident, $edge:ident, $node:ident, $what:literal, [$($args:tt)*]) => {
        #[doc = concat!("An edge to ", $what, ".")]
        #[derive(async_graphql::SimpleObject, Clone)]
        #[graphql($($args)*)]
        pub struct $edge {
            /// The row.
            pub node: $node,
            /// Pass as `after` to continue after this row.
            pub cursor: String,
        }

        #[doc = concat!("A page of ", $what, "s.")]
        pub struct $conn {
            edges: Vec<$edge>,
            page_info: $crate::graphql::pagination::PageInfo,
            total: i64,
        }

        #[doc = concat!("A page of ", $what, "s, with where to continue (Relay's connection).")]
        #[async_graphql::Object($($args)*)]
        impl $conn {
            /// The rows of this page, in order.
            async fn nodes(&self) -> Vec<$node> {
                self.edges.iter().map(|e| e.node.clone()).collect()
            }

            /// The rows of this page with their cursors.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// Whether more rows follow, and where to continue.
            async fn page_info(&self) -> &$crate::graphql::pagination::PageInfo {
                &self.page_info
            }

            /// Rows in the whole list under the filter, all pages together.
            async fn total_count(&self) -> i64 {
                self.total
            }
        }

        impl $conn {
            pub fn from_page<M>(
                cursors: &$crate::graphql::pagination::Cursors,
                page: $crate::store::page::Page<M>,
                ordering: &$crate::graphql::pagination::Ordering,
                keyset: impl Fn(&M) -> $crate::store::page::Keyset,
                wrap: impl Fn(M) -> $node,
            ) -> Self {
                let edges: Vec<$edge> = page
                    .items
                    .into_iter()
                    .map(|m| {
                        let cursor = cursors.seal(ordering, &keyset(&m));
                        $edge {
                            node: wrap(m),
                            cursor,
                        }
                    })
                    .collect();
                let end_cursor = edges.last().map(|e| e.cursor.clone());
                let start_cursor = edges.first().map(|e| e.cursor.clone());
                Self {
                    page_info: $crate::graphql::pagination::PageInfo {
                        has_next_page: page.has_next_page,
                        has_previous_page: page.has_previous_page,
                        start_cursor,
                        end_cursor,
                    },
                    total: page.total.unwrap_or(0),
                    edges,
                }
            }
        }
    };
}
pub(crate) use connection;

/// The keyset of a row under `ordering`, for its cursor.
pub fn keyset_of<M: sea_orm::ModelTrait>(ordering: &Ordering) -> impl Fn(&M) -> Keyset + '_ {
    move |row| {
        // Every catalog ordering is over an `id` and a text or instant column
        // of its entity (a unit test holds the catalog to it); a row that
        // breaks it gets a cursor no row follows, and says so in the log.
        Keyset::of(row, ordering.sort).unwrap_or_else(|| {
            tracing::error!(
                ordering = ordering.tag,
                "a row has no keyset for its ordering; its cursor continues nowhere"
            );
            Keyset {
                value: SortValue::None,
                id: 0,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BY_NAME: Ordering = Ordering::new("org:name", Sort::by("name", false));
    const BY_TIME: Ordering = Ordering::new("org:created", Sort::by("created_at", true));
    const BY_ID: Ordering = Ordering::new("org:id", Sort::ID_ASC);
    const BY_EMAIL: Ordering = Ordering::new("usr:email_asc", Sort::by("email", false));

    fn cursors(secret: &str) -> Cursors {
        Cursors::from_secret(&SecretString::from(secret.repeat(32)))
    }

    fn text(value: &str, id: i64) -> Keyset {
        Keyset {
            value: SortValue::Text(value.into()),
            id,
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = cursors("k");
        let samples = [
            (BY_NAME, text("Acme", 7)),
            (BY_NAME, text("", 0)),
            (BY_NAME, text("a\u{0}\u{80}ü😀 \"x\"\u{0}", i64::MAX)),
            (BY_NAME, text(&"long name ".repeat(40), -3)),
            (
                BY_TIME,
                Keyset {
                    value: SortValue::Time(Utc::now()),
                    id: 3,
                },
            ),
            (
                BY_ID,
                Keyset {
                    value: SortValue::None,
                    id: 42,
                },
            ),
        ];
        for (ordering, keyset) in samples {
            let cursor = c.seal(&ordering, &keyset);
            assert_eq!(c.open(&ordering, &cursor).ok(), Some(keyset.clone()));
            // Deterministic: both read paths give the same bytes.
            assert_eq!(c.seal(&ordering, &keyset), cursor);
            assert!(
                cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{cursor}"
            );
        }
    }

    #[test]
    fn a_cursor_does_not_hold_its_sort_value() {
        let email = "Jane.Doe@Example.com";
        let bytes = URL_SAFE_NO_PAD
            .decode(cursors("k").seal(&BY_EMAIL, &text(email, 7)))
            .expect("URL-safe base64");
        for form in [email.to_owned(), email.to_lowercase(), "Jane".to_owned()] {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "the cursor holds {form}"
            );
        }
        // Nor its length, beyond a block of 16.
        let short = cursors("k").seal(&BY_EMAIL, &text("a@b.example", 1));
        let long = cursors("k").seal(&BY_EMAIL, &text("abcd@b.example", 1));
        assert_eq!(short.len(), long.len());
    }

    #[test]
    fn a_changed_or_cut_cursor_is_refused() {
        let c = cursors("k");
        let cursor = c.seal(&BY_EMAIL, &text("jane@example.com", 7));
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).expect("base64");
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut changed = bytes.clone();
                changed[i] ^= bit;
                let changed = URL_SAFE_NO_PAD.encode(changed);
                assert!(c.open(&BY_EMAIL, &changed).is_err(), "byte {i}");
            }
        }
        for len in 0..bytes.len() {
            let cut = URL_SAFE_NO_PAD.encode(&bytes[..len]);
            assert!(c.open(&BY_EMAIL, &cut).is_err(), "cut to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(c.open(&BY_EMAIL, &URL_SAFE_NO_PAD.encode(longer)).is_err());
        for bad in ["", "!!!", "bnVsbA", "WzEsMiwzXQ", &cursor[1..]] {
            assert!(c.open(&BY_EMAIL, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cursor_of_another_order_or_key_is_refused() {
        let c = cursors("k");
        let cursor = c.seal(&BY_NAME, &text("Acme", 7));
        const BY_NAME_DESC: Ordering = Ordering::new("org:name_desc", Sort::by("name", true));
        const USERS_BY_NAME: Ordering = Ordering::new("usr:name", Sort::by("name", false));
        for other in [BY_TIME, BY_ID, BY_NAME_DESC, USERS_BY_NAME] {
            assert!(c.open(&other, &cursor).is_err(), "{}", other.tag);
        }
        assert!(cursors("j").open(&BY_NAME, &cursor).is_err());
        assert!(Cursors::of_this_process().open(&BY_NAME, &cursor).is_err());
    }

    #[test]
    fn the_refusal_names_after_and_nothing_of_the_cursor() {
        let c = cursors("k");
        let cursor = cursors("j").seal(&BY_EMAIL, &text("jane@example.com", 7));
        let err: async_graphql::Error = c.open(&BY_EMAIL, &cursor).expect_err("refused").into();
        assert_eq!(err.message, "after: not a cursor of this list and order");
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code").map(|v| v.to_string()),
            Some("\"BAD_USER_INPUT\"".into())
        );
        assert_eq!(
            ext.get("field").map(|v| v.to_string()),
            Some("\"after\"".into())
        );
    }

    #[test]
    fn the_key_comes_from_the_cursor_key_else_the_session_key_else_the_process() {
        let cursor_key = SecretString::from("c".repeat(32));
        let session_key = SecretString::from("s".repeat(32));
        let (c, source) = Cursors::configured(Some(&cursor_key), Some(&session_key), Mode::Serve);
        assert_eq!(source, CursorKeySource::Configured);
        let cursor = c.seal(&BY_NAME, &text("Acme", 7));
        assert!(
            Cursors::from_secret(&cursor_key)
                .open(&BY_NAME, &cursor)
                .is_ok()
        );

        let (c, source) = Cursors::configured(None, Some(&session_key), Mode::Serve);
        assert_eq!(source, CursorKeySource::SessionKey);
        let cursor = c.seal(&BY_NAME, &text("Acme", 7));
        assert!(
            Cursors::from_secret(&session_key)
                .open(&BY_NAME, &cursor)
                .is_ok()
        );
        assert!(
            Cursors::from_secret(&cursor_key)
                .open(&BY_NAME, &cursor)
                .is_err()
        );

        let (c, source) = Cursors::configured(None, None, Mode::Dev);
        assert_eq!(source, CursorKeySource::Process);
        let cursor = c.seal(&BY_NAME, &text("Acme", 7));
        assert!(Cursors::of_this_process().open(&BY_NAME, &cursor).is_ok());
    }

    #[test]
    fn the_cursor_key_is_never_the_session_keys_bytes() {
        use sha2::{Digest, Sha512};
        let secret = "s".repeat(64);
        let key = derive_key(secret.as_bytes());
        // The session cookie's key is SHA-512 of the secret (`http::session`).
        let cookie_key = Sha512::digest(secret.as_bytes());
        assert_ne!(&key[..], &secret.as_bytes()[..32]);
        assert_ne!(&key[..], &cookie_key[..32]);
        assert_ne!(&key[..], &cookie_key[32..]);
    }
}
