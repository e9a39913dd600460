//! `POST /user-otp/v1/_send`: DIGIT user-otp's request for a one-time login code, in its
//! shapes. Served only when codes are made here (a code-using login type is on and
//! `OTP_VALIDATE_URL` is not set); otherwise 404, as DIGIT's own user-otp serves the path.

use super::AppState;
use super::client_ip::client_ip;
use super::extract;
use crate::domain::credentials::TenantId;
use crate::error::{ApiError, OtpField, OtpRefusal};
use crate::otp::{SendKind, SendRequest};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// DIGIT user-otp's answer to a code that was sent.
#[derive(Serialize, ToSchema)]
pub struct SendOtpAnswer {
    /// Always null.
    #[serde(rename = "responseInfo")]
    #[schema(value_type = Option<Object>)]
    response_info: Option<Value>,
    #[serde(rename = "isSuccessful")]
    #[schema(example = true)]
    is_successful: bool,
}

/// A field's text (empty counts as absent); `Err` for anything but a string or null.
fn text(v: Option<&Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(_) => Err(()),
    }
}

fn field(code: &'static str, message: &str, name: &'static str) -> OtpField {
    OtpField {
        code,
        message: message.to_string(),
        field: name,
    }
}

/// The request in `body`, or DIGIT's 400 naming every bad field.
fn parse(body: &[u8]) -> Result<SendRequest, ApiError> {
    const SHAPE: &str =
        r#"the body must be JSON: {"otp":{"mobileNumber","tenantId","type","userType"}}"#;
    let malformed = || ApiError::OtpRefused(OtpRefusal::malformed(SHAPE));
    let json: Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    let otp = match json.get("otp") {
        None | Some(Value::Null) => &Value::Null,
        Some(o @ Value::Object(_)) => o,
        Some(_) => return Err(malformed()),
    };
    let (tenant, kind) = (tenant(otp), kind(otp));
    let mobile = match &kind {
        Ok(kind) => mobile(otp, *kind),
        Err(_) => mobile(otp, SendKind::Register),
    };
    // A JSON type DIGIT's Jackson cannot bind refuses the whole request, as there.
    let employee = match text(otp.get("userType")) {
        Ok(t) => t.as_deref() == Some("EMPLOYEE"),
        Err(()) => return Err(malformed()),
    };
    match (mobile, tenant, kind) {
        (Ok(mobile), Ok(tenant), Ok(kind)) => Ok(SendRequest {
            mobile,
            tenant,
            kind,
            employee,
        }),
        (mobile, tenant, kind) => {
            let fields = [tenant.err(), kind.err(), mobile.err()];
            Err(ApiError::OtpRefused(OtpRefusal::invalid(
                fields.into_iter().flatten().collect(),
            )))
        }
    }
}

fn tenant(otp: &Value) -> Result<TenantId, OtpField> {
    const CODE: &str = "OTP.TENANT_ID_MANDATORY";
    match text(otp.get("tenantId")) {
        Ok(Some(t)) => TenantId::parse(&t).map_err(|r| field(CODE, &r.0, "otp.tenantId")),
        _ => Err(field(CODE, "Tenant field is mandatory", "otp.tenantId")),
    }
}

fn kind(otp: &Value) -> Result<SendKind, OtpField> {
    match text(otp.get("type")).map(|t| t.map(|t| t.to_ascii_lowercase())) {
        Ok(None) => Ok(SendKind::Register),
        Ok(Some(t)) if t == "register" => Ok(SendKind::Register),
        Ok(Some(t)) if t == "login" => Ok(SendKind::Login),
        Ok(Some(t)) if t == "passwordreset" => Ok(SendKind::PasswordReset),
        _ => Err(field(
            "OTP.REQUEST_TYPE_MANDATORY",
            "Request type (register, passwordreset,login) is mandatory",
            "otp.type",
        )),
    }
}

/// The mobile number, checked as DIGIT checks it for `kind` (not for a password reset).
fn mobile(otp: &Value, kind: SendKind) -> Result<String, OtpField> {
    const NAME: &str = "otp.mobileNumber";
    let not_numeric = || {
        field(
            "OTP.MOBILE_NUMBER_INVALID",
            "Mobile number field should be numeric.",
            NAME,
        )
    };
    match text(otp.get("mobileNumber")) {
        Ok(Some(m)) if kind == SendKind::PasswordReset => Ok(m),
        Ok(Some(m)) if !m.bytes().all(|b| b.is_ascii_digit()) => Err(not_numeric()),
        Ok(Some(m)) if !(10..=13).contains(&m.len()) => Err(field(
            "OTP.MOBILE_NUMBER_INVALIDLENGTH",
            "Mobile number length should be min 10 and max 13 digits",
            NAME,
        )),
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(field(
            "OTP.MOBILE_NUMBER_MANDATORY",
            "Mobile number field is mandatory",
            NAME,
        )),
        Err(()) => Err(not_numeric()),
    }
}

/// Sends a one-time login code to a registered mobile number (DIGIT user-otp's `_send`):
/// throttled per number and per client address; the code itself goes only to the webhook.
#[utoipa::path(
    post,
    path = "/user-otp/v1/_send",
    tag = "otp",
    request_body(content = super::doc_types::SendOtpRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The code was sent", body = SendOtpAnswer),
        (status = 400, description = "Bad fields (`Invalid OTP request`), a type other than \
            `login`, or a number no code-using user has (`OTP.UNKNOWN_CREDENTIAL`), in DIGIT's \
            envelope", body = crate::error::OtpErrorBody),
        (status = 404, description = "Codes are not made here: off, or DIGIT's user-otp \
            serves this path (`OTP_VALIDATE_URL`)", body = crate::error::OAuthError),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 429, description = "Too many sends to this number or from this address",
            body = crate::error::OtpErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "The code could not be delivered (DIGIT's envelope, \
            `OTP.DELIVERY_FAILED`), or the store is unreachable (`temporarily_unavailable`)",
            body = crate::error::OtpErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ),
)]
pub async fn send(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(otp) = state.login.codes.as_deref() else {
        return Err(ApiError::NotConfigured(
            "one-time codes are off: no user type logs in with a code",
        ));
    };
    if !otp.serves_send() {
        return Err(ApiError::NotConfigured(
            "one-time codes are made and sent by DIGIT's user-otp here (OTP_VALIDATE_URL is set)",
        ));
    }
    if !extract::is_json(&req) {
        return Err(ApiError::OtpRefused(OtpRefusal::malformed(
            "Content-Type must be application/json",
        )));
    }
    let body = extract::read_body(&req, payload).await?;
    let request = parse(&body)?;
    otp.send(request, client_ip(&req, &state.trusted_proxies))
        .await?;
    Ok(HttpResponse::Created().json(SendOtpAnswer {
        response_info: None,
        is_successful: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_fields(body: &str) -> Vec<&'static str> {
        match parse(body.as_bytes()) {
            Err(ApiError::OtpRefused(r)) => r.fields.iter().map(|f| f.code).collect(),
            Err(e) => panic!("{body}: {e}"),
            Ok(_) => panic!("{body}: accepted"),
        }
    }

    #[test]
    fn digits_fields_are_checked_as_user_otp_checks_them() {
        let ok = parse(
            br#"{"otp":{"mobileNumber":"9876543210","tenantId":"pb","type":"LOGIN","userType":"citizen"},"RequestInfo":{}}"#,
        )
        .unwrap();
        assert_eq!((ok.kind, ok.employee), (SendKind::Login, false));
        let employee = parse(br#"{"otp":{"mobileNumber":"9876543210","tenantId":"pb","type":"login","userType":"EMPLOYEE"}}"#).unwrap();
        assert!(employee.employee);
        assert_eq!(
            refused_fields(r#"{"otp":{"mobileNumber":9876543210,"tenantId":"pb","type":"login"}}"#),
            ["OTP.MOBILE_NUMBER_INVALID"]
        );
        assert!(refused_fields(r#"{"otp":{"mobileNumber":"9876543210","tenantId":"pb","type":"login","userType":0}}"#).is_empty());
        assert_eq!(
            parse(br#"{"otp":{"mobileNumber":"9876543210","tenantId":"pb"}}"#)
                .unwrap()
                .kind,
            SendKind::Register,
            "no type is register"
        );
        assert_eq!(
            refused_fields(r#"{"otp":{}}"#),
            ["OTP.TENANT_ID_MANDATORY", "OTP.MOBILE_NUMBER_MANDATORY"]
        );
        assert_eq!(
            refused_fields(r#"{"otp":{"mobileNumber":"98765x3210","tenantId":"pb","type":"x"}}"#),
            ["OTP.REQUEST_TYPE_MANDATORY", "OTP.MOBILE_NUMBER_INVALID"]
        );
        assert_eq!(
            refused_fields(r#"{"otp":{"mobileNumber":"98765","tenantId":"p:b","type":"login"}}"#),
            ["OTP.TENANT_ID_MANDATORY", "OTP.MOBILE_NUMBER_INVALIDLENGTH"]
        );
        assert!(refused_fields(r#"{"otp":7}"#).is_empty());
        assert!(refused_fields("not json").is_empty());
    }
}
