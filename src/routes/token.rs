//! `POST /user/oauth/token`: the password and refresh_token grants (RFC 6749 §4.3, §6) with
//! DIGIT's response shape.

use super::AppState;
use super::client_ip::client_ip;
use super::extract::{self, Form};
use crate::clients::GrantType;
use crate::domain::credentials::{Password, Scope, TenantId, Username};
use crate::domain::session::{Issued, Refresh};
use crate::domain::token::{TOKEN_LEN, Token, TokenKind};
use crate::domain::user::UserType;
use crate::error::{ApiError, INVALID_REFRESH_TOKEN};
use crate::login::{Attempt, LoginError, Named};
use crate::metrics::{LoginOutcome, RefreshOutcome};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// What the token endpoint reads from its form; anything else is ignored.
const PARAMETERS: [&str; 9] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "username",
    "password",
    "tenantId",
    "userType",
    "refresh_token",
];

/// Parameters refused in the URL: they would end up in proxies' access logs.
const CREDENTIALS: [&str; 3] = ["password", "refresh_token", "client_secret"];

/// Longest user agent kept with a session, in bytes: Redis keeps hashes whose values are at
/// most 64 bytes in its compact encoding.
const MAX_USER_AGENT: usize = 64;

/// The user agent cut to fit: its start (product, platform) and its end (browser, version).
fn compact_user_agent(ua: &str) -> String {
    if ua.len() <= MAX_USER_AGENT {
        return ua.to_string();
    }
    let head_len = (0..=31)
        .rev()
        .find(|&i| ua.is_char_boundary(i))
        .unwrap_or(0);
    let tail_start = (ua.len() - 30..ua.len())
        .find(|&i| ua.is_char_boundary(i))
        .unwrap_or(ua.len());
    format!("{}...{}", &ua[..head_len], &ua[tail_start..])
}

/// DIGIT's response envelope; only `status` carries information.
#[derive(Serialize, ToSchema)]
pub struct ResponseInfo {
    api_id: &'static str,
    ver: &'static str,
    ts: &'static str,
    res_msg_id: &'static str,
    msg_id: &'static str,
    #[schema(example = "Access Token generated successfully")]
    status: &'static str,
}

/// A new token pair (RFC 6749 §5.1) in DIGIT's shape.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse<'a> {
    access_token: String,
    #[schema(example = "bearer")]
    token_type: &'static str,
    refresh_token: String,
    /// Whole seconds the access token has left.
    expires_in: u64,
    /// Whole seconds the refresh token has left.
    refresh_expires_in: u64,
    /// Space-separated scopes of the session.
    #[schema(example = "read")]
    scope: &'a str,
    #[serde(rename = "ResponseInfo")]
    response_info: ResponseInfo,
    #[serde(rename = "UserRequest")]
    #[schema(value_type = crate::domain::user::PublicUser)]
    user: &'a RawValue,
}

fn respond(issued: Issued, scope: &str, user_json: String) -> Result<HttpResponse, ApiError> {
    let user = RawValue::from_string(user_json)
        .map_err(|e| ApiError::internal("stored user record is not JSON", e))?;
    // Sized for the whole body up front: growing it costs more than writing it.
    let mut body = Vec::with_capacity(user.get().len() + 2 * TOKEN_LEN + 320);
    serde_json::to_writer(
        &mut body,
        &TokenResponse {
            access_token: issued.pair.access.expose(),
            token_type: "bearer",
            refresh_token: issued.pair.refresh.expose(),
            expires_in: issued.access_expires_in,
            refresh_expires_in: issued.refresh_expires_in,
            scope,
            response_info: ResponseInfo {
                api_id: "",
                ver: "",
                ts: "",
                res_msg_id: "",
                msg_id: "",
                status: "Access Token generated successfully",
            },
            user: &user,
        },
    )
    .map_err(|e| ApiError::internal("cannot serialise the token response", e))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, super::JSON))
        .body(body))
}

/// RFC 6749 token endpoint: the password grant starts a new session, the refresh_token grant
/// rotates a session's pair.
#[utoipa::path(
    post,
    path = "/user/oauth/token",
    tag = "tokens",
    request_body(
        content = super::doc_types::TokenRequest,
        content_type = "application/x-www-form-urlencoded",
    ),
    security(("clientBasic" = []), ()),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse,
            headers(
                ("Cache-Control" = String, description = "no-store"),
                ("Pragma" = String, description = "no-cache"),
            )),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidClient),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 429, response = super::doc_types::TooManyRequests),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Form::parse(req.query_string().as_bytes(), &CREDENTIALS)?;
    if CREDENTIALS.iter().any(|p| query.contains(p)) {
        return Err(ApiError::InvalidRequest(
            "credentials belong in the application/x-www-form-urlencoded body, not the URL".into(),
        ));
    }
    if !extract::is_form(&req) {
        return Err(ApiError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let body = extract::read_body(&req, payload).await?;
    let form = Form::parse(&body, &PARAMETERS)?;
    let client = state
        .clients
        .authenticate(
            extract::basic_credentials(&req)?,
            form.get("client_id"),
            form.get("client_secret"),
            &state.secret_check(&req),
        )
        .await?;
    let requested = form.get("scope").map(Scope::parse).transpose()?;
    if requested
        .as_ref()
        .is_some_and(|s| !s.is_within(&client.scope))
    {
        return Err(ApiError::InvalidScope);
    }
    let grant = match form.require("grant_type")? {
        "password" => GrantType::Password,
        "refresh_token" => GrantType::RefreshToken,
        _ => return Err(ApiError::UnsupportedGrantType),
    };
    if !client.grant_types.contains(&grant) {
        return Err(ApiError::UnauthorizedClient);
    }
    match grant {
        GrantType::Password => {
            let scope = requested.unwrap_or_else(|| client.scope.clone());
            let result = password_grant(&req, &form, &state, &client.id, scope).await;
            if let Err(ApiError::InvalidRequest(_)) = &result {
                crate::metrics::login(LoginOutcome::InvalidRequest);
            }
            result
        }
        GrantType::RefreshToken => {
            refresh_grant(&form, &state, &client.id, requested.as_ref()).await
        }
    }
}

async fn password_grant(
    req: &HttpRequest,
    form: &Form,
    state: &AppState,
    client_id: &str,
    scope: Scope,
) -> Result<HttpResponse, ApiError> {
    let attempt = Attempt {
        named: Named {
            user_name: Username::parse(form.require("username")?)?,
            tenant: form.get("tenantId").map(TenantId::parse).transpose()?,
            user_type: form
                .get("userType")
                .map(|t| {
                    UserType::parse(t).ok_or_else(|| {
                        ApiError::InvalidRequest(
                            "userType must be one of CITIZEN, EMPLOYEE, SYSTEM, BUSINESS".into(),
                        )
                    })
                })
                .transpose()?,
        },
        password: Password::parse(form.require("password")?)?,
        client_id: client_id.to_string(),
        scope,
        ip: client_ip(req, &state.trusted_proxies),
        user_agent: compact_user_agent(
            req.headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
    };
    let result = state.login.run(attempt).await;
    crate::metrics::login(
        result
            .as_ref()
            .map_or_else(LoginError::outcome, |_| LoginOutcome::Ok),
    );
    let done = result?;
    respond(done.issued, &done.scope, done.user_json)
}

async fn refresh_grant(
    form: &Form,
    state: &AppState,
    client_id: &str,
    requested: Option<&Scope>,
) -> Result<HttpResponse, ApiError> {
    let presented = Token::parse(form.require("refresh_token")?)
        .filter(|t| t.kind() == TokenKind::Refresh)
        .ok_or_else(|| {
            crate::metrics::refresh(RefreshOutcome::Invalid);
            ApiError::InvalidGrant(INVALID_REFRESH_TOKEN)
        })?;
    let scope = requested.map(Scope::to_param);
    match state
        .store
        .rotate_refresh(&presented, scope.as_deref(), client_id)
        .await
        .inspect_err(|_| crate::metrics::refresh(RefreshOutcome::StoreError))?
    {
        Refresh::Rotated {
            issued,
            user_json,
            scope,
            retried,
            ..
        } => {
            crate::metrics::refresh(if retried {
                RefreshOutcome::Retried
            } else {
                RefreshOutcome::Rotated
            });
            respond(*issued, &scope, user_json)
        }
        Refresh::InvalidToken => {
            crate::metrics::refresh(RefreshOutcome::Invalid);
            Err(ApiError::InvalidGrant(INVALID_REFRESH_TOKEN))
        }
        Refresh::ReuseDetected { user_uuid } => {
            crate::metrics::refresh(RefreshOutcome::ReuseDetected);
            log::warn!(
                target: "audit",
                "refresh token reuse: session {} of user {user_uuid:?} ended",
                presented.session().id.uuid()
            );
            Err(ApiError::InvalidGrant(INVALID_REFRESH_TOKEN))
        }
        Refresh::ScopeTooWide => {
            crate::metrics::refresh(RefreshOutcome::ScopeTooWide);
            Err(ApiError::InvalidScope)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_user_agents_keep_their_start_and_end_within_64_bytes() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let short = compact_user_agent(chrome);
        assert!(short.len() <= MAX_USER_AGENT, "{short}");
        assert!(
            short.starts_with("Mozilla/5.0 (Windows NT 10.0;"),
            "{short}"
        );
        assert!(short.ends_with("Chrome/120.0.0.0 Safari/537.36"), "{short}");
        assert_eq!(compact_user_agent("curl/8.0"), "curl/8.0");
        let wide = "é".repeat(50);
        assert!(compact_user_agent(&wide).len() <= MAX_USER_AGENT);
    }
}
