//! Types that only describe requests and error responses in the OpenAPI document. The
//! handlers parse forms and bodies by hand (strictly: repeated or non-UTF-8 parameters are
//! refused) and answer through `error.rs`; these say what that accepts and sends. A leaf:
//! handlers and `openapi.rs` import from here, this imports from neither.

use crate::domain::user::UserType;
use crate::error::{InvalidTokenBody, OAuthError};
use serde::Deserialize;
use utoipa::{ToResponse, ToSchema};

/// `grant_type` selects the fields. Client credentials go in HTTP Basic or in
/// `client_id`/`client_secret`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// Starts a new session.
    #[schema(title = "password grant")]
    Password {
        #[schema(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
        )]
        username: String,
        /// At most 1024 bytes (256 characters of any script fit), no NUL.
        #[schema(min_length = 1, max_length = 256, pattern = r"^[^\x00]+$")]
        password: String,
        /// Must match the user's record when given (empty counts as absent); no `:`.
        #[serde(rename = "tenantId")]
        #[schema(
            nullable = false,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F:]*$"
        )]
        tenant_id: Option<String>,
        /// Must match the user's type (any letter case) when given.
        #[serde(rename = "userType")]
        #[schema(nullable = false)]
        user_type: Option<UserType>,
        /// Space-separated; at most the client's scopes, which are the default.
        #[schema(nullable = false)]
        scope: Option<String>,
        #[schema(nullable = false)]
        client_id: Option<String>,
        #[schema(nullable = false)]
        client_secret: Option<String>,
    },
    /// Rotates the session's pair.
    #[schema(title = "refresh_token grant")]
    RefreshToken {
        #[schema(min_length = 1, pattern = r"^[^\x00]+$")]
        refresh_token: String,
        /// At most the session's scope.
        #[schema(nullable = false)]
        scope: Option<String>,
        #[schema(nullable = false)]
        client_id: Option<String>,
        #[schema(nullable = false)]
        client_secret: Option<String>,
    },
}

/// A token to revoke or introspect; client credentials in HTTP Basic or in the form.
#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    /// Any text: a token that is not live (or not a token at all) is answered as one.
    #[schema(min_length = 1, pattern = r"^[^\x00]+$")]
    pub token: String,
    /// Not needed: a token names its own kind. `access_token` or `refresh_token`; empty counts
    /// as absent (RFC 6749 §3.1), anything else is `unsupported_token_type`.
    #[schema(nullable = false, pattern = r"^(access_token|refresh_token)?$")]
    pub token_type_hint: Option<String>,
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
}

/// The access token as a form field, when no query parameter or header carries it.
#[derive(Deserialize, ToSchema)]
pub struct AccessTokenForm {
    #[schema(nullable = false, pattern = r"^[^\x00]*$")]
    pub access_token: Option<String>,
}

/// The access token in a JSON body: `access_token`, else DIGIT's `RequestInfo.authToken`.
#[derive(Deserialize, ToSchema)]
pub struct AccessTokenJson {
    pub access_token: Option<String>,
    #[serde(rename = "RequestInfo")]
    pub request_info: Option<RequestInfo>,
}

/// DIGIT's request envelope; only `authToken` is read.
#[derive(Deserialize, ToSchema)]
pub struct RequestInfo {
    #[serde(rename = "authToken")]
    pub auth_token: Option<String>,
}

/// A request for a code, as DIGIT's citizen app sends it; other fields (`requestInfo`,
/// `RequestInfo`, `isInternal`, `countryCode`) are ignored.
#[derive(Deserialize, ToSchema)]
pub struct SendOtpRequest {
    pub otp: SendOtpFields,
}

/// What the code is for.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendOtpFields {
    /// 10 to 13 digits, as a string (DIGIT's rule without MDMS).
    #[schema(example = "9876543210", pattern = r"^[0-9]{10,13}$")]
    pub mobile_number: String,
    /// The state tenant the app sends; citizens are looked up at its first segment. No `:`.
    #[schema(
        example = "pb",
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F:]+$"
    )]
    pub tenant_id: String,
    /// `login` (any letter case) is served; `register` and `passwordreset` (also a missing
    /// type, which DIGIT takes as `register`) are refused with 400.
    #[serde(rename = "type")]
    #[schema(example = "login")]
    pub kind: Option<String>,
    /// Exactly `EMPLOYEE` looks up employees at the tenant as given; anything else citizens.
    #[schema(example = "citizen")]
    pub user_type: Option<String>,
}

// Error responses, one per status and header set; the bodies are the types `error.rs` sends.

/// A malformed request (`invalid_request`, naming the problem) or a refused grant
/// (`invalid_grant`, `unsupported_grant_type`, `unauthorized_client`, `invalid_scope`).
#[derive(ToResponse)]
#[response(headers(
    ("Cache-Control" = String, description = "no-store"),
    ("Pragma" = String, description = "no-cache"),
))]
pub struct BadRequest(pub OAuthError<'static>);

/// Client authentication failed (`invalid_client`).
#[derive(ToResponse)]
#[response(headers(
    ("WWW-Authenticate" = String, description = "`Basic realm=\"oauth2/client\"`"),
    ("Cache-Control" = String, description = "no-store"),
))]
pub struct InvalidClient(pub OAuthError<'static>);

/// The access token is missing, unknown, expired or ended (DIGIT's `Errors` shape).
#[derive(ToResponse)]
#[response(headers(
    ("WWW-Authenticate" = String, description = "`Bearer error=\"invalid_token\"`"),
    ("Cache-Control" = String, description = "no-store"),
))]
pub struct InvalidAccessToken(pub InvalidTokenBody);

/// The body is larger than 64 KiB (`invalid_request`).
#[derive(ToResponse)]
#[response(headers(("Cache-Control" = String, description = "no-store")))]
pub struct PayloadTooLarge(pub OAuthError<'static>);

/// Too many password attempts from this address (`too_many_requests`).
#[derive(ToResponse)]
#[response(headers(
    ("Retry-After" = u64, description = "seconds until the next attempt counts"),
    ("Cache-Control" = String, description = "no-store"),
))]
pub struct TooManyRequests(pub OAuthError<'static>);

/// The session store is unreachable, or too many logins wait for password hashing
/// (`temporarily_unavailable`). Never a 401: a gateway would log its user out.
#[derive(ToResponse)]
#[response(headers(
    ("Retry-After" = u64, description = "seconds"),
    ("Cache-Control" = String, description = "no-store"),
))]
pub struct Unavailable(pub OAuthError<'static>);
