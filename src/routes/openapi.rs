//! The OpenAPI 3.1 description of the API, generated from the handlers' annotations and the
//! types they answer with, served at `/openapi.json`; and Swagger UI at `/docs`, its assets
//! compiled into the binary so the page works offline.

use crate::domain::user::UserType;
use crate::error::{ApiError, InvalidTokenBody, OAuthError};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr, Type};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "token-server",
        description = "Session and token server: egov-user's session API and OAuth 2.0 \
            (RFC 6749 token endpoint, RFC 7009 revocation, RFC 7662 introspection).",
    ),
    paths(
        super::token::token,
        super::session::logout,
        super::session::details_get,
        super::session::details_post,
        super::sessions::list,
        super::sessions::end_one,
        super::sessions::end_all,
        super::oauth::revoke,
        super::oauth::introspect,
        super::health::health,
        super::health::ready,
        super::health::metrics,
        document,
        docs_page,
        docs_file,
    ),
    components(
        schemas(OAuthError, InvalidTokenBody),
        responses(
            BadRequest,
            InvalidClient,
            InvalidAccessToken,
            PayloadTooLarge,
            TooManyRequests,
            Unavailable
        ),
    ),
    modifiers(&SecuritySchemes, &RequestIdHeader, &OptionalBodies),
    tags(
        (name = "tokens", description = "Logging in and refreshing (RFC 6749)"),
        (name = "sessions", description = "What clients and gateways do with an access token"),
        (name = "oauth", description = "Revocation (RFC 7009) and introspection (RFC 7662)"),
        (name = "operations", description = "Liveness, readiness and metrics"),
        (name = "documentation", description = "This document and its interactive page"),
    ),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Client authentication, `client_id:client_secret` (RFC 6749 §2.3.1); the \
                     public client `egov-user-client` has an empty secret. The form fields \
                     `client_id`/`client_secret` are the alternative.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearerToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The access token as `Authorization: Bearer`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "accessTokenQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "The access token as query parameter, DIGIT's documented form; checked first.",
            ))),
        );
        components.add_security_scheme(
            "authTokenHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "auth-token",
                "The access token in DIGIT's `auth-token` header.",
            ))),
        );
    }
}

fn operations_mut(openapi: &mut Document) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// Every response carries `X-Request-Id` (see `request_id.rs`); added here so no operation
/// can leave it out.
struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut Document) {
        let header = || {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("The client's request id when sane, else a new uuid"))
                .build()
        };
        let operations: Vec<_> = operations_mut(openapi).collect();
        let responses = operations
            .into_iter()
            .flat_map(|op| op.responses.responses.values_mut());
        for response in responses {
            if let RefOr::T(response) = response {
                response.headers.insert("X-Request-Id".into(), header());
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for response in components.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert("X-Request-Id".into(), header());
                }
            }
        }
    }
}

/// An optional body (`Option<T>` content) is absent when not sent, never `null`: unwrap the
/// `oneOf [null, T]` that utoipa makes of it.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut Document) {
        let is_null = |s: &&RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        for operation in operations_mut(openapi) {
            let Some(body) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                let unwrapped = match &content.schema {
                    Some(RefOr::T(Schema::OneOf(one_of))) => {
                        let mut rest = one_of.items.iter().filter(|s| !is_null(s));
                        match (rest.next(), rest.next()) {
                            (Some(only), None) => Some(only.clone()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if unwrapped.is_some() {
                    content.schema = unwrapped;
                }
            }
        }
    }
}

// Request bodies. The handlers parse forms by hand (strictly: repeated or non-UTF-8
// parameters are refused), so these types only describe what they accept.

/// `grant_type` selects the fields. Client credentials go in HTTP Basic or in
/// `client_id`/`client_secret`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// Starts a new session.
    #[schema(title = "password grant")]
    Password {
        username: String,
        password: String,
        /// Must match the user's record when given.
        #[serde(rename = "tenantId")]
        #[schema(nullable = false)]
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
    pub token: String,
    /// Not needed: a token names its own kind.
    #[schema(nullable = false)]
    pub token_type_hint: Option<TokenTypeHint>,
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

/// The access token as a form field, when no query parameter or header carries it.
#[derive(Deserialize, ToSchema)]
pub struct AccessTokenForm {
    #[schema(nullable = false)]
    pub access_token: Option<String>,
}

/// The access token in a JSON body: `access_token`, else DIGIT's `RequestInfo.authToken`.
#[derive(Deserialize, ToSchema)]
pub struct AccessTokenJson {
    pub access_token: Option<String>,
    #[serde(rename = "RequestInfo")]
    pub request_info: Option<RequestInfo>,
}

#[derive(Deserialize, ToSchema)]
pub struct RequestInfo {
    #[serde(rename = "authToken")]
    pub auth_token: Option<String>,
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

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn document() -> Result<HttpResponse, ApiError> {
    let json = DOCUMENT
        .as_ref()
        .map_err(|e| ApiError::Internal(format!("cannot serialise the OpenAPI document: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json.as_str()))
}

/// Redirects to the interactive page.
// The page lives at `/docs/`, where its relative asset links resolve.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    responses((status = 308, description = "To `/docs/`, Swagger UI",
        headers(("Location" = String, description = "/docs/")))),
)]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    // No validator badge: it would call an outside service.
    Arc::new(utoipa_swagger_ui::Config::from("/openapi.json").validator_url("none"))
});

/// Swagger UI's files; `/docs/` itself is its page.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "documentation",
    params(("file" = String, Path, description = "An asset name", example = "index.html")),
    responses(
        (status = 200, description = "The asset", content(
            ("text/html"), ("text/css"), ("text/javascript"), ("text/plain"), ("image/png"),
        )),
        (status = 404, description = "No such asset (`not_found`)", body = OAuthError),
    ),
)]
pub async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let found = utoipa_swagger_ui::serve(&file, SWAGGER_CONFIG.clone())
        .map_err(|e| ApiError::Internal(format!("cannot render Swagger UI's {file}: {e}")))?
        .ok_or(ApiError::NotFound)?;
    let mut res = HttpResponse::Ok();
    res.content_type(found.content_type);
    Ok(match found.bytes {
        Cow::Borrowed(bytes) => res.body(bytes),
        Cow::Owned(bytes) => res.body(bytes),
    })
}
