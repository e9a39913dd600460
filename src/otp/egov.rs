//! An existing egov-otp, asked as egov-user asks it: `POST /otp/v1/_validate` with the user's
//! stored mobile number and tenant. A 200 with `isValidationSuccessful: true` is the right
//! code; a 4xx or `false` a wrong one; anything else (5xx, a timeout, no answer, an answer
//! that is not egov-otp's) an outage, which is not the user's fault and counts as no try.

use super::http;
use crate::config::HttpUrl;
use crate::domain::code::CodeOwner;
use crate::domain::user::UserType;
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
struct Validate<'a> {
    #[serde(rename = "RequestInfo")]
    request_info: RequestInfo,
    otp: Presented<'a>,
}

#[derive(Serialize)]
struct RequestInfo {
    action: &'static str,
    ts: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Presented<'a> {
    otp: &'a str,
    identity: &'a str,
    tenant_id: &'a str,
    user_type: UserType,
}

#[derive(Deserialize)]
struct Answer {
    otp: Validated,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Validated {
    is_validation_successful: bool,
}

/// egov-otp could not say whether the code is right.
#[derive(Debug)]
pub struct Outage;

/// The egov-otp of `OTP_VALIDATE_URL`.
pub struct EgovOtp {
    client: Client,
    url: Url,
    /// The URL as logs may show it.
    shown: String,
}

impl EgovOtp {
    /// egov-otp's validation at `url`, each call ending within `timeout`.
    pub fn new(url: &HttpUrl, timeout: Duration) -> Result<Self, String> {
        Ok(EgovOtp {
            client: http::client(timeout)?,
            url: Url::parse(url.expose()).map_err(|e| format!("OTP_VALIDATE_URL {url}: {e}"))?,
            shown: url.to_string(),
        })
    }

    /// Whether `code` is `owner`'s live code, as egov-otp says (which then marks it used).
    pub async fn validate(
        &self,
        owner: &CodeOwner,
        code: &str,
        user_type: UserType,
    ) -> Result<bool, Outage> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let body = Validate {
            request_info: RequestInfo {
                action: "validate",
                ts,
            },
            otp: Presented {
                otp: code,
                identity: owner.number(),
                tenant_id: owner.tenant(),
                user_type,
            },
        };
        let outage = |reason: String| {
            log::warn!(
                "egov-otp at {} could not check a one-time code: {reason}",
                self.shown
            );
            Outage
        };
        match http::post_json(&self.client, &self.url, &body).await {
            Ok((status, answer)) if status.is_success() => {
                serde_json::from_slice::<Answer>(&answer)
                    .map(|a| a.otp.is_validation_successful)
                    .map_err(|_| {
                        outage(format!(
                            "answered {status} without otp.isValidationSuccessful"
                        ))
                    })
            }
            Ok((status, _)) if status.is_client_error() => Ok(false),
            Ok((status, _)) => Err(outage(format!("answered {status}"))),
            Err(reason) => Err(outage(reason)),
        }
    }
}
