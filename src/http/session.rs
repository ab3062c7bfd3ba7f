//! Browser sessions: `/auth/login`, `/auth/callback`, `/auth/logout`,
//! `/auth/session`, and in `backplane dev` only, `/auth/dev` (pick a demo staff
//! member and a role).
//!
//! A session is a cookie, encrypted and authenticated (AES-256-GCM, key from
//! `BACKPLANE_SESSION_KEY`), that carries who signed in, their roles and when
//! the session ends: stateless, so every instance behind a load balancer that
//! shares the key accepts it. HttpOnly, SameSite=Lax, Secure when the public URL
//! is https or this server terminates TLS itself; where it is Secure its name
//! has the `__Host-` prefix, so that browsers take it only from this very host
//! (Secure, `Path=/`, no `Domain`): a sibling subdomain or a plain-HTTP attacker
//! on the network cannot plant or shadow it.
//!
//! A session belongs to the deployment that made it, because a key is easily
//! shared (copied from a staging configuration, or given to `backplane dev` on
//! a laptop): the cookie records its issuer (the OIDC issuer, or the dev
//! sign-in), the public URL and the mode, and a session whose record differs
//! from this server's has ended. The cookie key is derived from the same three
//! with the secret, so another deployment's cookie does not even open. `serve`
//! never takes a demo session (from `/auth/dev`), whatever it records.
//!
//! A request authenticated by the cookie must come from our own pages: a `GET`
//! (queries only; mutations over `GET` are refused anyway) or a JSON `POST`, not
//! cross-site (`Origin` and `Sec-Fetch-Site` are checked). Form and text bodies
//! never reach GraphQL (415), so a cross-site form cannot act with the cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha512};

use super::AppState;
use crate::config::Mode;
use crate::identity::browser::{BrowserSignIn, PendingSignIn, SignInError};
use crate::identity::step_up::Authentication;
use crate::identity::{Principal, PrincipalKind};
use crate::policy::Role;
use crate::store::seed::DEMO_STAFF;

/// The session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "backplane_session";
/// The session cookie where cookies are Secure (https public URL, or TLS here).
pub const SECURE_SESSION_COOKIE: &str = "__Host-backplane_session";
/// The cookie that carries a sign-in between its two legs, over plain HTTP.
const PENDING_COOKIE: &str = "backplane_sign_in";
/// The same where cookies are Secure.
const SECURE_PENDING_COOKIE: &str = "__Host-backplane_sign_in";
/// What a demo session (`/auth/dev`) records as its issuer.
const DEV_ISSUER: &str = "urn:backplane:dev-sign-in";
/// What a session records as its public URL when none is configured.
const NO_PUBLIC_URL: &str = "urn:backplane:no-public-url";
/// Sets session keys apart from anything else derived from the same secret.
const KEY_LABEL: &[u8] = b"backplane session cookie key v2";
/// How long a sign-in may take at the identity provider.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// The deployment that makes and reads sessions: only it accepts them.
#[derive(Clone, Copy, Debug)]
pub struct Deployment<'a> {
    /// `dev` or `serve`.
    pub mode: Mode,
    /// The OIDC issuer URL, when one is configured.
    pub issuer: Option<&'a str>,
    /// `BACKPLANE_PUBLIC_URL`, when set.
    pub public_url: Option<&'a str>,
}

/// What a session records of the deployment that made it.
#[derive(Clone, Debug)]
struct Binding {
    mode: &'static str,
    /// The OIDC issuer, whose sign-ins this deployment takes.
    issuer: Option<String>,
    /// The public URL without a trailing `/`, or [`NO_PUBLIC_URL`].
    public_url: String,
}

impl Binding {
    fn of(deployment: &Deployment<'_>) -> Self {
        Self {
            mode: mode_name(deployment.mode),
            issuer: deployment.issuer.map(str::to_owned),
            public_url: deployment
                .public_url
                .map_or(NO_PUBLIC_URL, |u| u.trim_end_matches('/'))
                .to_owned(),
        }
    }

    /// The cookie key: SHA-512 over a label, the binding (a deployment without
    /// an issuer counts as the dev sign-in's) and the secret, each
    /// length-prefixed so that no two bindings run into each other.
    fn key(&self, secret: &SecretString) -> Key {
        let mut hash = Sha512::new();
        for part in [
            KEY_LABEL,
            self.mode.as_bytes(),
            self.issuer.as_deref().unwrap_or(DEV_ISSUER).as_bytes(),
            self.public_url.as_bytes(),
            secret.expose_secret().as_bytes(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Key::from(&hash.finalize()[..])
    }

    /// Whether a session was made by this deployment, and may be taken here:
    /// a demo session in `dev` only.
    fn accepts(&self, data: &SessionData) -> bool {
        let issuer = if data.demo {
            self.mode == mode_name(Mode::Dev) && data.iss == DEV_ISSUER
        } else {
            self.issuer.as_deref() == Some(data.iss.as_str())
        };
        issuer && data.aud == self.public_url && data.mode == self.mode
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Dev => "dev",
        Mode::Serve => "serve",
    }
}

/// How sessions are made.
#[derive(Clone)]
pub struct Sessions {
    key: Key,
    ttl: Duration,
    secure: bool,
    /// `scheme://host[:port]` of our public URL, when configured: cookie
    /// requests must come from it.
    origin: Option<String>,
    binding: Binding,
}

impl Sessions {
    /// `secret`: at least 32 bytes shared by every instance; `None` makes a
    /// random key (sessions then end with the process: fine for `dev`).
    /// Sessions are bound to `deployment`.
    pub fn new(secret: Option<&SecretString>, ttl: Duration, deployment: Deployment<'_>) -> Self {
        let binding = Binding::of(&deployment);
        let key = match secret {
            Some(secret) => binding.key(secret),
            None => Key::generate(),
        };
        let public_url = deployment.public_url;
        let origin = public_url.map(|u| {
            let u = u.trim_end_matches('/');
            match u.find("://").map(|i| i + 3) {
                Some(start) => match u[start..].find('/') {
                    Some(end) => u[..start + end].to_owned(),
                    None => u.to_owned(),
                },
                None => u.to_owned(),
            }
        });
        Self {
            key,
            ttl,
            secure: public_url.is_some_and(|u| u.starts_with("https://")),
            origin,
            binding,
        }
    }

    /// The session cookie's name here: `__Host-` where cookies are Secure.
    fn session_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The pending sign-in cookie's name here.
    fn pending_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_PENDING_COOKIE
        } else {
            PENDING_COOKIE
        }
    }

    /// Marks cookies `Secure` whatever the public URL says: this server
    /// terminates TLS, so browsers reach it over https only.
    pub fn secure_cookies(mut self) -> Self {
        self.secure = true;
        self
    }

    fn jar(&self, headers: &HeaderMap) -> PrivateCookieJar {
        PrivateCookieJar::from_headers(headers, self.key.clone())
    }

    fn cookie(&self, name: &'static str, value: String, ttl: Duration) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(cookie_duration(ttl))
            .build()
    }

    /// A cookie that removes `name`: with the attributes it was set with, or
    /// browsers ignore the removal of a `__Host-` cookie.
    fn removal(&self, name: &'static str) -> Cookie<'static> {
        Cookie::build((name, ""))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build()
    }
}

fn cookie_duration(ttl: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(ttl.as_secs() as i64)
}

/// What the session cookie carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionData {
    sub: String,
    name: Option<String>,
    email: Option<String>,
    roles: Vec<String>,
    /// Signed in through `/auth/dev`.
    demo: bool,
    /// Unix seconds.
    exp: i64,
    /// Who vouched for the person: the OIDC issuer, or [`DEV_ISSUER`].
    iss: String,
    /// The public URL of the deployment that made it, or [`NO_PUBLIC_URL`].
    aud: String,
    /// The mode of the deployment that made it: `dev` or `serve`.
    mode: String,
    /// How the person signed in at the identity provider (the ID token's
    /// `amr`, `acr` and `auth_time`), for step-up.
    #[serde(default)]
    auth: Authentication,
}

impl SessionData {
    fn principal(&self) -> Principal {
        Principal {
            subject: self.sub.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            kind: if self.demo {
                PrincipalKind::Demo
            } else {
                PrincipalKind::Staff
            },
            roles: self.roles.iter().filter_map(|r| r.parse().ok()).collect(),
            scopes: Default::default(),
            authentication: self.auth.clone(),
            step_up: Default::default(),
        }
    }
}

/// What a request's cookies say.
pub enum CookieSession {
    None,
    /// A valid session.
    Active(Box<Principal>),
    /// A session cookie that has ended (or that no key of ours opens).
    Ended,
}

/// Reads the session cookie of a request.
pub fn read(sessions: &Sessions, headers: &HeaderMap) -> CookieSession {
    match open(sessions, headers) {
        Opened::None => CookieSession::None,
        Opened::Active(data) => CookieSession::Active(Box::new(data.principal())),
        Opened::Ended => CookieSession::Ended,
    }
}

/// What [`open`] found.
enum Opened {
    None,
    Active(Box<SessionData>),
    Ended,
}

/// Whether a `Cookie` header of the request names `name`.
fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| c.trim().split_once('=').is_some_and(|(n, _)| n == name))
}

/// Opens the request's session cookie. A cookie that no key of ours opens,
/// that another deployment made, or a demo session outside `dev`, has ended:
/// the browser hears so and signs in again; it is never a principal.
fn open(sessions: &Sessions, headers: &HeaderMap) -> Opened {
    let name = sessions.session_cookie();
    if !has_cookie(headers, name) {
        // Where cookies are Secure, one without the prefix is from before the
        // prefix, or planted by another host (what `__Host-` shuts out): no
        // session, and no anonymous request either.
        if sessions.secure && has_cookie(headers, SESSION_COOKIE) {
            return Opened::Ended;
        }
        return Opened::None;
    }
    let Some(cookie) = sessions.jar(headers).get(name) else {
        return Opened::Ended;
    };
    let Ok(data) = serde_json::from_str::<SessionData>(cookie.value()) else {
        return Opened::Ended;
    };
    if !sessions.binding.accepts(&data) {
        tracing::info!(
            demo = data.demo,
            "session refused: made by another deployment or by a dev sign-in"
        );
        return Opened::Ended;
    }
    if data.exp <= chrono::Utc::now().timestamp() {
        return Opened::Ended;
    }
    Opened::Active(Box::new(data))
}

/// What a request's authority comes from, when the browser adds it by itself
/// to any request, a cross-site one too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambient {
    /// A session cookie.
    SessionCookie,
    /// Nothing at all, in `dev`: the demo administrator.
    DevWithoutToken,
}

impl Ambient {
    fn other_site(self) -> &'static str {
        match self {
            Self::SessionCookie => "a session cookie is accepted from Backplane's own pages only",
            Self::DevWithoutToken => {
                "without a token, `backplane dev` answers its own pages and tools on this machine only"
            }
        }
    }

    fn not_json(self) -> &'static str {
        match self {
            Self::SessionCookie => {
                "with a session cookie, only application/json requests are accepted"
            }
            Self::DevWithoutToken => {
                "without a token, `backplane dev` accepts application/json requests only"
            }
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::SessionCookie => "with a session cookie, only GET and POST are accepted",
            Self::DevWithoutToken => "without a token, `backplane dev` accepts GET and POST only",
        }
    }
}

/// Whether a request with ambient authority (a cookie, or in `dev` none at
/// all) may go on: our own pages' `GET`s and JSON `POST`s only, so that a page
/// of another site the browser visits cannot act with it.
pub fn cross_site_refusal(
    sessions: &Sessions,
    ambient: Ambient,
    method: &Method,
    headers: &HeaderMap,
) -> Option<&'static str> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return Some(ambient.other_site());
    }
    if let Some(origin) = text(header::ORIGIN) {
        let ours = match &sessions.origin {
            Some(o) => o.eq_ignore_ascii_case(origin),
            None => text(header::HOST).is_some_and(|host| {
                origin
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
            }),
        };
        if !ours {
            return Some(ambient.other_site());
        }
    }
    if *method == Method::POST {
        let json = text(header::CONTENT_TYPE).is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Some(ambient.not_json());
        }
    } else if *method != Method::GET {
        return Some(ambient.method());
    }
    None
}

/// A path of ours to return to after signing in (never another site).
fn safe_return(to: Option<&str>) -> String {
    match to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/playground".to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// Any value: sign in again, strongly (the step-up's `acr_values` and
    /// `max_age`, and `prompt=login`), as RFC 9470's challenge asks.
    step_up: Option<String>,
}

/// Starts a sign-in: at the identity provider, or in `dev` without one, at the
/// demo sign-in page.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let return_to = safe_return(query.return_to.as_deref());
    let Some(sign_in) = state.sign_in.clone() else {
        if state.mode == Mode::Dev {
            return Redirect::to(&format!("/auth/dev?return_to={}", encode(&return_to)))
                .into_response();
        }
        return page(
            StatusCode::NOT_FOUND,
            "Sign-in is not configured",
            "<p>This Backplane has no browser sign-in: set <code>BACKPLANE_OIDC_CLIENT_ID</code>, <code>BACKPLANE_OIDC_CLIENT_SECRET</code> and <code>BACKPLANE_PUBLIC_URL</code>. Scripts and developers can still call <code>/graphql</code> with a bearer token.</p>",
        );
    };
    let step_up = query.step_up.is_some().then_some(&*state.step_up);
    match sign_in.start(return_to, step_up).await {
        Ok((url, pending)) => {
            let sessions = &state.sessions;
            let value = serde_json::to_string(&pending).unwrap_or_default();
            let jar = sessions.jar(&headers).add(sessions.cookie(
                sessions.pending_cookie(),
                value,
                PENDING_TTL,
            ));
            tracing::info!(step_up = step_up.is_some(), "browser sign-in started");
            (jar, Redirect::to(&url)).into_response()
        }
        Err(err) => sign_in_failed(&err),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The identity provider sends the browser back here.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(sign_in) = state.sign_in.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sessions = &state.sessions;
    let jar = sessions.jar(&headers);
    let pending: Option<PendingSignIn> = jar
        .get(sessions.pending_cookie())
        .and_then(|c| serde_json::from_str(c.value()).ok());
    let jar = jar.remove(sessions.removal(sessions.pending_cookie()));
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or(error);
        return (jar, sign_in_failed(&SignInError::Refused(detail))).into_response();
    }
    let (Some(pending), Some(code), Some(returned_state)) = (pending, query.code, query.state)
    else {
        return (jar, sign_in_failed(&SignInError::NoPendingSignIn)).into_response();
    };
    match sign_in.finish(&pending, &returned_state, &code).await {
        Ok(principal) => {
            tracing::info!(subject = %principal.subject, roles = ?principal.roles, "signed in through the identity provider");
            let jar = start_session(sessions, jar, &principal, false);
            (jar, Redirect::to(&pending.return_to)).into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err, "browser sign-in failed");
            (jar, sign_in_failed(&err)).into_response()
        }
    }
}

fn start_session(
    sessions: &Sessions,
    jar: PrivateCookieJar,
    principal: &Principal,
    demo: bool,
) -> PrivateCookieJar {
    let data = SessionData {
        sub: principal.subject.clone(),
        name: principal.name.clone(),
        email: principal.email.clone(),
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        demo,
        exp: chrono::Utc::now().timestamp() + sessions.ttl.as_secs() as i64,
        iss: if demo {
            DEV_ISSUER.to_owned()
        } else {
            sessions.binding.issuer.clone().unwrap_or_default()
        },
        aud: sessions.binding.public_url.clone(),
        mode: sessions.binding.mode.to_owned(),
        auth: principal.authentication.clone(),
    };
    let value = serde_json::to_string(&data).unwrap_or_default();
    // The cookie outlives the session by a day, so that a browser still sends
    // it after the session's end and hears that the session has ended (instead
    // of being treated as never signed in).
    let cookie_ttl = sessions.ttl + Duration::from_secs(24 * 3600);
    let jar = jar.add(sessions.cookie(sessions.session_cookie(), value, cookie_ttl));
    // A cookie of the old name would keep reading as an ended session.
    if sessions.secure {
        jar.remove(sessions.removal(SESSION_COOKIE))
    } else {
        jar
    }
}

/// Ends the session here (the identity provider's own session is its own).
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let sessions = &state.sessions;
    let mut jar = sessions
        .jar(&headers)
        .remove(sessions.removal(sessions.session_cookie()));
    if sessions.secure {
        jar = jar.remove(sessions.removal(SESSION_COOKIE));
    }
    (
        jar,
        page(
            StatusCode::OK,
            "Signed out",
            "<p>You are signed out of Backplane.</p><p><a href=\"/auth/login?return_to=/playground\">Sign in again</a></p>",
        ),
    )
        .into_response()
}

/// Who is signed in, for the playground page.
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = match open(&state.sessions, &headers) {
        Opened::Active(data) => {
            let principal = data.principal();
            let exp = chrono::DateTime::from_timestamp(data.exp, 0).map(|t| t.to_rfc3339());
            let standing = state
                .step_up
                .standing(&principal, chrono::Utc::now().timestamp());
            let strong_until = standing
                .strong_until
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339());
            axum::Json(json!({
                "signedIn": true,
                "subject": principal.subject,
                "name": principal.name,
                "email": principal.email,
                "roles": principal.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "expiresAt": exp,
                "strongAuthentication": standing.strong_until.is_some(),
                "strongUntil": strong_until,
                "stepUpRequired": standing.pending.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "stepUpUrl": "/auth/login?step_up=1",
                "logoutUrl": "/auth/logout",
                "mode": mode_name(state.mode),
            }))
            .into_response()
        }
        Opened::Ended | Opened::None => axum::Json(json!({
            "signedIn": false,
            "loginUrl": "/auth/login",
        }))
        .into_response(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `dev` only: pick a demo staff member and one role or several.
pub async fn dev_page(Query(query): Query<LoginQuery>) -> Response {
    let return_to = safe_return(query.return_to.as_deref());
    let staff: String = DEMO_STAFF
        .iter()
        .map(|(subject, name, roles)| {
            format!("<option value=\"{subject}\">{name} ({roles})</option>")
        })
        .collect();
    let roles: String = Role::ALL
        .iter()
        .map(|r| {
            format!(
                "<label class=\"role\"><input type=\"checkbox\" name=\"role\" value=\"{0}\"> {0}</label>",
                r.as_str()
            )
        })
        .collect();
    page(
        StatusCode::OK,
        "Dev sign-in",
        &format!(
            "<p>This is <code>backplane dev</code>: pick a demo staff member and the roles to try \
             (one, or several: a person's rights are the union of their roles'). \
             <code>backplane serve</code> has no such page; people sign in through the identity provider.</p>\
             <form id=\"dev-sign-in\" method=\"post\" action=\"/auth/dev\">\
             <input type=\"hidden\" name=\"return_to\" value=\"{}\">\
             <label>Staff member <select name=\"staff\">{staff}</select></label>\
             <fieldset><legend>Roles</legend>{roles}</fieldset>\
             <button type=\"submit\">Sign in</button></form>",
            escape(&return_to)
        ),
    )
}

/// The dev sign-in form: a staff member, any number of `role` fields (a
/// form repeats the name once per ticked box), where to go next.
#[derive(Default)]
struct DevSignIn {
    staff: String,
    roles: Vec<String>,
    return_to: Option<String>,
}

impl DevSignIn {
    fn parse(body: &[u8]) -> Self {
        let mut form = DevSignIn::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "staff" => form.staff = value.into_owned(),
                "role" => form.roles.push(value.into_owned()),
                "return_to" => form.return_to = Some(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// `dev` only: starts a session as the chosen demo staff member with the
/// chosen roles.
pub async fn dev_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = DevSignIn::parse(&body);
    if cross_site_refusal(
        &state.sessions,
        Ambient::DevWithoutToken,
        &Method::GET,
        &headers,
    )
    .is_some()
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some((subject, name, _)) = DEMO_STAFF.iter().find(|(s, _, _)| *s == form.staff) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Dev sign-in",
            "<p>No such demo staff member.</p>",
        );
    };
    let Ok(roles) = form
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<std::collections::BTreeSet<Role>, _>>()
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Dev sign-in",
            "<p>No such role.</p>",
        );
    };
    if roles.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Dev sign-in",
            "<p>Tick at least one role.</p>",
        );
    }
    let principal = Principal {
        subject: (*subject).to_owned(),
        email: Some(format!("{subject}@backplane.example")),
        name: Some((*name).to_owned()),
        kind: PrincipalKind::Demo,
        roles: roles.clone(),
        scopes: Default::default(),
        authentication: Default::default(),
        step_up: Default::default(),
    };
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    tracing::info!(subject = %principal.subject, roles = %names.join(","), "dev sign-in");
    let jar = start_session(
        &state.sessions,
        state.sessions.jar(&headers),
        &principal,
        true,
    );
    (jar, Redirect::to(&safe_return(form.return_to.as_deref()))).into_response()
}

fn sign_in_failed(err: &SignInError) -> Response {
    use crate::audit::refusals::{self, reason};
    let status = match err {
        SignInError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    // Recorded in the audit log as a refusal, in fixed words: the provider's
    // own text came with the redirect, which anyone can forge.
    let (reason, message) = match err {
        SignInError::Unavailable => (
            crate::identity::IdentityError::IssuerUnavailable.reason(),
            "the identity provider cannot be reached",
        ),
        SignInError::Refused(_) => (
            reason::SIGN_IN_REFUSED,
            "the identity provider refused the sign-in",
        ),
        SignInError::StateMismatch => (
            reason::SIGN_IN_STATE_MISMATCH,
            "the sign-in answer's state is not this browser's",
        ),
        SignInError::NoPendingSignIn => (
            reason::SIGN_IN_NOT_PENDING,
            "no sign-in of this browser was pending",
        ),
        SignInError::Invalid(_) => (
            reason::SIGN_IN_UNVERIFIED,
            "the identity provider's answer could not be verified",
        ),
    };
    let mut response = page(
        status,
        "Sign-in failed",
        &format!(
            "<p>{}</p><p><a href=\"/auth/login?return_to=/playground\">Start again</a></p>",
            escape(&err.to_string())
        ),
    );
    response
        .extensions_mut()
        .insert(refusals::Refused::new(reason, message));
    response
}

/// A small HTML page of ours (no script, no other host).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Backplane</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <style>body{{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}}\
         label{{display:block;margin:1rem 0}}select,button{{font:inherit;margin-left:.5rem}}button{{margin:0}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The browser sign-in of a server, when configured.
pub type SignIn = Option<Arc<BrowserSignIn>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_here() {
        assert_eq!(safe_return(Some("/playground?x=1")), "/playground?x=1");
        assert_eq!(safe_return(Some("//evil.example")), "/playground");
        assert_eq!(safe_return(Some("https://evil.example")), "/playground");
        assert_eq!(safe_return(Some("/\\evil.example")), "/playground");
        assert_eq!(safe_return(None), "/playground");
    }

    fn serve_at(public_url: Option<&str>) -> Deployment<'_> {
        Deployment {
            mode: Mode::Serve,
            issuer: Some("https://sso.example"),
            public_url,
        }
    }

    #[test]
    fn origins_of_public_urls() {
        let ttl = Duration::from_secs(60);
        let s = Sessions::new(None, ttl, serve_at(Some("https://bp.example/x/")));
        assert_eq!(s.origin.as_deref(), Some("https://bp.example"));
        assert!(s.secure);
        assert_eq!(s.session_cookie(), "__Host-backplane_session");
        assert_eq!(s.pending_cookie(), "__Host-backplane_sign_in");
        let s = Sessions::new(None, ttl, serve_at(Some("http://127.0.0.1:8080")));
        assert_eq!(s.origin.as_deref(), Some("http://127.0.0.1:8080"));
        assert!(!s.secure);
        assert_eq!(s.session_cookie(), "backplane_session");
        assert_eq!(s.pending_cookie(), "backplane_sign_in");
        // Terminating TLS ourselves: Secure whatever the public URL says.
        let s = s.secure_cookies();
        assert!(s.secure);
        assert_eq!(s.session_cookie(), "__Host-backplane_session");
    }

    /// The `Cookie` header a browser sends back after `jar` was set.
    fn cookie_header(jar: PrivateCookieJar) -> HeaderMap {
        let response = (jar, ()).into_response();
        let pairs: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next().map(str::to_owned))
            .collect();
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
            headers.insert(header::COOKIE, value);
        }
        headers
    }

    fn session_of(sessions: &Sessions, demo: bool) -> HeaderMap {
        let principal = Principal::demo_admin();
        cookie_header(start_session(
            sessions,
            sessions.jar(&HeaderMap::new()),
            &principal,
            demo,
        ))
    }

    #[test]
    fn a_session_is_taken_by_the_deployment_that_made_it_only() {
        let secret = SecretString::from("a-shared-secret-of-at-least-32-characters");
        let ttl = Duration::from_secs(60);
        let home = serve_at(Some("http://bp.example"));
        let made = Sessions::new(Some(&secret), ttl, home);
        let headers = session_of(&made, false);
        let again = Sessions::new(Some(&secret), ttl, home);
        assert!(matches!(read(&again, &headers), CookieSession::Active(_)));
        let others = [
            serve_at(Some("http://staging.bp.example")),
            serve_at(None),
            Deployment {
                issuer: Some("https://other-sso.example"),
                ..home
            },
            Deployment {
                mode: Mode::Dev,
                ..home
            },
        ];
        for other in others {
            // The key differs: the cookie does not open.
            let sessions = Sessions::new(Some(&secret), ttl, other);
            assert!(
                matches!(read(&sessions, &headers), CookieSession::Ended),
                "{other:?}"
            );
            // And with the very key of `home`, what it records still differs.
            let mut sessions = sessions;
            sessions.key = made.key.clone();
            assert!(
                matches!(read(&sessions, &headers), CookieSession::Ended),
                "{other:?}"
            );
        }
    }

    #[test]
    fn serve_never_takes_a_demo_session() {
        let secret = SecretString::from("a-shared-secret-of-at-least-32-characters");
        let ttl = Duration::from_secs(60);
        let dev = Sessions::new(
            Some(&secret),
            ttl,
            Deployment {
                mode: Mode::Dev,
                issuer: None,
                public_url: None,
            },
        );
        let headers = session_of(&dev, true);
        assert!(matches!(read(&dev, &headers), CookieSession::Active(_)));
        // A `serve` that somehow shares the key and records the same: a demo
        // session made under it (what a forged `dev` would mint) is refused.
        let mut serve = Sessions::new(Some(&secret), ttl, serve_at(None));
        let demo_here = session_of(&serve, true);
        assert!(matches!(read(&serve, &demo_here), CookieSession::Ended));
        serve.key = dev.key.clone();
        assert!(matches!(read(&serve, &headers), CookieSession::Ended));
    }

    #[test]
    fn a_cookie_without_the_prefix_is_no_session_where_cookies_are_secure() {
        let ttl = Duration::from_secs(60);
        let secure = Sessions::new(None, ttl, serve_at(Some("https://bp.example")));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("backplane_session=planted"),
        );
        assert!(matches!(read(&secure, &headers), CookieSession::Ended));
        let plain = Sessions::new(None, ttl, serve_at(None));
        assert!(matches!(read(&plain, &headers), CookieSession::Ended));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-backplane_session=x; other=1"),
        );
        assert!(matches!(read(&plain, &headers), CookieSession::None));
        assert!(matches!(read(&secure, &headers), CookieSession::Ended));
    }
}
