//! The HTTP client of the code services: one JSON POST with a deadline, no redirects, no
//! proxy from the environment, and an answer read only up to a bound.

use bytes::Bytes;
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;
use std::time::Duration;

/// The most of an answer that is read.
const MAX_ANSWER: usize = 64 * 1024;

/// A client whose every request (connect, send, answer) ends within `timeout`.
pub fn client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would carry a code to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("token-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client of one-time codes: {e}"))
}

/// Posts `body` as JSON to `url`: the status and at most [`MAX_ANSWER`] bytes of the answer,
/// or why there is none (the text names no URL: it may hold a password).
pub async fn post_json(
    client: &Client,
    url: &Url,
    body: &impl Serialize,
) -> Result<(StatusCode, Bytes), String> {
    let mut res = client
        .post(url.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| chain(e.without_url()))?;
    let status = res.status();
    let mut answer = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| chain(e.without_url()))? {
        if answer.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("the answer is longer than {MAX_ANSWER} bytes"));
        }
        answer.extend_from_slice(&chunk);
    }
    Ok((status, answer.into()))
}

/// An error and its causes, for the log.
fn chain(e: reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
