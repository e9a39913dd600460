//! Who the apps know: the seeded users (with cost-4 bcrypt hashes) and OAuth clients, written
//! as the seed and clients files a server reads at start-up.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DIGIT's public client `egov-user-client`, as its UI sends it.
pub const BASIC_DIGIT: &str = "Basic ZWdvdi11c2VyLWNsaWVudDo=";

/// A seeded user: name, tenant, password, type.
pub struct Seed {
    pub name: &'static str,
    pub tenant: &'static str,
    pub password: &'static str,
    pub user_type: &'static str,
    pub active: bool,
}

pub const EMPLOYEE: Seed = Seed {
    name: "EMP-0001",
    tenant: "pb",
    password: "Emp-Secret-Pass-1",
    user_type: "EMPLOYEE",
    active: true,
};
pub const CITIZEN: Seed = Seed {
    name: "9999999999",
    tenant: "pb",
    password: "Citizen-Secret-Pass-2",
    user_type: "CITIZEN",
    active: true,
};
pub const INACTIVE: Seed = Seed {
    name: "sleepy",
    tenant: "pb",
    password: "Inactive-Secret-Pass-3",
    user_type: "EMPLOYEE",
    active: false,
};
/// The same user name in two tenants.
pub const TWIN_PB: Seed = Seed {
    name: "twin",
    tenant: "pb",
    password: "Twin-Secret-Pass-4",
    user_type: "EMPLOYEE",
    active: true,
};
pub const TWIN_MZ: Seed = Seed {
    name: "twin",
    tenant: "mz",
    password: "Twin-Secret-Pass-5",
    user_type: "CITIZEN",
    active: true,
};

pub const SEEDS: [&Seed; 5] = [&EMPLOYEE, &CITIZEN, &INACTIVE, &TWIN_PB, &TWIN_MZ];

/// The seed file's record of `seed`, without its password; its uuid is
/// `uuid-<tenant>-<name>`.
pub fn user_json(seed: &Seed, id: usize) -> Value {
    serde_json::json!({
        "id": id,
        "uuid": format!("uuid-{}-{}", seed.tenant, seed.name),
        "userName": seed.name,
        "name": format!("Name of {}", seed.name),
        "mobileNumber": null,
        "emailId": null,
        "locale": "en_IN",
        "type": seed.user_type,
        "roles": [{"name": "Employee", "code": "EMPLOYEE", "tenantId": seed.tenant}],
        "active": seed.active,
        "tenantId": seed.tenant,
    })
}

/// The seed file's JSON: every user of `SEEDS` with a cost-4 bcrypt hash.
fn seed_file_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let users: Vec<Value> = SEEDS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut u = user_json(s, i + 1);
                u["password"] = bcrypt::hash(s.password, 4).unwrap().into();
                u
            })
            .collect();
        serde_json::to_string_pretty(&users).unwrap()
    })
}

/// Writes the seed file of `SEEDS` to `dir`; its path.
pub fn write_seed_file(dir: &Path) -> PathBuf {
    let path = dir.join("users.json");
    std::fs::write(&path, seed_file_json()).unwrap();
    path
}

/// Basic credentials of the confidential test client `gateway`.
pub const GATEWAY_SECRET: &str = "gateway-secret-0123456789";

/// The Authorization header value of HTTP Basic `id:secret`.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Clients beside the default one: `gateway` (confidential, read and write), `mobile`
/// (public) and `password-only` (public, no refresh grant).
pub fn write_clients_file(dir: &Path) -> PathBuf {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_json::json!([
            {"client_id": "gateway", "client_secret_hash": bcrypt::hash(GATEWAY_SECRET, 4).unwrap(),
             "grant_types": ["password", "refresh_token"], "scopes": ["read", "write"]},
            {"client_id": "mobile", "scopes": ["read"]},
            {"client_id": "password-only", "grant_types": ["password"]},
        ])
        .to_string()
    });
    let path = dir.join("clients.json");
    std::fs::write(&path, json).unwrap();
    path
}
