//! `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata, so OAuth libraries find
//! the endpoints and what they accept. URLs are absolute, under `PUBLIC_URL`; on the embedded
//! store (a single dev instance) without it, under `http://localhost:<port>`. With Redis and
//! no `PUBLIC_URL` there is no metadata (404): nothing the client sends names the URLs.

use super::AppState;
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// Authorization server metadata (RFC 8414 §2).
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    /// The base URL of this server: `PUBLIC_URL` (see the module's rule).
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    grant_types_supported: [&'static str; 2],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    /// Introspection is for confidential clients only.
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    scopes_supported: Vec<String>,
    /// Required by RFC 8414 §2; there is no authorization endpoint, so `none`.
    response_types_supported: [&'static str; 1],
    service_documentation: String,
}

/// The base URL the metadata names: never one the client chose (no `Host`, no forwarded
/// header), since OAuth libraries send credentials to the URLs it names.
fn issuer(state: &AppState) -> Result<&str, ApiError> {
    state.public_url.as_deref().ok_or(ApiError::NotConfigured(
        "PUBLIC_URL is not set: this server publishes no RFC 8414 metadata",
    ))
}

/// This server's OAuth 2.0 metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses(
        (status = 200, description = "The metadata", body = Metadata),
        (status = 404, description = "`PUBLIC_URL` is not set and Redis serves: no metadata",
            body = crate::error::OAuthError,
            headers(("Cache-Control" = String, description = "no-store"))),
    ),
)]
pub async fn metadata(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let issuer = issuer(&state)?.to_string();
    let url = |path: &str| format!("{issuer}{path}");
    let all_methods = ["client_secret_basic", "client_secret_post", "none"];
    Ok(HttpResponse::Ok().json(Metadata {
        token_endpoint: url("/user/oauth/token"),
        revocation_endpoint: url("/oauth/revoke"),
        introspection_endpoint: url("/oauth/introspect"),
        service_documentation: url("/docs/"),
        grant_types_supported: ["password", "refresh_token"],
        token_endpoint_auth_methods_supported: all_methods,
        revocation_endpoint_auth_methods_supported: all_methods,
        introspection_endpoint_auth_methods_supported: [
            "client_secret_basic",
            "client_secret_post",
        ],
        scopes_supported: state.clients.scopes(),
        response_types_supported: ["none"],
        issuer,
    }))
}
