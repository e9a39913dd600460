//! The account page at `/account/`: where a user signs in, sees their live sessions and ends
//! them. Its files (`account/`) are compiled into the binary and it talks to the server only
//! through the public API (the password grant of the public client, `/user/sessions`,
//! `/user/_logout`), so the page can do nothing a client cannot. Every answer carries a strict
//! Content-Security-Policy: scripts and styles come from these files alone, none inline.
//! `ACCOUNT_PAGE_ENABLED=false` turns it off (404).

use super::AppState;
use crate::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

/// The policy of every file of the page: nothing but its own files, no inline script or
/// style, no framing, no `<base>`, forms only to this origin, and no script built from a
/// string (Trusted Types: the page writes the DOM with `textContent`, never as HTML).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
    require-trusted-types-for 'script'; trusted-types 'none'";

/// One file of the page: its name under `/account/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

/// The page's files; `/account/` is `index.html`.
const ASSETS: [Asset; 6] = [
    Asset {
        name: "index.html",
        media_type: "text/html; charset=utf-8",
        bytes: include_bytes!("account/index.html"),
    },
    Asset {
        name: "account.css",
        media_type: "text/css; charset=utf-8",
        bytes: include_bytes!("account/account.css"),
    },
    Asset {
        name: "account.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("account/account.js"),
    },
    Asset {
        name: "icon.svg",
        media_type: "image/svg+xml",
        bytes: include_bytes!("account/icon.svg"),
    },
    Asset {
        name: "desktop.svg",
        media_type: "image/svg+xml",
        bytes: include_bytes!("account/desktop.svg"),
    },
    Asset {
        name: "phone.svg",
        media_type: "image/svg+xml",
        bytes: include_bytes!("account/phone.svg"),
    },
];

/// The 404 of every account path while the page is turned off.
fn turned_off() -> ApiError {
    ApiError::NotConfigured("the account page is turned off (ACCOUNT_PAGE_ENABLED=false)")
}

/// Redirects to the page.
// The page lives at `/account/`, where its relative links to its files resolve.
#[utoipa::path(
    get,
    path = "/account",
    tag = "account",
    responses(
        (status = 308, description = "To `/account/`, the account page",
            headers(("Location" = String, description = "/account/"))),
        (status = 404, description = "The page is turned off (`not_found`)",
            body = crate::error::OAuthError),
    ),
)]
pub async fn account_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.account_page {
        return Err(turned_off());
    }
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/account/"))
        .finish())
}

/// The account page (`/account/`) and its files.
#[utoipa::path(
    get,
    path = "/account/{file}",
    tag = "account",
    params(("file" = String, Path,
        description = "A file of the page; empty (`/account/`) is the page itself",
        example = "index.html")),
    responses(
        (status = 200, description = "The file, with the page's Content-Security-Policy",
            content(("text/html"), ("text/css"), ("text/javascript"), ("image/svg+xml")),
            headers(("Content-Security-Policy" = String, description = "The page's policy"))),
        (status = 404, description = "No such file, or the page is turned off (`not_found`)",
            body = crate::error::OAuthError),
    ),
)]
pub async fn account_file(
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.account_page {
        return Err(turned_off());
    }
    let name = match file.as_str() {
        "" => "index.html",
        other => other,
    };
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(asset.media_type)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(asset.bytes))
}
