//! Reading requests at the edge: the size- and time-limited body, strict form parsing (RFC 6749: no
//! repeated parameters, empty means absent, UTF-8 only), HTTP Basic client credentials and the
//! six places a client may put an access token.

use super::AppState;
use crate::clients::ClientCredentials;
use crate::domain::token::{Token, TokenKind};
use crate::error::ApiError;
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, Data, Payload};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{percent_decode, percent_decode_str};
use std::borrow::Cow;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The request body, empty if none is declared; fails past [`MAX_BODY`] bytes, if unreadable, or
/// if it has not all arrived within [`AppState::body_timeout`] of the start of reading.
pub async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<Bytes, ApiError> {
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // HTTP/1.1: without a length or a transfer coding there is no body (a gateway's GET).
    if !headers.contains_key(header::TRANSFER_ENCODING)
        && (declared == Some(0) || !headers.contains_key(header::CONTENT_LENGTH))
    {
        return Ok(Bytes::new());
    }
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    // actix's client_request_timeout covers only the head: without this, a body trickled a
    // byte at a time holds the connection for as long as the client likes.
    let deadline = req
        .app_data::<Data<AppState>>()
        .ok_or_else(|| ApiError::bug("request body read without the application state"))?
        .body_timeout;
    // Boxed: a request with no body (a gateway's validation) then carries a small future.
    let read = Box::pin(tokio::time::timeout(deadline, read_all(&mut payload))).await;
    match read {
        Ok(body) => body,
        Err(_) => {
            // actix reads a dropped chunked body to its end before it closes the connection,
            // for as long as the client trickles it; one still held when the answer goes out
            // makes it close at once.
            if let Some(slot) = req.conn_data::<UnreadBody>() {
                slot.0.replace(Some(payload));
            }
            Err(ApiError::BodyTimeout(deadline))
        }
    }
}

/// Where a connection keeps a request body left unread when its deadline passed: held until
/// the connection ends, so that actix closes it once the 408 is sent. Every connection gets one
/// (`startup.rs`, `on_connect`).
#[derive(Default)]
pub struct UnreadBody(std::cell::RefCell<Option<Payload>>);

/// The whole body, at most [`MAX_BODY`] bytes.
async fn read_all(payload: &mut Payload) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::InvalidRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge(MAX_BODY));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of the request without parameters, lower-cased (`application/json`).
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

/// Whether the body is `application/x-www-form-urlencoded`.
pub fn is_form(req: &HttpRequest) -> bool {
    // Compared in place: this runs on every token request.
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Whether the body is JSON: `application/json` or any `+json` type.
pub fn is_json(req: &HttpRequest) -> bool {
    media_type(req).is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// Parameters of an `application/x-www-form-urlencoded` body or query string: only the known
/// ones, a handful at most, so a list beats a hash map (this is on every validation's path).
#[derive(Debug, Default)]
pub struct Form(Vec<(&'static str, String)>);

/// `part` decoded; borrowed when it needs no decoding, as most names and values do.
fn decode(part: &[u8], what: impl FnOnce() -> String) -> Result<Cow<'_, str>, ApiError> {
    let not_utf8 = || ApiError::InvalidRequest(format!("{} is not valid UTF-8", what()));
    if !part.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(part)
            .map(Cow::Borrowed)
            .map_err(|_| not_utf8());
    }
    let plus_as_space: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let text = percent_decode(&plus_as_space)
        .decode_utf8()
        .map_err(|_| not_utf8())?;
    Ok(Cow::Owned(text.into_owned()))
}

impl Form {
    /// The `known` parameters of `input`. A known one that is repeated, not UTF-8 or holds a
    /// NUL is refused (RFC 6749 §3.2: no parameter more than once); any other is ignored
    /// unread, as RFC 6749 asks of unrecognized parameters.
    pub fn parse(input: &[u8], known: &[&'static str]) -> Result<Self, ApiError> {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let Ok(name) = decode(name, String::new) else {
                continue;
            };
            let Some(&name) = known.iter().find(|k| **k == name) else {
                continue;
            };
            let value = decode(value, || format!("parameter {name}"))?;
            if value.contains('\0') {
                return Err(ApiError::InvalidRequest(format!(
                    "parameter {name} contains a NUL character"
                )));
            }
            if params.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::InvalidRequest(format!(
                    "parameter {name} is repeated"
                )));
            }
            params.push((name, value.into_owned()));
        }
        Ok(Form(params))
    }

    /// Where a parameter's value is; an empty value counts as absent (RFC 6749 §3.1).
    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, v)| *n == name && !v.is_empty())
    }

    /// A parameter's value as [`Self::get`] gives it, moved out of the form.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let i = self.position(name)?;
        Some(self.0.swap_remove(i).1)
    }

    /// A parameter's value; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.0[i].1.as_str())
    }

    /// A parameter's value as [`Self::get`] gives it; absent, an `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::InvalidRequest(format!("parameter {name} is required")))
    }

    /// Whether the parameter was sent at all, even empty.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| *n == name)
    }
}

/// A header's value, trimmed; `None` if absent or blank, 400 if it is not visible ASCII.
pub fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| ApiError::InvalidRequest(format!("header {name} is not visible ASCII"))),
    }
}

/// The access token a request presents (see [`access_token`]), read body and all; a missing,
/// malformed or non-access token is an invalid access token.
pub async fn presented_access_token(
    req: &HttpRequest,
    payload: Payload,
) -> Result<Token, ApiError> {
    let body = read_body(req, payload).await?;
    access_token(req, &body)?
        .and_then(|t| Token::parse(&t))
        .filter(|t| t.kind() == TokenKind::Access)
        .ok_or(ApiError::InvalidAccessToken)
}

/// The access token from the first of: query `access_token`, `Authorization: Bearer`, header
/// `auth-token`, form or JSON `access_token`, JSON `RequestInfo.authToken`; `None` if none has
/// one. A malformed query, header or body is an `invalid_request`.
pub fn access_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, ApiError> {
    // The body is checked even when a header carries the token: a malformed one is refused
    // whatever else the request holds.
    let in_body = token_in_body(req, body)?;
    let mut query = Form::parse(req.query_string().as_bytes(), &["access_token"])?;
    if let Some(t) = query.take("access_token") {
        return Ok(Some(t));
    }
    Ok(header_token(req)?.or(in_body))
}

/// The token of `Authorization: Bearer`, else of the `auth-token` header.
pub fn header_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    if let Some(auth) = header_text(req, "authorization")?
        && let Some((scheme, token)) = auth.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_string()));
    }
    Ok(header_text(req, "auth-token")?.map(str::to_string))
}

/// The access token of a form or JSON body: form field `access_token`, JSON `access_token`,
/// JSON `RequestInfo.authToken`. A JSON body must be an object whose `access_token` is a
/// string and whose `RequestInfo` is an object with a string `authToken`, where present (null
/// counts as absent; other members are DIGIT's and are ignored).
fn token_in_body(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if is_form(req) {
        return Ok(Form::parse(body, &["access_token"])?.take("access_token"));
    }
    if !is_json(req) {
        return Ok(None);
    }
    let shape = || {
        ApiError::InvalidRequest(
            "the JSON body must be an object with a string access_token or RequestInfo.authToken"
                .into(),
        )
    };
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::InvalidRequest("the request body is not valid JSON".into()))?;
    let object = json.as_object().ok_or_else(shape)?;
    let text = |v: Option<&serde_json::Value>| -> Result<Option<String>, ApiError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(_) => Err(shape()),
        }
    };
    let direct = text(object.get("access_token"))?;
    let info = match object.get("RequestInfo") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(info)) => text(info.get("authToken"))?,
        Some(_) => return Err(shape()),
    };
    Ok(direct.or(info))
}

/// The client credentials of an `Authorization: Basic` header (RFC 6749 2.3.1: id and secret
/// form-encoded, then base64); `None` without one or with another scheme.
pub fn basic_credentials(req: &HttpRequest) -> Result<Option<ClientCredentials>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidClient)?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err(ApiError::InvalidClient);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(ApiError::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(ApiError::InvalidClient)?;
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::InvalidClient)
    };
    Ok(Some(ClientCredentials {
        id: decode(id)?,
        secret: decode(secret)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 3] = ["username", "password", "scope"];

    #[test]
    fn form_values_are_decoded_and_empty_ones_are_absent() {
        let f = Form::parse(b"username=a+b%40c&password=&scope=read", &KNOWN).unwrap();
        assert_eq!(f.get("username"), Some("a b@c"));
        assert_eq!(f.get("password"), None);
        assert!(f.contains("password"));
    }

    #[test]
    fn repeated_non_utf8_and_nul_parameters_are_refused() {
        for (input, expected) in [
            (&b"scope=1&scope=2"[..], "parameter scope is repeated"),
            (b"scope=%ff", "parameter scope is not valid UTF-8"),
            (b"scope=x%00y", "parameter scope contains a NUL character"),
        ] {
            match Form::parse(input, &KNOWN) {
                Err(ApiError::InvalidRequest(m)) => assert_eq!(m, expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unknown_parameters_are_ignored_whatever_they_hold() {
        let f = Form::parse(b"x=1&x=2&y=%ff&%ff=1&z=%00&scope=read", &KNOWN).unwrap();
        assert_eq!(f.get("scope"), Some("read"));
        assert!(!f.contains("x"));
    }
}
