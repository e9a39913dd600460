//! The one place where an error becomes an HTTP status and body. OAuth errors use RFC 6749 §5.2
//! `{"error", "error_description"}`; an invalid access token on `/user/_details` uses DIGIT's
//! `Errors` shape. Server-side failures are logged with their cause chain; clients get a fixed
//! message.

mod otp;

pub use otp::{OtpErrorBody, OtpErrorDetail, OtpField, OtpRefusal};

use crate::store::StoreError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::borrow::Cow;
use utoipa::ToSchema;

/// Every way a request can fail; `ResponseError` maps each to its status, headers and body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("invalid scope")]
    InvalidScope,
    #[error("client authentication failed")]
    InvalidClient,
    #[error("grant type not allowed for this client")]
    UnauthorizedClient,
    #[error("invalid access token")]
    InvalidAccessToken,
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within the deadline; the connection is closed after the answer.
    #[error("request body not received within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("not found")]
    NotFound,
    /// A feature its setting leaves off, e.g. RFC 8414 metadata without `PUBLIC_URL`.
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    #[error("no such session")]
    NoSuchSession,
    /// `allow` lists the resource's methods for the `Allow` header (RFC 9110 §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("too many login attempts from one address")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("password verification is saturated")]
    Busy,
    /// Nothing was done; the same request, sent again, is answered anew.
    #[error("retry: {0}")]
    Retry(&'static str),
    #[error("session store unavailable")]
    StoreUnavailable(#[from] StoreError),
    /// A one-time code request refused, answered in DIGIT's user-otp error envelope.
    #[error("one-time code request refused: {}", .0.message)]
    OtpRefused(OtpRefusal),
    /// A fault of the server's own; `source` goes to the log with its whole chain, clients
    /// get a fixed message.
    #[error("internal error: {context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Option<BoxError>,
    },
}

impl From<crate::password::VerifyError> for ApiError {
    fn from(e: crate::password::VerifyError) -> Self {
        match e {
            crate::password::VerifyError::Busy => ApiError::Busy,
            crate::password::VerifyError::Stopped => ApiError::internal("password check", e),
        }
    }
}

impl From<crate::domain::credentials::Rejected> for ApiError {
    fn from(r: crate::domain::credentials::Rejected) -> Self {
        ApiError::InvalidRequest(r.0)
    }
}

impl From<crate::clients::ClientAuthError> for ApiError {
    fn from(e: crate::clients::ClientAuthError) -> Self {
        use crate::clients::ClientAuthError as C;
        match e {
            C::Invalid => ApiError::InvalidClient,
            C::TwoWays => ApiError::InvalidRequest(
                "client credentials must be sent in one way only: Authorization header or client_secret".into(),
            ),
            C::Mismatch => ApiError::InvalidRequest(
                "client_id does not match the Authorization header".into(),
            ),
            C::Throttled { retry_after } => ApiError::TooManyAttempts {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            C::Busy => {
                ApiError::Retry("too many authentications of this client at once; retry shortly")
            }
            C::Store(e) => ApiError::StoreUnavailable(e),
            C::Check(e) => e.into(),
            C::Bug(context) => ApiError::bug(context),
        }
    }
}

impl From<crate::login::LoginError> for ApiError {
    fn from(e: crate::login::LoginError) -> Self {
        use crate::login::LoginError as L;
        match e {
            L::BadCredentials => ApiError::InvalidGrant(INVALID_CREDENTIALS),
            L::Inactive => ApiError::InvalidGrant(INACTIVE_ACCOUNT),
            L::Locked => ApiError::InvalidGrant(ACCOUNT_LOCKED),
            L::Throttled { retry_after } => ApiError::TooManyAttempts {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            L::Busy => ApiError::Busy,
            L::AccountBusy => {
                ApiError::Retry("too many logins of this account at once; retry shortly")
            }
            L::UserChanged => ApiError::Retry("the account changed during the login; retry"),
            L::CodeServiceDown => {
                ApiError::Retry("the one-time code service is unavailable; retry shortly")
            }
            L::Store(e) => ApiError::StoreUnavailable(e),
            L::Internal { context, source } => ApiError::Internal {
                context,
                source: Some(source),
            },
        }
    }
}

/// Any error, as a cause kept for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ApiError {
    /// An internal error caused by `source`.
    pub fn internal(context: &'static str, source: impl Into<BoxError>) -> Self {
        ApiError::Internal {
            context,
            source: Some(source.into()),
        }
    }

    /// An internal error with no cause beyond itself: a state the code should never reach.
    pub fn bug(context: &'static str) -> Self {
        ApiError::Internal {
            context,
            source: None,
        }
    }
}

/// The `error_description` of a failed login, whether the user is unknown or the password wrong.
pub const INVALID_CREDENTIALS: &str = "Invalid login credentials";
/// The `error_description` of a login to a disabled account with the right password.
pub const INACTIVE_ACCOUNT: &str = "Please activate your account";
/// The `error_description` of a refresh token that is not live or not the client's.
pub const INVALID_REFRESH_TOKEN: &str = "Invalid refresh token";
/// The `error_description` of a login to a locked account.
pub const ACCOUNT_LOCKED: &str = "Account locked";

/// The `error` code of an RFC 6749 §5.2 error body.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    UnauthorizedClient,
    InvalidScope,
    InvalidClient,
    NotFound,
    TooManyRequests,
    TemporarilyUnavailable,
    ServerError,
}

/// An RFC 6749 §5.2 error, the body of every error but an invalid access token.
#[derive(Serialize, ToSchema)]
pub struct OAuthError<'a> {
    pub error: ErrorCode,
    /// Human-readable; DIGIT clients show it to people.
    pub error_description: &'a str,
}

/// DIGIT's answer to an invalid, expired or ended access token.
#[derive(Serialize, ToSchema)]
pub struct InvalidTokenBody {
    /// Always null.
    #[serde(rename = "ResponseInfo")]
    #[schema(value_type = Option<Object>)]
    pub response_info: Option<serde_json::Value>,
    #[serde(rename = "Errors")]
    pub errors: [InvalidTokenDetail; 1],
}

/// The one entry of `Errors` in the answer to an invalid access token.
#[derive(Serialize, ToSchema)]
pub struct InvalidTokenDetail {
    #[schema(example = "InvalidAccessTokenException")]
    pub code: &'static str,
    #[schema(example = "Invalid access token")]
    pub message: &'static str,
    #[schema(example = "Invalid Access Token Exception")]
    pub description: &'static str,
    /// Always null.
    #[schema(value_type = Option<Vec<String>>)]
    pub params: Option<Vec<String>>,
}

/// An error and all its sources, for logs.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::InvalidGrant(_)
            | ApiError::UnsupportedGrantType
            | ApiError::UnauthorizedClient
            | ApiError::InvalidScope => StatusCode::BAD_REQUEST,
            ApiError::InvalidClient | ApiError::InvalidAccessToken => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound | ApiError::NoSuchSession | ApiError::NotConfigured(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::StoreUnavailable(_) | ApiError::Busy | ApiError::Retry(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::OtpRefused(r) => r.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ApiError::OtpRefused(refusal) = self {
            return refusal.response();
        }
        if let ApiError::InvalidAccessToken = self {
            return HttpResponse::build(status)
                .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
                .json(InvalidTokenBody {
                    response_info: None,
                    errors: [InvalidTokenDetail {
                        code: "InvalidAccessTokenException",
                        message: "Invalid access token",
                        description: "Invalid Access Token Exception",
                        params: None,
                    }],
                });
        }
        match self {
            ApiError::StoreUnavailable(e) => {
                log::error!("session store unavailable: {}", cause_chain(e));
            }
            ApiError::Internal { .. } => log::error!("{}", cause_chain(self)),
            _ => {}
        }
        let (error, description) = self.described();
        let mut res = HttpResponse::build(status).json(OAuthError {
            error,
            error_description: &description,
        });
        let headers = res.headers_mut();
        match self {
            ApiError::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"oauth2/client\""),
                );
            }
            ApiError::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            ApiError::TooManyAttempts { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // The rest of the body may still be on its way: the connection cannot be reused.
            ApiError::BodyTimeout(_) => res.head_mut().set_connection_type(ConnectionType::Close),
            ApiError::Busy | ApiError::Retry(_) | ApiError::StoreUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}

impl ApiError {
    /// The RFC 6749 §5.2 `error` and `error_description` of every error but an invalid access
    /// token; internal errors are described by a fixed text, never by their cause.
    fn described(&self) -> (ErrorCode, Cow<'_, str>) {
        use ErrorCode as E;
        let (code, text): (ErrorCode, Cow<'_, str>) = match self {
            ApiError::InvalidRequest(d) => (E::InvalidRequest, d.as_str().into()),
            ApiError::InvalidGrant(d) => (E::InvalidGrant, (*d).into()),
            ApiError::UnsupportedGrantType => (
                E::UnsupportedGrantType,
                "grant_type must be password or refresh_token".into(),
            ),
            ApiError::UnauthorizedClient => (
                E::UnauthorizedClient,
                "this client may not use this grant type".into(),
            ),
            ApiError::InvalidScope => (
                E::InvalidScope,
                "the requested scope exceeds what was granted".into(),
            ),
            ApiError::InvalidClient => (E::InvalidClient, "Client authentication failed".into()),
            ApiError::PayloadTooLarge(limit) => (
                E::InvalidRequest,
                format!("request body is larger than {limit} bytes").into(),
            ),
            ApiError::BodyTimeout(limit) => (
                E::InvalidRequest,
                format!(
                    "the request body took too long to arrive: it must arrive within {} ms",
                    limit.as_millis()
                )
                .into(),
            ),
            ApiError::NotFound => (E::NotFound, "no such endpoint".into()),
            ApiError::NoSuchSession => (E::NotFound, "no such session".into()),
            ApiError::NotConfigured(what) => (E::NotFound, (*what).into()),
            ApiError::MethodNotAllowed { .. } => (
                E::InvalidRequest,
                "this method is not allowed on this endpoint".into(),
            ),
            ApiError::TooManyAttempts { retry_after_secs } => (
                E::TooManyRequests,
                format!("too many login attempts from this address; retry in {retry_after_secs} s")
                    .into(),
            ),
            ApiError::Busy => (
                E::TemporarilyUnavailable,
                "too many logins at once; retry shortly".into(),
            ),
            ApiError::Retry(d) => (E::TemporarilyUnavailable, (*d).into()),
            ApiError::StoreUnavailable(_) => (
                E::TemporarilyUnavailable,
                "the session store is unavailable; retry shortly".into(),
            ),
            ApiError::Internal { .. } | ApiError::InvalidAccessToken => {
                (E::ServerError, "internal server error".into())
            }
            ApiError::OtpRefused(r) => (E::InvalidRequest, r.message.into()),
        };
        (code, text)
    }
}
