//! The operations each scenario repeats.

use crate::load::{Conn, Workload};
use crate::seed::issue;
use rand::Rng;
use std::sync::Arc;
use token_server::store::Store;

fn ok(reply: &crate::load::Reply) -> bool {
    matches!(reply, Ok((s, _)) if s.is_success())
}

/// A string field of a token response, found without parsing the whole body (tokens are
/// URL-safe base64, so they hold no escapes).
fn field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// `GET /user/_details` with tokens taken in turn from a shared pool.
pub struct Details {
    pub tokens: Arc<Vec<String>>,
}

impl Workload for Details {
    type State = usize;
    fn state(&self, conn: usize) -> usize {
        conn * 7919
    }
    async fn op(&self, conn: &mut Conn, next: &mut usize) -> bool {
        *next = (*next + 1) % self.tokens.len();
        ok(&conn
            .get(&format!(
                "/user/_details?access_token={}",
                self.tokens[*next]
            ))
            .await)
    }
}

/// The ceiling server's one-GET handler.
pub struct CeilingGet {
    pub keys: usize,
}

impl Workload for CeilingGet {
    type State = usize;
    fn state(&self, conn: usize) -> usize {
        conn * 7919
    }
    async fn op(&self, conn: &mut Conn, next: &mut usize) -> bool {
        *next = (*next + 1) % self.keys;
        ok(&conn.get(&format!("/get?k=bench:ceiling:{next}")).await)
    }
}

/// The ceiling server's fixed answer, asked for with a details request's query, so that
/// request and answer are the size of a validation's.
pub struct CeilingFixed {
    pub tokens: Arc<Vec<String>>,
}

impl Workload for CeilingFixed {
    type State = usize;
    fn state(&self, conn: usize) -> usize {
        conn * 7919
    }
    async fn op(&self, conn: &mut Conn, next: &mut usize) -> bool {
        *next = (*next + 1) % self.tokens.len();
        ok(&conn
            .get(&format!("/fixed?access_token={}", self.tokens[*next]))
            .await)
    }
}

/// The ceiling server's refresh floor: the five commands a refresh makes, nothing else.
pub struct CeilingFloor {
    pub keys: usize,
}

impl Workload for CeilingFloor {
    type State = usize;
    fn state(&self, conn: usize) -> usize {
        conn * 7919
    }
    async fn op(&self, conn: &mut Conn, next: &mut usize) -> bool {
        *next = (*next + 1) % self.keys;
        ok(&conn.post_form("/floor", format!("k={next}")).await)
    }
}

/// Each connection refreshes its own session's chain.
pub struct Refresh {
    pub refresh_tokens: Vec<String>,
}

impl Workload for Refresh {
    type State = String;
    fn state(&self, conn: usize) -> String {
        self.refresh_tokens[conn % self.refresh_tokens.len()].clone()
    }
    async fn op(&self, conn: &mut Conn, token: &mut String) -> bool {
        let reply = conn
            .post_form(
                "/user/oauth/token",
                format!("grant_type=refresh_token&refresh_token={token}"),
            )
            .await;
        match reply {
            Ok((s, body)) if s.is_success() => match field(&body, "refresh_token") {
                Some(next) => {
                    *token = next;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

fn login_form(user: &str, password: &str) -> String {
    format!("grant_type=password&username={user}&password={password}&tenantId=pb")
}

/// Password grants only.
pub struct Login {
    pub user: &'static str,
    pub password: &'static str,
}

impl Workload for Login {
    type State = ();
    fn state(&self, _: usize) {}
    async fn op(&self, conn: &mut Conn, _: &mut ()) -> bool {
        ok(&conn
            .post_form("/user/oauth/token", login_form(self.user, self.password))
            .await)
    }
}

/// A login followed by the logout of its access token: one operation.
pub struct LoginLogout {
    pub user: &'static str,
    pub password: &'static str,
}

impl Workload for LoginLogout {
    type State = ();
    fn state(&self, _: usize) {}
    async fn op(&self, conn: &mut Conn, _: &mut ()) -> bool {
        let reply = conn
            .post_form("/user/oauth/token", login_form(self.user, self.password))
            .await;
        let Some(access) = reply
            .ok()
            .and_then(|(_, body)| field(&body, "access_token"))
        else {
            return false;
        };
        ok(&conn
            .post_form(
                &format!("/user/_logout?access_token={access}"),
                String::new(),
            )
            .await)
    }
}

/// The logout of a session started just before, untimed, straight through the library's
/// store (each connection as its own user): logouts without a pool of sessions to run out.
pub struct Logout {
    pub store: Store,
}

impl Workload for Logout {
    /// The connection's number and the access token to end.
    type State = (usize, Option<String>);
    fn state(&self, conn: usize) -> Self::State {
        (conn, None)
    }
    async fn prepare(&self, (conn, token): &mut Self::State) {
        let user = format!("bench-logout-{conn}");
        *token = issue(&self.store, user).await.map(|(access, _)| access);
    }
    async fn op(&self, conn: &mut Conn, (_, token): &mut Self::State) -> bool {
        let Some(access) = token.take() else {
            return false;
        };
        ok(&conn
            .post_form(
                &format!("/user/_logout?access_token={access}"),
                String::new(),
            )
            .await)
    }
}

/// A gateway's day: 90% details, 7% refresh, 2% login, 1% logout.
pub struct Mix {
    pub details: Details,
    pub refresh: Refresh,
    pub login: Login,
}

pub struct MixState {
    next: usize,
    refresh: String,
    owned: Vec<String>,
}

impl Workload for Mix {
    type State = MixState;
    fn state(&self, conn: usize) -> MixState {
        MixState {
            next: self.details.state(conn),
            refresh: self.refresh.state(conn),
            owned: vec![],
        }
    }
    async fn op(&self, conn: &mut Conn, s: &mut MixState) -> bool {
        let roll = rand::rng().random_range(0..100);
        match roll {
            0..90 => self.details.op(conn, &mut s.next).await,
            90..97 => self.refresh.op(conn, &mut s.refresh).await,
            97..99 => {
                let reply = conn
                    .post_form(
                        "/user/oauth/token",
                        login_form(self.login.user, self.login.password),
                    )
                    .await;
                match reply
                    .ok()
                    .and_then(|(_, body)| field(&body, "access_token"))
                {
                    Some(access) => {
                        s.owned.push(access);
                        true
                    }
                    None => false,
                }
            }
            _ => {
                let token = s.owned.pop().unwrap_or_else(|| "none".into());
                ok(&conn
                    .post_form(
                        &format!("/user/_logout?access_token={token}"),
                        String::new(),
                    )
                    .await)
            }
        }
    }
}

/// Details over `tokens`.
pub fn details(tokens: &Arc<Vec<String>>) -> Arc<Details> {
    Arc::new(Details {
        tokens: tokens.clone(),
    })
}

/// Logins as `user` with the seeded password.
pub fn login(user: &'static str) -> Arc<Login> {
    Arc::new(Login {
        user,
        password: crate::seed::PASSWORD,
    })
}
