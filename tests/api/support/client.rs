//! A client that speaks the API to a server at an address: an app in process (`TestApp`
//! derefs to one) or a `token-server` process. Also the shapes its answers are checked
//! against: the token response, RFC 6749 errors and the store-outage 503.

use super::{BASIC_DIGIT, GATEWAY_SECRET, Seed, basic, eventually};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// The API of the server at `address`, spoken through `client`.
#[derive(Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: reqwest::Client,
}

impl ApiClient {
    pub fn new(address: &str, client: reqwest::Client) -> Self {
        ApiClient {
            address: address.to_string(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A password grant for `seed` sent from the loopback address `from` with `headers`.
    pub async fn login_from(&self, from: &str, seed: &Seed, headers: &[(&str, &str)]) -> Response {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let mut req = client
            .post(self.url("/user/oauth/token"))
            .header("Authorization", BASIC_DIGIT)
            .form(&[
                ("grant_type", "password"),
                ("username", seed.name),
                ("password", seed.password),
                ("tenantId", seed.tenant),
            ]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// A token request as DIGIT's public client.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Response {
        self.post_form_as("/user/oauth/token", BASIC_DIGIT, form)
            .await
    }

    /// A form POST with `authorization` as the Authorization header.
    pub async fn post_form_as(
        &self,
        path: &str,
        authorization: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("Authorization", authorization)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A password grant with `extra` form fields.
    pub async fn password_login<'a>(
        &self,
        user: &'a str,
        password: &'a str,
        extra: impl AsRef<[(&'a str, &'a str)]>,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ];
        form.extend_from_slice(extra.as_ref());
        self.token_request(&form).await
    }

    /// A password grant of `seed` naming its tenant and type, for scope `read`.
    pub async fn login(&self, seed: &Seed) -> Response {
        self.token_request(&[
            ("grant_type", "password"),
            ("username", seed.name),
            ("password", seed.password),
            ("tenantId", seed.tenant),
            ("userType", seed.user_type),
            ("scope", "read"),
        ])
        .await
    }

    /// Logs in and returns the token response body; panics unless it is a 200.
    pub async fn login_ok(&self, seed: &Seed) -> Tokens {
        let res = self.login(seed).await;
        assert_eq!(res.status(), StatusCode::OK, "login of {}", seed.name);
        Tokens::from(res.json::<Value>().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> Tokens {
        let res = self.refresh(refresh_token).await;
        assert_eq!(res.status(), StatusCode::OK, "refresh");
        Tokens::from(res.json::<Value>().await.unwrap())
    }

    pub async fn logout(&self, access_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/user/_logout?access_token={access_token}")))
            .send()
            .await
            .unwrap()
    }

    /// `POST /user/_details`, as DIGIT's services ask for a token's user.
    pub async fn details(&self, access_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/user/_details?access_token={access_token}")))
            .send()
            .await
            .unwrap()
    }

    pub async fn details_status(&self, access_token: &str) -> StatusCode {
        self.details(access_token).await.status()
    }

    /// The status `GET /user/_details` answers for `access_token`, as a gateway validates.
    pub async fn validate(&self, access_token: &str) -> StatusCode {
        self.client
            .get(self.url(&format!("/user/_details?access_token={access_token}")))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Login, validation and refresh all succeed now; anything but 200 or 503 is a test failure.
    pub async fn full_cycle_works(&self, seed: &Seed) -> bool {
        let res = self.login(seed).await;
        if res.status() != StatusCode::OK {
            assert_eq!(
                res.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "only 503s while Redis is away"
            );
            return false;
        }
        let t = Tokens::from(res.json::<Value>().await.unwrap());
        self.details_status(&t.access).await == StatusCode::OK
            && self.refresh(&t.refresh).await.status() == StatusCode::OK
    }

    /// One login, validation and refresh of `seed` while the store may be away: true if all
    /// three answered 200. Any other answer must be the documented 503 (see
    /// [`assert_unavailable`]).
    pub async fn full_cycle_or_unavailable(&self, seed: &Seed) -> bool {
        let Some(res) = ok_or_unavailable(self.login(seed).await, "login").await else {
            return false;
        };
        let t = Tokens::from(res.json::<Value>().await.unwrap());
        ok_or_unavailable(self.details(&t.access).await, "details of a new session")
            .await
            .is_some()
            && ok_or_unavailable(self.refresh(&t.refresh).await, "refresh")
                .await
                .is_some()
    }

    /// Neither token of the session works any more.
    pub async fn assert_session_ended(&self, tokens: &Tokens) {
        assert_eq!(
            self.details_status(&tokens.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_oauth_error(
            self.refresh(&tokens.refresh).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }

    /// `GET /user/sessions` as the owner of `access_token`.
    pub async fn sessions_of(&self, access_token: &str) -> Value {
        self.client
            .get(self.url("/user/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// What RFC 7662 introspection, asked by the confidential client `gateway`, says of
    /// `token`. Unlike a refresh it changes nothing, so a test may poll it.
    pub async fn introspect(&self, token: &str) -> Value {
        let res = self
            .post_form_as(
                "/oauth/introspect",
                &basic("gateway", GATEWAY_SECRET),
                &[("token", token)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "introspection");
        res.json().await.unwrap()
    }

    /// Whether introspection calls `token` live.
    pub async fn is_active(&self, token: &str) -> bool {
        self.introspect(token).await["active"] == true
    }

    /// Waits until neither `access` nor `refresh` is live any more, by their own clocks: the
    /// access token answers 401 and introspection calls the refresh token inactive.
    pub async fn wait_until_expired(&self, access: &str, refresh: &str, limit: Duration) {
        let expired = eventually(limit, || async {
            self.details_status(access).await == StatusCode::UNAUTHORIZED
                && !self.is_active(refresh).await
        })
        .await;
        assert!(expired, "the tokens were still live after {limit:?}");
    }
}

/// A token response: both tokens and the whole body.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Self {
        Tokens {
            access: body["access_token"].as_str().unwrap().to_string(),
            refresh: body["refresh_token"].as_str().unwrap().to_string(),
            body,
        }
    }
}

/// Asserts an RFC 6749 error body and returns it.
pub async fn assert_oauth_error(res: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(res.status(), status, "expected {status} {error}");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

/// Asserts the documented answer of a request the store could not serve: 503
/// `temporarily_unavailable` in the RFC 6749 error shape, with `Retry-After: 1`. `what` names
/// the request in the failure message.
pub async fn assert_unavailable(res: Response, what: &str) {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: only 503s while the store is away, never a 401 or 400: {body}"
    );
    let json: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: the 503 body is not JSON ({e}): {body}"));
    assert_eq!(json["error"], "temporarily_unavailable", "{what}: {body}");
    assert!(json["error_description"].is_string(), "{what}: {body}");
    assert_eq!(retry_after.as_deref(), Some("1"), "{what}: Retry-After");
}

/// The answer if it is a 200; otherwise asserts it is the documented outage answer (see
/// [`assert_unavailable`]) and gives `None`.
pub async fn ok_or_unavailable(res: Response, what: &str) -> Option<Response> {
    if res.status() == StatusCode::OK {
        return Some(res);
    }
    assert_unavailable(res, what).await;
    None
}
