//! Standard endpoints beside DIGIT's: `POST /oauth/revoke` (RFC 7009) and
//! `POST /oauth/introspect` (RFC 7662). Both take a form body and client authentication.

use super::AppState;
use super::extract::{self, Form};
use crate::clients::Client;
use crate::domain::token::{Token, TokenKind};
use crate::domain::user::Role;
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

async fn client_form<'a>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &'a AppState,
) -> Result<(Form, &'a Client), ApiError> {
    if !extract::is_form(req) {
        return Err(ApiError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let body = extract::read_body(req, payload).await?;
    let form = Form::parse(
        &body,
        &["token", "token_type_hint", "client_id", "client_secret"],
    )?;
    let client = state
        .clients
        .authenticate(
            extract::basic_credentials(req)?,
            form.get("client_id"),
            form.get("client_secret"),
            &state.secret_check(req),
        )
        .await?;
    Ok((form, client))
}

fn hinted(form: &Form) -> Result<Option<Token>, ApiError> {
    let token = form.require("token")?;
    match form.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "token_type_hint must be access_token or refresh_token".into(),
            ));
        }
    }
    // The token names its own kind, so the hint is not needed to find it.
    Ok(Token::parse(token))
}

/// Ends the session of either token of the calling client. 200 also for unknown, ended or
/// foreign tokens (RFC 7009 §2.2), so the answer reveals nothing.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(
        content = super::doc_types::TokenForm,
        content_type = "application/x-www-form-urlencoded",
    ),
    security(("clientBasic" = []), ()),
    responses(
        (status = 200, description = "The token's session has ended, or the token was not live",
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidClient),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (form, client) = client_form(&req, payload, &state).await?;
    if let Some(token) = hinted(&form)?
        && state.store.end_session(&token, Some(&client.id)).await?
    {
        crate::metrics::logout(crate::metrics::LogoutKind::Revoke, 1);
    }
    Ok(HttpResponse::Ok().finish())
}

/// Which of a session's tokens was introspected.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    AccessToken,
    RefreshToken,
}

/// RFC 7662 §2.2: only `active` when the token is not live.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionResponse {
    active: bool,
    /// RFC 6749's token type (RFC 7662 §2.2): `bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "bearer")]
    token_type: Option<&'static str>,
    /// Which token of the session this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_use: Option<TokenUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// The user's uuid.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// Expiry, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    /// Issue time, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(rename = "tenantId", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<Role>>,
}

/// The parts of the stored user record that introspection shows.
#[derive(Deserialize)]
struct Subject {
    #[serde(rename = "userName")]
    user_name: Option<String>,
    uuid: Option<String>,
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
    roles: Option<Vec<Role>>,
}

/// RFC 7662 introspection, for confidential clients only.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(
        content = super::doc_types::TokenForm,
        content_type = "application/x-www-form-urlencoded",
    ),
    security(("clientBasic" = []), ()),
    responses(
        (status = 200, description = "What the token stands for, or only `active: false`",
            body = IntrospectionResponse,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidClient),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (form, client) = client_form(&req, payload, &state).await?;
    if !client.is_confidential() {
        return Err(ApiError::InvalidClient);
    }
    let answer = match hinted(&form)? {
        None => None,
        Some(token) => state.store.introspect(&token).await?.map(|i| (token, i)),
    };
    let body = match answer {
        None => IntrospectionResponse {
            active: false,
            token_type: None,
            token_use: None,
            scope: None,
            client_id: None,
            username: None,
            sub: None,
            exp: None,
            iat: None,
            tenant_id: None,
            roles: None,
        },
        Some((token, i)) => {
            let user: Subject = serde_json::from_str(&i.user_json)
                .map_err(|e| ApiError::internal("stored user record is not JSON", e))?;
            let issued_ms = match token.kind() {
                TokenKind::Refresh if !state.store.policy().rotation => i.created_ms,
                _ => i.refreshed_ms,
            };
            IntrospectionResponse {
                active: true,
                token_type: Some("bearer"),
                token_use: Some(match token.kind() {
                    TokenKind::Access => TokenUse::AccessToken,
                    TokenKind::Refresh => TokenUse::RefreshToken,
                }),
                scope: Some(i.scope),
                client_id: Some(i.client_id),
                username: user.user_name,
                sub: user.uuid,
                exp: Some(i.expires_ms / 1000),
                iat: Some(issued_ms / 1000),
                tenant_id: user.tenant_id,
                roles: user.roles,
            }
        }
    };
    Ok(HttpResponse::Ok().json(body))
}
