//! Every request carries an id: the client's `X-Request-Id` when it is a sane token, else a
//! fresh uuid. It is echoed in the response and printed in the access log line.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};

/// `X-Request-Id`: the header a request's id is read from and echoed in.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The request's id: the client's when acceptable, else a new v4 uuid.
pub fn of(req: &ServiceRequest) -> HeaderValue {
    if let Some(given) = req
        .headers()
        .get(&HEADER)
        .filter(|v| v.to_str().is_ok_and(acceptable))
    {
        return given.clone();
    }
    // From the thread's CSPRNG: a v4 uuid from the OS would cost a system call per request.
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
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
