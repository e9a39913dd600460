//! Delivery of a code to the operator's SMS gateway: a POST of JSON to `OTP_WEBHOOK_URL`.
//! Any 2xx answer is a delivery; anything else, or no answer within the timeout, is not.

use super::http;
use crate::config::HttpUrl;
use crate::domain::code::{Code, CodeOwner};
use reqwest::{Client, Url};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the webhook receives: DIGIT's SMS fields, the code on its own, and when it expires.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    mobile_number: &'a str,
    tenant_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    otp: &'a str,
    /// DIGIT's default text, for a gateway that sends it as it is.
    message: String,
    /// Epoch milliseconds after which the code no longer works.
    expiry_time: u64,
}

/// The webhook of `OTP_WEBHOOK_URL`.
pub struct Webhook {
    client: Client,
    url: Url,
    /// The URL as logs may show it.
    shown: String,
}

impl Webhook {
    /// The webhook at `url`, each delivery ending within `timeout`.
    pub fn new(url: &HttpUrl, timeout: Duration) -> Result<Self, String> {
        Ok(Webhook {
            client: http::client(timeout)?,
            url: Url::parse(url.expose()).map_err(|e| format!("OTP_WEBHOOK_URL {url}: {e}"))?,
            shown: url.to_string(),
        })
    }

    /// Posts `code` for `owner`, which works for `ttl`; why not, if it was not delivered.
    pub async fn deliver(
        &self,
        owner: &CodeOwner,
        code: &Code,
        ttl: Duration,
    ) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let message = Message {
            mobile_number: owner.number(),
            tenant_id: owner.tenant(),
            kind: "login",
            otp: code.expose(),
            message: format!("Dear Citizen, Your Login OTP is {}.", code.expose()),
            expiry_time: (now + ttl).as_millis() as u64,
        };
        match http::post_json(&self.client, &self.url, &message).await {
            Ok((status, _)) if status.is_success() => Ok(()),
            Ok((status, _)) => Err(format!("{} answered {status}", self.shown)),
            Err(reason) => Err(format!("{}: {reason}", self.shown)),
        }
    }
}
