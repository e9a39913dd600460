//! The whole route table and the state every handler shares.

mod account;
mod client_ip;
mod discovery;
pub mod doc_types;
mod extract;
mod gateway;
mod health;
mod oauth;
pub mod observe;
pub mod openapi;
mod otp;
pub mod request_id;
mod session;
mod sessions;
mod token;

use crate::clients::{Clients, SecretCheck};
use crate::error::ApiError;
use crate::login::Login;
use crate::password::PasswordVerifier;
use crate::store::Store;
use actix_web::http::{Method, header};
use actix_web::{HttpResponse, web};

pub use extract::{MAX_BODY, UnreadBody};

/// A header value of the hot paths, made once: from a `&str` each response would check and copy.
pub const JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");

/// What every handler shares: the session store, the login, the OAuth clients, trusted proxies.
pub struct AppState {
    pub store: Store,
    pub login: Login,
    pub clients: Clients,
    /// Verifies client secrets (a pool of its own, so client traffic cannot crowd out logins).
    pub verifier: PasswordVerifier,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `PUBLIC_URL`: the base URL of this server as clients reach it, for RFC 8414 metadata.
    pub public_url: Option<String>,
    /// Set when shutdown begins: `/ready` answers 503 so load balancers move away.
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// False when `METRICS_PORT` serves `/metrics` elsewhere.
    pub metrics_on_api_port: bool,
    /// `REQUEST_BODY_TIMEOUT_MS`: how long a request body may take to arrive once reading starts.
    pub body_timeout: std::time::Duration,
    /// `ACCOUNT_PAGE_ENABLED`: serve the account page at `/account/`.
    pub account_page: bool,
}

impl AppState {
    /// What checking a client secret needs for the request `req`.
    pub fn secret_check(&self, req: &actix_web::HttpRequest) -> SecretCheck<'_> {
        SecretCheck {
            verifier: &self.verifier,
            store: &self.store,
            lockout: self.login.lockout,
            address: client_ip::client_ip(req, &self.trusted_proxies),
            per_address: self.login.attempts_per_ip_per_minute,
        }
    }
}

/// The access log: the resolved client address (the one the throttle counts, never a header
/// an untrusted peer sent), the method and path quoted and escaped, so no request can write
/// fields into its own line. The path leaves out the query string, which may carry a token.
pub fn access_log(proxies: Vec<ipnet::IpNet>) -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new(
        "%{client}xi %{request}xi %s %b %Dms request_id=%{x-request-id}o",
    )
    .custom_request_replace("client", move |req| {
        client_ip::client_ip(req.request(), &proxies)
            .map_or_else(|| "-".into(), |ip| ip.to_string())
    })
    .custom_request_replace("request", |req| {
        format!("{:?}", format!("{} {}", req.method(), req.path()))
    })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Declares the route table once, as the server's configuration and as the `SERVED` list the
/// OpenAPI document is checked against. Every path answers other methods with 405 and `Allow`.
macro_rules! routes {
    ($($path:literal => [$($method:ident => $handler:expr),+ $(,)?]),+ $(,)?) => {
        /// Every path pattern the server serves, with its methods.
        pub const SERVED: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),+];

        /// Registers every route; other methods get 405 with `Allow`, other paths 404.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                let allow = [$(stringify!($method)),+].join(", ");
                cfg.service(
                    web::resource($path)
                        // The metrics label, read back without matching the path again.
                        .app_data(crate::metrics::RoutePattern($path))
                        $(.route(web::route().method(Method::$method).to($handler)))+
                        .default_service(web::to(move || {
                            let allow = allow.clone();
                            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
                        })),
                );
            )+
            cfg.default_service(web::to(not_found));
        }
    };
}

routes! {
    "/user/oauth/token" => [POST => token::token],
    "/user/_logout" => [POST => session::logout],
    "/user/_details" => [GET => session::details_get, POST => session::details_post],
    "/user/sessions" => [GET => sessions::list],
    "/user/sessions/{id}" => [DELETE => sessions::end_one],
    "/user/_logout_all" => [POST => sessions::end_all],
    "/user-otp/v1/_send" => [POST => otp::send],
    "/auth" => [GET => gateway::auth, HEAD => gateway::auth, POST => gateway::auth,
        PUT => gateway::auth, DELETE => gateway::auth, PATCH => gateway::auth,
        OPTIONS => gateway::auth],
    "/auth/{path:.*}" => [GET => gateway::auth_path, HEAD => gateway::auth_path,
        POST => gateway::auth_path, PUT => gateway::auth_path, DELETE => gateway::auth_path,
        PATCH => gateway::auth_path, OPTIONS => gateway::auth_path],
    "/oauth/revoke" => [POST => oauth::revoke],
    "/oauth/introspect" => [POST => oauth::introspect],
    "/.well-known/oauth-authorization-server" => [GET => discovery::metadata],
    "/health" => [GET => health::health],
    "/ready" => [GET => health::ready],
    "/metrics" => [GET => health::metrics],
    "/openapi.json" => [GET => openapi::document],
    "/docs" => [GET => openapi::docs_page],
    "/docs/{file:.*}" => [GET => openapi::docs_file],
    "/account" => [GET => account::account_page],
    "/account/{file:.*}" => [GET => account::account_file],
}
