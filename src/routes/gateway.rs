//! `/auth`: forward authentication for gateways (nginx `auth_request`, Traefik `forwardAuth`,
//! Envoy `ext_authz` in HTTP mode). The same validation as `/user/_details`; a live token gets
//! 200 with the user in `X-User-*` headers, anything else 401, a store outage 503.

use super::AppState;
use super::extract::{Form, header_text, header_token};
use crate::domain::token::{Token, TokenKind};
use crate::domain::user::PublicUser;
use crate::error::ApiError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What stays as it is in a user header: letters, digits and `-._~@`; every other byte is
/// percent-encoded (RFC 3986), so no value can end a header, forge another or split the role
/// list, whatever text a user record holds.
const HEADER_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// The headers the original request's URI arrives in: nginx (as configured in
/// `deploy/nginx-gateway.conf`) and Traefik.
const ORIGINAL_URI: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];

/// The token of a forward-auth request, from the first of: `Authorization: Bearer`, header
/// `auth-token`, query `access_token` of the original URI (`X-Original-URI`,
/// `X-Forwarded-Uri`), query `access_token` of this request (Envoy appends the original path
/// and query to its own). The body is never read.
fn presented(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    if let Some(t) = header_token(req)? {
        return Ok(Some(t));
    }
    let from_query = |query: &str| -> Result<Option<String>, ApiError> {
        Ok(Form::parse(query.as_bytes(), &["access_token"])?.take("access_token"))
    };
    for name in ORIGINAL_URI {
        if let Some(uri) = header_text(req, name)?
            && let Some((_, query)) = uri.split_once('?')
            && let Some(t) = from_query(query)?
        {
            return Ok(Some(t));
        }
    }
    from_query(req.query_string())
}

/// A user value as a header value.
fn header(value: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(value, HEADER_SAFE).to_string();
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Lets a request through for a live access token, with its user in `X-User-*` headers: `Id`
/// (uuid), `Name`, `Tenant-Id`, `Type` and `Roles` (role codes, comma-separated). Values are
/// percent-encoded outside letters, digits and `-._~@`. Any method; the body is ignored.
#[utoipa::path(
    method(get, head, post, put, delete, patch, options),
    path = "/auth",
    tag = "gateways",
    params(
        ("X-Original-URI" = Option<String>, Header,
            description = "The original request's URI (nginx); its `access_token` query parameter counts"),
        ("X-Forwarded-Uri" = Option<String>, Header,
            description = "The original request's URI (Traefik); its `access_token` query parameter counts"),
    ),
    security(("bearerToken" = []), ("authTokenHeader" = []), ("accessTokenQuery" = []), ()),
    responses(
        (status = 200, description = "A live access token; the user is in the headers",
            headers(
                ("X-User-Id" = String, description = "The user's uuid"),
                ("X-User-Name" = String, description = "userName"),
                ("X-Tenant-Id" = String, description = "tenantId"),
                ("X-User-Type" = String, description = "CITIZEN, EMPLOYEE, SYSTEM or BUSINESS"),
                ("X-User-Roles" = String, description = "Role codes, comma-separated"),
            )),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    forward_auth(&req, &state).await
}

/// `/auth` followed by the original request's path and query, as Envoy's `ext_authz` sends it
/// (`path_prefix: /auth`).
#[utoipa::path(
    method(get, head, post, put, delete, patch, options),
    path = "/auth/{path}",
    tag = "gateways",
    params(("path" = String, Path, description = "The original request's path")),
    security(("bearerToken" = []), ("authTokenHeader" = []), ("accessTokenQuery" = []), ()),
    responses(
        (status = 200, description = "A live access token; the user is in the `X-User-*` headers"),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn auth_path(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    forward_auth(&req, &state).await
}

async fn forward_auth(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let token = presented(req)?
        .and_then(|t| Token::parse(&t))
        .filter(|t| t.kind() == TokenKind::Access)
        .ok_or(ApiError::InvalidAccessToken)?;
    let json = state
        .store
        .validate_access(&token)
        .await?
        .ok_or(ApiError::InvalidAccessToken)?;
    let user: PublicUser = serde_json::from_slice(&json)
        .map_err(|e| ApiError::internal("stored user record is not a user", e))?;
    let roles: Vec<String> = user
        .roles
        .iter()
        .map(|r| utf8_percent_encode(&r.code, HEADER_SAFE).to_string())
        .collect();
    let user_type = serde_json::to_value(user.user_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut res = HttpResponse::Ok().finish();
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-user-id", header(&user.uuid)),
        ("x-user-name", header(&user.user_name)),
        ("x-tenant-id", header(&user.tenant_id)),
        ("x-user-type", header(&user_type)),
        (
            "x-user-roles",
            HeaderValue::from_str(&roles.join(","))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        ),
    ] {
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_values_cannot_break_out_of_their_header() {
        for hostile in ["a\r\nX-User-Id: admin", "x,y", "é", "a b", "100%"] {
            let value = header(hostile);
            let text = value.to_str().unwrap();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~@%".contains(&b)),
                "{hostile:?} -> {text}"
            );
            assert!(!text.contains(','), "{text}");
        }
        assert_eq!(
            header("clerk@pb.amritsar").to_str().unwrap(),
            "clerk@pb.amritsar"
        );
    }
}
