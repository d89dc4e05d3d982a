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
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
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
const GITHUB_WEB: &str = "https://github.com";
const GITHUB_API: &str = "https://api.github.com";

/// A configured sign-in provider.
pub struct Provider {
    pub name: String,
    pub label: String,
    kind: Kind,
    client_id: String,
    client_secret: secrecy::SecretString,
}

/// How a provider signs people in.
enum Kind {
    /// Any OpenID Connect issuer (discovered once, then cached).
    Oidc {
        issuer: String,
        metadata: Box<OnceCell<CoreProviderMetadata>>,
    },
    /// GitHub's OAuth apps: not OpenID, so the person comes from its REST API.
    /// `web` is github.com or a GitHub Enterprise Server; `api` its REST root.
    GitHub { web: String, api: String },
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
    /// Providers from settings: `github` (github.com, or a GitHub Enterprise Server given as
    /// its issuer) speaks OAuth 2.0 plus GitHub's API; every other provider OpenID Connect.
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
            let issuer = p
                .issuer
                .as_deref()
                .map(|i| i.trim_end_matches('/').to_owned());
            let kind = match (issuer, name.as_str()) {
                (None, "github") => Kind::GitHub {
                    web: GITHUB_WEB.into(),
                    api: GITHUB_API.into(),
                },
                (Some(web), "github") => Kind::GitHub {
                    api: format!("{web}/api/v3"),
                    web,
                },
                (Some(issuer), _) => Kind::Oidc {
                    issuer,
                    metadata: Box::default(),
                },
                (None, "gitlab") => Kind::Oidc {
                    issuer: GITLAB_ISSUER.into(),
                    metadata: Box::default(),
                },
                (None, _) => return Err(format!("oauth provider `{name}` needs an issuer URL")),
            };
            let label = p.label.clone().unwrap_or_else(|| match name.as_str() {
                "gitlab" => "GitLab".to_owned(),
                "github" => "GitHub".to_owned(),
                other => other.to_owned(),
            });
            providers.insert(
                name.clone(),
                Provider {
                    name: name.clone(),
                    label,
                    kind,
                    client_id: p.client_id.clone(),
                    client_secret: p.client_secret.clone(),
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

    /// An OpenID client for `issuer`, discovering its endpoints on first use.
    async fn client(
        &self,
        provider: &Provider,
        issuer: &str,
        metadata: &OnceCell<CoreProviderMetadata>,
        redirect: &str,
    ) -> Result<ConfiguredClient, FlowError> {
        let metadata = metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| FlowError::Provider(e.to_string()))?;
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
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = match &provider.kind {
            Kind::Oidc { issuer, metadata } => {
                let client = self.client(provider, issuer, metadata, redirect).await?;
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
                (url, state, nonce.secret().clone())
            }
            Kind::GitHub { web, .. } => {
                let (url, state) = github_client(provider, web, redirect)?
                    .authorize_url(CsrfToken::new_random)
                    .add_scope(Scope::new("read:user".into()))
                    .add_scope(Scope::new("user:email".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                (url, state, String::new())
            }
        };
        let flow = Flow {
            provider: provider.name.clone(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce,
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
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(provider = %provider.name, error = %e, "{what}");
            FlowError::Provider(format!(
                "{} did not confirm the sign-in ({what})",
                provider.label
            ))
        };
        let code = AuthorizationCode::new(code.to_owned());
        let verifier = PkceCodeVerifier::new(flow.verifier);
        let identity = match &provider.kind {
            Kind::Oidc { issuer, metadata } => {
                let client = self.client(provider, issuer, metadata, redirect).await?;
                let tokens = client
                    .exchange_code(code)
                    .map_err(|e| failed("no token endpoint", &e))?
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(|e| failed("code exchange failed", &e))?;
                let id_token = tokens
                    .id_token()
                    .ok_or_else(|| failed("no ID token", &"missing"))?;
                let claims = id_token
                    .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce))
                    .map_err(|e| failed("ID token rejected", &e))?;
                ExternalIdentity {
                    provider: provider.name.clone(),
                    subject: claims.subject().to_string(),
                    email: claims.email().map(|e| e.to_string()),
                    email_verified: claims.email_verified().unwrap_or(false),
                    name: claims
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.to_string()),
                }
            }
            Kind::GitHub { web, api } => {
                let tokens = github_client(provider, web, redirect)?
                    .exchange_code(code)
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(|e| failed("code exchange failed", &e))?;
                self.github_identity(provider, api, tokens.access_token().secret())
                    .await
                    .map_err(|e| failed("profile request failed", &e))?
            }
        };
        Ok((identity, flow.next))
    }

    /// Who the GitHub token belongs to: the numeric id as subject and the primary email, as
    /// verified as GitHub says it is.
    async fn github_identity(
        &self,
        provider: &Provider,
        api: &str,
        token: &str,
    ) -> Result<ExternalIdentity, String> {
        #[derive(Deserialize)]
        struct User {
            id: u64,
            login: String,
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct Email {
            email: String,
            primary: bool,
            verified: bool,
        }
        let user: User = self.github_get(api, "/user", token).await?;
        let emails: Vec<Email> = self.github_get(api, "/user/emails", token).await?;
        let primary = emails.into_iter().find(|e| e.primary);
        Ok(ExternalIdentity {
            provider: provider.name.clone(),
            subject: user.id.to_string(),
            email_verified: primary.as_ref().is_some_and(|e| e.verified),
            email: primary.map(|e| e.email),
            name: user.name.or(Some(user.login)),
        })
    }
}

impl OAuthProviders {
    /// GETs a GitHub REST resource as JSON.
    async fn github_get<T: serde::de::DeserializeOwned>(
        &self,
        api: &str,
        path: &str,
        token: &str,
    ) -> Result<T, String> {
        let res = self
            .http
            .get(format!("{api}{path}"))
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "sluice")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?;
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| format!("{path}: {e}"))
    }
}

/// An OAuth 2.0 client for GitHub's endpoints under `web`.
fn github_client(
    provider: &Provider,
    web: &str,
    redirect: &str,
) -> Result<GitHubClient, FlowError> {
    let bad = |e: openidconnect::url::ParseError| FlowError::Provider(e.to_string());
    Ok(
        oauth2::basic::BasicClient::new(oauth2::ClientId::new(provider.client_id.clone()))
            .set_client_secret(oauth2::ClientSecret::new(
                provider.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(oauth2::AuthType::RequestBody)
            .set_auth_uri(
                oauth2::AuthUrl::new(format!("{web}/login/oauth/authorize")).map_err(bad)?,
            )
            .set_token_uri(
                oauth2::TokenUrl::new(format!("{web}/login/oauth/access_token")).map_err(bad)?,
            )
            .set_redirect_uri(oauth2::RedirectUrl::new(redirect.to_owned()).map_err(bad)?),
    )
}

type GitHubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

type ConfiguredClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;
