//! OpenID Connect sign-in: discovery, the authorization code flow with PKCE, `state` and
//! `nonce`, and ID token verification (signature, issuer, audience, expiry, nonce) by the
//! `openidconnect` crate. The HTTP client follows no redirects (an IdP answering with one
//! could otherwise steer lakegate's requests elsewhere). When an ID token is signed with a key
//! the provider did not publish at discovery, the provider is discovered again: keys rotate
//! without a restart.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, JsonWebKey as _, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

/// The client after discovery: authorization endpoint known, token and user-info endpoints
/// as the provider advertised them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Settings of the OpenID Connect client.
#[derive(Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The ID token claim holding the person's groups.
    pub groups_claim: String,
    /// Scopes asked for besides `openid email profile`.
    pub extra_scopes: Vec<String>,
    /// `{public URL}/auth/callback`.
    pub redirect_url: String,
    /// Refuse ID tokens whose `email_verified` claim is missing (it is always refused when
    /// `false`).
    pub require_verified_email: bool,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("groups_claim", &self.groups_claim)
            .field("extra_scopes", &self.extra_scopes)
            .field("redirect_url", &self.redirect_url)
            .field("require_verified_email", &self.require_verified_email)
            .finish()
    }
}

/// Why a sign-in did not happen. The message is shown to the person.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider at {issuer} could not be set up: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error("the identity provider did not accept the sign-in: {0}")]
    Exchange(String),
    #[error("the identity provider's answer is not valid: {0}")]
    InvalidToken(String),
    #[error("{0}")]
    Claims(String),
}

/// What is kept in the session between the redirect to the provider and the callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Local path to return to afterwards.
    pub next: String,
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Who signed in, as the verified ID token says, and the tokens to ask the provider again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub tokens: ProviderTokens,
}

/// The provider's access token (for its user-info endpoint) and refresh token (for a new access
/// token), kept in the server-side session to re-read the person's groups.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token expires (unix seconds), if the provider said.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn expiry(expires_in: Option<std::time::Duration>) -> Option<i64> {
    expires_in.and_then(|d| {
        i64::try_from(d.as_secs())
            .ok()
            .map(|s| time::OffsetDateTime::now_utc().unix_timestamp() + s)
    })
}

/// What discovery found: the client, the ids of the keys the provider published, and its
/// user-info endpoint.
struct Discovered {
    client: DiscoveredClient,
    key_ids: Vec<String>,
    userinfo: Option<String>,
}

/// A discovered OpenID Connect provider.
pub struct Oidc {
    config: OidcConfig,
    discovered: RwLock<Arc<Discovered>>,
    http: reqwest::Client,
    issuer: String,
    scopes: Vec<String>,
}

impl fmt::Debug for Oidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Fetches the provider's metadata and keys. The metadata's `issuer` must be exactly the
    /// configured one (the `openidconnect` crate checks it).
    pub async fn discover(config: &OidcConfig) -> Result<Self, OidcError> {
        let http = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| discovery_failed(config, e.to_string()))?;
        let discovered = discover_with(config, &http).await?;
        let mut scopes = vec!["email".to_owned(), "profile".to_owned()];
        for s in &config.extra_scopes {
            if !scopes.contains(s) && s != "openid" {
                scopes.push(s.clone());
            }
        }
        Ok(Self {
            config: config.clone(),
            discovered: RwLock::new(Arc::new(discovered)),
            http,
            issuer: config.issuer.trim_end_matches('/').to_owned(),
            scopes,
        })
    }

    /// The current discovery. A poisoned lock still holds a complete value (it is only ever
    /// replaced whole).
    fn current(&self) -> Arc<Discovered> {
        match self.discovered.read() {
            Ok(d) => Arc::clone(&d),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Discovers the provider again, for a key id it did not publish before.
    async fn rediscover(&self, kid: &str) -> Result<Arc<Discovered>, OidcError> {
        let fresh = Arc::new(discover_with(&self.config, &self.http).await?);
        tracing::info!(
            issuer = %self.issuer,
            kid,
            known = fresh.key_ids.contains(&kid.to_owned()),
            "the identity provider's signing keys were fetched again"
        );
        match self.discovered.write() {
            Ok(mut d) => *d = Arc::clone(&fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&fresh),
        }
        Ok(fresh)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's authorization URL, and what to remember until the callback.
    pub fn start(&self, next: String) -> (String, PendingSignIn) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let discovered = self.current();
        let mut request = discovered
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in &self.scopes {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.url();
        (
            url.to_string(),
            PendingSignIn {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                next,
            },
        )
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token.
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        code: String,
    ) -> Result<Identity, OidcError> {
        let mut discovered = self.current();
        let exchange = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let response = exchange
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no ID token in the answer".into()))?;
        // A key id the provider did not publish at discovery: its keys rotated since.
        let compact = id_token.to_string();
        if let Some(kid) = key_id_of(&compact)
            && !discovered.key_ids.contains(&kid)
        {
            discovered = self.rediscover(&kid).await?;
        }
        let verifier = discovered.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| OidcError::InvalidToken(error_chain(&e)))?;
        match claims.email_verified() {
            Some(true) => {}
            Some(false) => {
                return Err(OidcError::Claims(
                    "your email address is not verified at the identity provider".into(),
                ));
            }
            None if self.config.require_verified_email => {
                return Err(OidcError::Claims(
                    "the identity provider did not say whether your email address is verified \
                     (no `email_verified` claim); lakegate is set to require it \
                     (LAKEGATE_OIDC_REQUIRE_VERIFIED_EMAIL)"
                        .into(),
                ));
            }
            None => {}
        }
        let email = claims.email().map(|e| e.as_str().to_owned()).ok_or_else(|| {
            OidcError::Claims(
                "the identity provider did not share an email address (is the `email` scope allowed?)".into(),
            )
        })?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        // The token's signature was verified above; reading one more claim from the same
        // payload is as trustworthy as the claims the library parsed.
        let groups = groups_from_payload(&compact, &self.config.groups_claim)?;
        Ok(Identity {
            subject: claims.subject().as_str().to_owned(),
            email,
            name,
            groups,
            tokens: ProviderTokens {
                access_token: response.access_token().secret().clone(),
                refresh_token: response.refresh_token().map(|t| t.secret().clone()),
                expires_at: expiry(response.expires_in()),
            },
        })
    }

    /// The person's groups as the provider says now, from its user-info endpoint (with a new
    /// access token first when the old one has expired and a refresh token is at hand). The
    /// answer must be about `subject`. `tokens` is updated when refreshed.
    pub async fn current_groups(
        &self,
        subject: &str,
        tokens: &mut ProviderTokens,
    ) -> Result<Vec<String>, OidcError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut refreshed = false;
        if tokens.expires_at.is_some_and(|e| e <= now + 30) {
            self.refresh(tokens).await?;
            refreshed = true;
        }
        loop {
            match self.userinfo(&tokens.access_token).await? {
                UserInfo::Claims(claims) => {
                    if claims.get("sub").and_then(serde_json::Value::as_str) != Some(subject) {
                        return Err(OidcError::InvalidToken(
                            "the identity provider's user info is about someone else".into(),
                        ));
                    }
                    return groups_from_claims(&claims, &self.config.groups_claim);
                }
                UserInfo::Expired if !refreshed => {
                    self.refresh(tokens).await?;
                    refreshed = true;
                }
                UserInfo::Expired => {
                    return Err(OidcError::Exchange(
                        "the identity provider no longer accepts this sign-in".into(),
                    ));
                }
            }
        }
    }

    async fn refresh(&self, tokens: &mut ProviderTokens) -> Result<(), OidcError> {
        let Some(refresh) = tokens.refresh_token.clone() else {
            return Err(OidcError::Exchange(
                "the sign-in has expired at the identity provider (no refresh token)".into(),
            ));
        };
        let discovered = self.current();
        let refresh = RefreshToken::new(refresh);
        let response = discovered
            .client
            .exchange_refresh_token(&refresh)
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        tokens.access_token = response.access_token().secret().clone();
        if let Some(r) = response.refresh_token() {
            tokens.refresh_token = Some(r.secret().clone());
        }
        tokens.expires_at = expiry(response.expires_in());
        Ok(())
    }

    async fn userinfo(&self, access_token: &str) -> Result<UserInfo, OidcError> {
        let discovered = self.current();
        let Some(url) = &discovered.userinfo else {
            return Err(OidcError::Claims(
                "the identity provider has no user-info endpoint, so groups cannot be re-read"
                    .into(),
            ));
        };
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Exchange(e.without_url().to_string()))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(UserInfo::Expired);
        }
        if !res.status().is_success() {
            return Err(OidcError::Exchange(format!(
                "the identity provider's user-info endpoint answered {}",
                res.status()
            )));
        }
        let claims: serde_json::Value = res
            .json()
            .await
            .map_err(|e| OidcError::InvalidToken(format!("user info: {}", e.without_url())))?;
        Ok(UserInfo::Claims(claims))
    }
}

fn discovery_failed(config: &OidcConfig, reason: String) -> OidcError {
    OidcError::Discovery {
        issuer: config.issuer.clone(),
        reason,
    }
}

/// One discovery: metadata (with the issuer check), keys, and the client built from them.
async fn discover_with(
    config: &OidcConfig,
    http: &reqwest::Client,
) -> Result<Discovered, OidcError> {
    let fail = |reason: String| discovery_failed(config, reason);
    let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| fail(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
    let key_ids = metadata
        .jwks()
        .keys()
        .iter()
        .filter_map(|k| k.key_id().map(|id| id.as_str().to_owned()))
        .collect();
    let redirect =
        RedirectUrl::new(config.redirect_url.clone()).map_err(|e| fail(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.clone())),
    )
    .set_redirect_uri(redirect);
    Ok(Discovered {
        client,
        key_ids,
        userinfo,
    })
}

/// The `kid` of a compact JWT's header, before any verification (only to pick the key).
fn key_id_of(jwt: &str) -> Option<String> {
    let header = jwt.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(ToOwned::to_owned)
}

/// What the user-info endpoint said.
enum UserInfo {
    Claims(serde_json::Value),
    /// 401: the access token is no longer good.
    Expired,
}

/// The groups claim of a (verified) compact JWT: an array of strings, or one string.
fn groups_from_payload(jwt: &str, claim: &str) -> Result<Vec<String>, OidcError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::InvalidToken("the ID token is not a JWT".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| OidcError::InvalidToken(format!("ID token payload: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| OidcError::InvalidToken(format!("ID token payload: {e}")))?;
    groups_from_claims(&value, claim)
}

/// The groups claim of a set of claims: an array of strings, or one string.
fn groups_from_claims(value: &serde_json::Value, claim: &str) -> Result<Vec<String>, OidcError> {
    Ok(match value.get(claim) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(g)) => vec![g.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(ToOwned::to_owned))
            .collect(),
        Some(other) => {
            return Err(OidcError::Claims(format!(
                "the `{claim}` claim is neither a list nor a string: {other}"
            )));
        }
    })
}

/// An error with its causes, for messages: the interesting part is usually at the bottom.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: serde_json::Value) -> String {
        format!("h.{}.s", URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    #[test]
    fn key_ids_are_read_from_the_header() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#);
        assert_eq!(key_id_of(&format!("{header}.p.s")).as_deref(), Some("k1"));
        let no_kid = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        assert_eq!(key_id_of(&format!("{no_kid}.p.s")), None);
        assert_eq!(key_id_of("garbage"), None);
    }

    #[test]
    fn groups_claim_shapes() {
        let g = |v| groups_from_payload(&jwt(v), "groups").unwrap();
        assert_eq!(g(serde_json::json!({"groups": ["a", "b", 3]})), ["a", "b"]);
        assert_eq!(g(serde_json::json!({"groups": "a"})), ["a"]);
        assert!(g(serde_json::json!({})).is_empty());
        assert!(
            groups_from_payload(&jwt(serde_json::json!({"groups": {"x": 1}})), "groups").is_err()
        );
        assert!(groups_from_payload("nonsense", "groups").is_err());
    }
}
