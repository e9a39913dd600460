//! `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata, so OAuth libraries find
//! the endpoints and what they accept. URLs are absolute: under `PUBLIC_URL`, or else built
//! from the request's scheme and host, which `X-Forwarded-Proto` and `X-Forwarded-Host` name
//! only when the request comes from a trusted proxy.

use super::AppState;
use super::client_ip::from_trusted_proxy;
use super::extract::header_text;
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// Authorization server metadata (RFC 8414 §2).
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    /// The base URL of this server: `PUBLIC_URL`, or the request's scheme and host.
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

/// A host (and port) as the `Host` header may carry one: letters, digits, `.-:[]`.
fn host_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The base URL requests reach this server under.
fn issuer(req: &HttpRequest, state: &AppState) -> Result<String, ApiError> {
    if let Some(url) = &state.public_url {
        return Ok(url.clone());
    }
    let bad = |what: &str| ApiError::InvalidRequest(format!("{what} is not a host name"));
    let forwarded = from_trusted_proxy(req, &state.trusted_proxies);
    let first = |name: &str| -> Result<Option<String>, ApiError> {
        Ok(header_text(req, name)?
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase()))
    };
    let scheme = match forwarded
        .then(|| first("x-forwarded-proto"))
        .transpose()?
        .flatten()
    {
        Some(p) if p == "https" || p == "http" => p,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "X-Forwarded-Proto is not http or https".into(),
            ));
        }
        None => "http".into(),
    };
    let host = match forwarded
        .then(|| first("x-forwarded-host"))
        .transpose()?
        .flatten()
    {
        Some(h) => h,
        None => header_text(req, "host")?
            .ok_or_else(|| ApiError::InvalidRequest("the Host header is required".into()))?
            .to_ascii_lowercase(),
    };
    if !host_like(&host) {
        return Err(bad("Host"));
    }
    Ok(format!("{scheme}://{host}"))
}

/// This server's OAuth 2.0 metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses(
        (status = 200, description = "The metadata", body = Metadata),
        (status = 400, response = super::doc_types::BadRequest),
    ),
)]
pub async fn metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let issuer = issuer(&req, &state)?;
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
