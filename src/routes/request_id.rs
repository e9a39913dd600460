//! Every request carries an id: the client's `X-Request-Id` when it is a sane token, else a
//! fresh uuid. It is echoed in the response and printed in the access log line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let given = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string);
    // From the thread's CSPRNG: a v4 uuid from the OS would cost a system call per request.
    let id = given.unwrap_or_else(|| {
        uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .to_string()
    });
    let mut res = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_taken_from_clients() {
        assert!(acceptable("3fa85f64-5717-4562-b3fc-2c963f66afa6"));
        assert!(acceptable("gw:req_42.1"));
        for bad in ["", "a b", "x\u{0}", &"a".repeat(129), "line\nbreak", "é"] {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }
}
