//! The answers of `/user-otp/v1/_send` that are not a 201, in DIGIT user-otp's error envelope
//! (`{"responseInfo":null,"error":{"code","message","description","fields":[…]}}`), which
//! DIGIT's apps read. A store outage keeps the server's own 503 shape.

use super::ApiError;
use crate::otp::SendError;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use serde::Serialize;
use utoipa::ToSchema;

/// DIGIT user-otp's error answer.
#[derive(Serialize, ToSchema)]
pub struct OtpErrorBody {
    /// Always null.
    #[serde(rename = "responseInfo")]
    #[schema(value_type = Option<Object>)]
    pub response_info: Option<serde_json::Value>,
    pub error: OtpErrorDetail,
}

/// The `error` of DIGIT user-otp's error answer.
#[derive(Serialize, ToSchema)]
pub struct OtpErrorDetail {
    /// The HTTP status.
    #[schema(example = 400)]
    pub code: u16,
    #[schema(example = "User name not registered. Please try again or sign up.")]
    pub message: &'static str,
    pub description: Option<String>,
    pub fields: Vec<OtpField>,
}

/// One problem, with the request field it is about.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OtpField {
    #[schema(example = "OTP.UNKNOWN_CREDENTIAL")]
    pub code: &'static str,
    #[schema(example = "No such username or password")]
    pub message: String,
    #[schema(example = "otp.mobileNumber")]
    pub field: &'static str,
}

/// A refused code request: its status, DIGIT's message and fields, and when to retry.
#[derive(Debug)]
pub struct OtpRefusal {
    pub status: StatusCode,
    pub message: &'static str,
    pub description: Option<String>,
    pub fields: Vec<OtpField>,
    pub retry_after: Option<u64>,
}

/// DIGIT's message of a request with bad fields.
pub const INVALID_OTP_REQUEST: &str = "Invalid OTP request";

impl OtpRefusal {
    /// 400 "Invalid OTP request" with one entry per bad field.
    pub fn invalid(fields: Vec<OtpField>) -> Self {
        OtpRefusal {
            status: StatusCode::BAD_REQUEST,
            message: INVALID_OTP_REQUEST,
            description: None,
            fields,
            retry_after: None,
        }
    }

    /// 400 "Invalid OTP request" for a body that is not a request at all.
    pub fn malformed(description: &str) -> Self {
        OtpRefusal {
            description: Some(description.to_string()),
            ..Self::invalid(vec![])
        }
    }

    fn one(status: StatusCode, message: &'static str, field: OtpField) -> Self {
        OtpRefusal {
            status,
            message,
            description: None,
            fields: vec![field],
            retry_after: None,
        }
    }

    /// The answer: the envelope, with `Retry-After` when there is a wait.
    pub fn response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status).json(OtpErrorBody {
            response_info: None,
            error: OtpErrorDetail {
                code: self.status.as_u16(),
                message: self.message,
                description: self.description.clone(),
                fields: self.fields.clone(),
            },
        });
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        let field = |code, message: String, field| OtpField {
            code,
            message,
            field,
        };
        let refusal = match e {
            SendError::Store(e) => return ApiError::StoreUnavailable(e),
            SendError::NotServed(_) => OtpRefusal::invalid(vec![field(
                "OTP.REQUEST_TYPE_MANDATORY",
                "Request type login is the only one served here; register and passwordreset are not".into(),
                "otp.type",
            )]),
            SendError::UnknownNumber => OtpRefusal::one(
                StatusCode::BAD_REQUEST,
                "User name not registered. Please try again or sign up.",
                field(
                    "OTP.UNKNOWN_CREDENTIAL",
                    "No such username or password".into(),
                    "otp.mobileNumber",
                ),
            ),
            SendError::NumberThrottled { retry_after } | SendError::AddressThrottled { retry_after } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                OtpRefusal {
                    retry_after: Some(secs),
                    ..OtpRefusal::one(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many OTP requests",
                        field(
                            "OTP.TOO_MANY_REQUESTS",
                            format!("Too many OTP requests; retry in {secs} s"),
                            "otp.mobileNumber",
                        ),
                    )
                }
            }
            SendError::Undelivered { retry_after } => OtpRefusal {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..OtpRefusal::one(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "OTP could not be sent",
                    field(
                        "OTP.DELIVERY_FAILED",
                        "The OTP could not be sent; retry shortly".into(),
                        "otp.mobileNumber",
                    ),
                )
            },
        };
        ApiError::OtpRefused(refusal)
    }
}
