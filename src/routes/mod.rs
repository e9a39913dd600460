//! The whole route table and the state every handler shares.

mod client_ip;
mod extract;
mod health;
mod oauth;
pub mod request_id;
mod session;
mod sessions;
mod token;

use crate::clients::Clients;
use crate::config::Lockout;
use crate::error::ApiError;
use crate::password::PasswordVerifier;
use crate::store::Store;
use crate::users::UserDirectory;
use actix_web::{HttpResponse, web};

pub use extract::MAX_BODY;

pub struct AppState {
    pub store: Store,
    pub users: UserDirectory,
    pub clients: Clients,
    pub verifier: PasswordVerifier,
    pub lockout: Lockout,
    /// 0 = no limit.
    pub attempts_per_ip_per_minute: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Set when shutdown begins: `/ready` answers 503 so load balancers move away.
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(resource("/user/oauth/token").route(web::post().to(token::token)))
        .service(resource("/user/_logout").route(web::post().to(session::logout)))
        .service(
            resource("/user/_details")
                .route(web::post().to(session::details))
                .route(web::get().to(session::details)),
        )
        .service(resource("/user/sessions").route(web::get().to(sessions::list)))
        .service(resource("/user/sessions/{id}").route(web::delete().to(sessions::end_one)))
        .service(resource("/user/_logout_all").route(web::post().to(sessions::end_all)))
        .service(resource("/oauth/revoke").route(web::post().to(oauth::revoke)))
        .service(resource("/oauth/introspect").route(web::post().to(oauth::introspect)))
        .service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/ready").route(web::get().to(health::ready)))
        .default_service(web::to(not_found));
}
