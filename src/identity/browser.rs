//! Browser sign-in: the authorization code flow with PKCE, `state` and `nonce`,
//! through `openidconnect`. Starting it yields the identity provider's URL and
//! what must come back (kept by the caller in an encrypted cookie); finishing
//! it exchanges the code and verifies the ID token (signature with the
//! issuer's current keys, issuer, audience, expiry, nonce) before anything in it
//! is believed.

use std::sync::Arc;

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{OidcVerifier, Principal, PrincipalKind};

/// The relying party Backplane is to the identity provider.
#[derive(Clone)]
pub struct BrowserClientSettings {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Where the provider sends the browser back: `<public URL>/auth/callback`.
    pub redirect_uri: String,
}

impl std::fmt::Debug for BrowserClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserClientSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// What the browser must bring back from the provider, kept between the two
/// legs (in an encrypted, short-lived cookie).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go once signed in (a path of ours).
    pub return_to: String,
}

/// Why a sign-in did not complete. Shown to the person (no secret in it).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider cannot be reached; try again in a moment")]
    Unavailable,
    #[error("the identity provider refused the sign-in ({0})")]
    Refused(String),
    #[error(
        "the sign-in answer does not belong to this browser's sign-in (state mismatch); start again"
    )]
    StateMismatch,
    #[error("the sign-in took too long or was started elsewhere; start again")]
    NoPendingSignIn,
    #[error("the identity provider's answer could not be verified: {0}")]
    Invalid(String),
}

/// A client made from the provider's discovery document: authorization
/// endpoint set, token and userinfo endpoints as discovered.
type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Runs browser sign-ins against the configured issuer.
pub struct BrowserSignIn {
    verifier: Arc<OidcVerifier>,
    settings: BrowserClientSettings,
}

impl BrowserSignIn {
    pub fn new(verifier: Arc<OidcVerifier>, settings: BrowserClientSettings) -> Self {
        Self { verifier, settings }
    }

    async fn client(&self) -> Result<Client, SignInError> {
        let metadata = self
            .verifier
            .provider_metadata()
            .await
            .map_err(|_| SignInError::Unavailable)?;
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| SignInError::Invalid(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new sign-in, and what must come
    /// back with the browser. With `step_up`, the person is asked to sign in
    /// again (`prompt=login`), recently (`max_age`) and strongly
    /// (`acr_values`, when classes are configured), as RFC 9470 says a
    /// client answers its challenge.
    pub async fn start(
        &self,
        return_to: String,
        step_up: Option<&super::step_up::StepUpSettings>,
    ) -> Result<(String, PendingSignIn), SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if let Some(step_up) = step_up {
            request = request
                .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
                .set_max_age(std::time::Duration::from_secs(step_up.max_age_secs()));
            for acr in &step_up.acr {
                request = request.add_auth_context_value(
                    openidconnect::AuthenticationContextClass::new(acr.clone()),
                );
            }
        }
        let (url, state, nonce) = request.url();
        Ok((
            url.to_string(),
            PendingSignIn {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                return_to,
            },
        ))
    }

    /// Exchanges the code and verifies the ID token; the person it names.
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        state: &str,
        code: &str,
    ) -> Result<Principal, SignInError> {
        if !constant_time_eq(pending.state.as_bytes(), state.as_bytes()) {
            return Err(SignInError::StateMismatch);
        }
        let client = self.client().await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SignInError::Invalid(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let token: CoreTokenResponse =
            request
                .request_async(self.verifier.http())
                .await
                .map_err(|err| {
                    tracing::warn!(error = %err, "exchanging the authorization code failed");
                    match err {
                        openidconnect::RequestTokenError::ServerResponse(r) => {
                            SignInError::Refused(r.error().to_string())
                        }
                        _ => SignInError::Unavailable,
                    }
                })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| SignInError::Invalid("no ID token in the answer".into()))?;
        let verifier = client.id_token_verifier().set_allowed_algs(vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ]);
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| SignInError::Invalid(e.to_string()))?;
        if let Some(expected) = claims.access_token_hash() {
            let signing_alg = id_token
                .signing_alg()
                .map_err(|e| SignInError::Invalid(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| SignInError::Invalid(e.to_string()))?;
            let actual =
                openidconnect::AccessTokenHash::from_token(token.access_token(), signing_alg, key)
                    .map_err(|e| SignInError::Invalid(e.to_string()))?;
            if actual != *expected {
                return Err(SignInError::Invalid("access token hash mismatch".into()));
            }
        }
        // The token is verified; its other claims (roles, groups) are read from
        // its payload with the same rules as bearer tokens.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
            .ok_or_else(|| SignInError::Invalid("unreadable ID token".into()))?;
        let mut principal = self
            .verifier
            .principal(&payload)
            .map_err(|_| SignInError::Invalid("the ID token names nobody".into()))?;
        // A person, whatever the ID token's client: no scopes, no service kind.
        principal.kind = PrincipalKind::Staff;
        principal.scopes.clear();
        Ok(principal)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
