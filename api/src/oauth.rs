//! Sign-in through OAuth 2.0 / OpenID Connect providers: discovery (cached), the
//! authorization-code flow with PKCE, state and nonce, and ID-token verification.
//!
//! The flow's secrets (state, PKCE verifier, nonce, where to return) travel in a short-lived
//! cookie encrypted with the server key, so any API replica can finish a flow another began.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sluice_core::config::OAuthProviderSettings;
use sluice_core::crypto::{Keyring, constant_time_eq};
use sluice_core::store::users::ExternalIdentity;
use tokio::sync::OnceCell;

/// Name of the cookie carrying an OAuth flow between start and callback.
pub const FLOW_COOKIE: &str = "sluice_oauth";
/// How long a sign-in at the provider may take.
pub const FLOW_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
const GITLAB_ISSUER: &str = "https://gitlab.com";

/// A configured OpenID provider.
pub struct Provider {
    pub name: String,
    pub label: String,
    issuer: String,
    client_id: String,
    client_secret: secrecy::SecretString,
    metadata: OnceCell<CoreProviderMetadata>,
}

/// Why a sign-in with a provider failed, in words for the person signing in.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("this sign-in link expired or was already used; start again")]
    Expired,
    #[error("{0}")]
    Provider(String),
}

/// Every configured provider, with one HTTP client that never follows redirects.
pub struct OAuthProviders {
    providers: BTreeMap<String, Provider>,
    http: openidconnect::reqwest::Client,
}

/// What travels in the flow cookie.
#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    state: String,
    verifier: String,
    nonce: String,
    next: String,
    expires: i64,
}

impl OAuthProviders {
    /// Providers from settings; `github` is not an OpenID issuer and is refused here.
    pub fn new(
        settings: &BTreeMap<String, OAuthProviderSettings>,
    ) -> Result<OAuthProviders, String> {
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut providers = BTreeMap::new();
        for (name, p) in settings {
            let issuer = match (&p.issuer, name.as_str()) {
                (Some(issuer), _) => issuer.trim_end_matches('/').to_owned(),
                (None, "gitlab") => GITLAB_ISSUER.to_owned(),
                (None, _) => return Err(format!("oauth provider `{name}` needs an issuer URL")),
            };
            let label = p.label.clone().unwrap_or_else(|| match name.as_str() {
                "gitlab" => "GitLab".to_owned(),
                other => other.to_owned(),
            });
            providers.insert(
                name.clone(),
                Provider {
                    name: name.clone(),
                    label,
                    issuer,
                    client_id: p.client_id.clone(),
                    client_secret: p.client_secret.clone(),
                    metadata: OnceCell::new(),
                },
            );
        }
        Ok(OAuthProviders { providers, http })
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    async fn client(
        &self,
        provider: &Provider,
        redirect: &str,
    ) -> Result<ConfiguredClient, FlowError> {
        let metadata = provider
            .metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(provider.issuer.clone()).map_err(|e| FlowError::Provider(e.to_string()))?;
                CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
                    tracing::warn!(provider = %provider.name, error = %e, "OpenID discovery failed");
                    FlowError::Provider(format!("{} cannot be reached right now; try again later", provider.label))
                })
            })
            .await?;
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| FlowError::Provider(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(
                provider.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL and the sealed flow cookie value.
    pub async fn start(
        &self,
        keys: &Keyring,
        provider: &Provider,
        redirect: &str,
        next: &str,
    ) -> Result<(String, String), FlowError> {
        let client = self.client(provider, redirect).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            provider: provider.name.clone(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            next: next.to_owned(),
            expires: (Utc::now() + FLOW_LIFETIME).timestamp(),
        };
        let json = serde_json::to_vec(&flow).map_err(|e| FlowError::Provider(e.to_string()))?;
        let sealed = keys
            .encrypt(&json, "oauth-flow")
            .map_err(|e| FlowError::Provider(e.to_string()))?;
        Ok((url.to_string(), URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// Checks the callback against the flow cookie, redeems the code and verifies the ID
    /// token. Returns who signed in and where to go next.
    pub async fn finish(
        &self,
        keys: &Keyring,
        provider: &Provider,
        redirect: &str,
        cookie: Option<&str>,
        code: &str,
        state: &str,
    ) -> Result<(ExternalIdentity, String), FlowError> {
        let flow = cookie
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .and_then(|sealed| keys.decrypt(&sealed, "oauth-flow").ok())
            .and_then(|json| serde_json::from_slice::<Flow>(&json).ok())
            .filter(|f| f.provider == provider.name && f.expires > Utc::now().timestamp())
            .filter(|f| constant_time_eq(&f.state, state))
            .ok_or(FlowError::Expired)?;
        let client = self.client(provider, redirect).await?;
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(provider = %provider.name, error = %e, "{what}");
            FlowError::Provider(format!(
                "{} did not confirm the sign-in ({what})",
                provider.label
            ))
        };
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| failed("no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| failed("code exchange failed", &e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| failed("no ID token", &"missing"))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce))
            .map_err(|e| failed("ID token rejected", &e))?;
        let identity = ExternalIdentity {
            provider: provider.name.clone(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        };
        Ok((identity, flow.next))
    }
}

type ConfiguredClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;
