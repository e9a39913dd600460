//! The OpenAPI 3.1 description of the API, generated from the handlers' annotations and the
//! types they answer with, served at `/openapi.json`; and Swagger UI at `/docs`, its assets
//! compiled into the binary so the page works offline.

use super::doc_types::{
    BadRequest, InvalidAccessToken, InvalidClient, PayloadTooLarge, TooManyRequests, Unavailable,
};
use crate::error::{ApiError, InvalidTokenBody, OAuthError};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr, Type};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document of every route, with its security schemes and the `X-Request-Id` header.
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
        super::otp::send,
        super::oauth::revoke,
        super::oauth::introspect,
        super::discovery::metadata,
        super::gateway::auth,
        super::gateway::auth_path,
        super::health::health,
        super::health::ready,
        super::health::metrics,
        document,
        docs_page,
        docs_file,
        super::account::account_page,
        super::account::account_file,
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
        (name = "otp", description = "One-time login codes (DIGIT's user-otp), when made here"),
        (name = "gateways", description = "Forward authentication for nginx, Traefik and Envoy"),
        (name = "operations", description = "Liveness, readiness and metrics"),
        (name = "documentation", description = "This document and its interactive page"),
        (name = "account", description = "The account page: a user's own sessions in a browser"),
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
        .map_err(|e| ApiError::internal("cannot serialise the OpenAPI document", e.clone()))?;
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
        .map_err(|e| ApiError::internal("cannot render a Swagger UI file", e.to_string()))?
        .ok_or(ApiError::NotFound)?;
    let mut res = HttpResponse::Ok();
    res.content_type(found.content_type);
    Ok(match found.bytes {
        Cow::Borrowed(bytes) => res.body(bytes),
        Cow::Owned(bytes) => res.body(bytes),
    })
}
