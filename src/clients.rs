//! OAuth clients and client authentication (RFC 6749 §2.3.1): HTTP Basic, or `client_id` /
//! `client_secret` form fields, never both. Out of the box there is DIGIT's public client
//! `egov-user-client`, whose secret is empty.

use crate::domain::credentials::Scope;
use crate::error::ApiError;
use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

pub const DEFAULT_CLIENT_ID: &str = "egov-user-client";

#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub scope: Scope,
}

#[derive(Clone, Debug)]
pub struct Clients {
    clients: Vec<Client>,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            clients: vec![Client {
                id: DEFAULT_CLIENT_ID.into(),
                scope: Scope::from_list(&["read"]),
            }],
        }
    }
}

/// Credentials a request presented, before they are checked.
struct Presented {
    id: String,
    secret: String,
}

fn from_basic(req: &HttpRequest) -> Result<Option<Presented>, ApiError> {
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
    Ok(Some(Presented {
        id: decode(id)?,
        secret: decode(secret)?,
    }))
}

impl Clients {
    /// The client a token request authenticates as.
    pub fn authenticate(
        &self,
        req: &HttpRequest,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> Result<&Client, ApiError> {
        let presented = match (from_basic(req)?, form_id) {
            (Some(_), _) if form_secret.is_some() => {
                return Err(ApiError::InvalidRequest(
                    "client credentials must be sent in one way only: Authorization header or client_secret".into(),
                ));
            }
            (Some(basic), Some(id)) if id != basic.id => {
                return Err(ApiError::InvalidRequest(
                    "client_id does not match the Authorization header".into(),
                ));
            }
            (Some(basic), _) => basic,
            (None, Some(id)) => Presented {
                id: id.to_string(),
                secret: form_secret.unwrap_or_default().to_string(),
            },
            (None, None) => return Err(ApiError::InvalidClient),
        };
        let client = self
            .clients
            .iter()
            .find(|c| c.id == presented.id)
            .ok_or(ApiError::InvalidClient)?;
        // Public clients have an empty secret; presenting any other one is an error.
        if !presented.secret.is_empty() {
            return Err(ApiError::InvalidClient);
        }
        Ok(client)
    }
}
