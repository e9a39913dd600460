//! One-time codes in the password grant (DIGIT's citizen login): which user types log in with
//! a code, where codes come from (made here and sent to a webhook, or an existing egov-otp),
//! their lifetime and the send throttles. Unsafe combinations stop start-up: a fixed code or
//! codes written to the log are for the embedded store only.

use super::parse::{ConfigError, Given};
use super::secrets::{SecretText, redact_url};
use std::fmt;
use std::time::Duration;

/// An `http://` or `https://` URL the server posts to; its `Debug` hides a password in it.
#[derive(Clone)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The URL with any `user:password@`, for the request only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Where one-time codes come from.
#[derive(Clone, Debug)]
pub enum CodeSource {
    /// Made here (`/user-otp/v1/_send`) and posted to the webhook; without one (embedded store
    /// only) written to the log.
    BuiltIn { webhook: Option<HttpUrl> },
    /// Checked by an existing egov-otp at this `/otp/v1/_validate` URL; DIGIT's user-otp sends
    /// them.
    EgovOtp { validate: HttpUrl },
}

/// How logins use one-time codes.
#[derive(Clone, Debug)]
pub struct OtpSettings {
    /// A CITIZEN's password is checked as a code.
    pub citizen: bool,
    /// An EMPLOYEE's password is checked as a code.
    pub employee: bool,
    pub source: CodeSource,
    /// How long a code lives.
    pub ttl: Duration,
    /// Least time between two sends to one number.
    pub send_interval: Duration,
    /// Sends to one number per hour.
    pub sends_per_hour: u32,
    /// Sends from one client address per minute; 0 = no limit.
    pub sends_per_ip_per_minute: u32,
    /// Timeout of a webhook delivery or an egov-otp validation.
    pub http_timeout: Duration,
    /// DIGIT's fixed code for every citizen: embedded store only.
    pub fixed_code: Option<SecretText>,
}

/// The settings this file reads, by normalised name.
pub const KEYS: &[&str] = &[
    "citizen_login_password_otp_enabled",
    "employee_login_password_otp_enabled",
    "citizen_login_password_otp_fixed_enabled",
    "citizen_login_password_otp_fixed_value",
    "otp_webhook_url",
    "otp_validate_url",
    "otp_ttl_seconds",
    "otp_send_interval_seconds",
    "otp_sends_per_hour",
    "otp_sends_per_ip_per_minute",
    "otp_http_timeout_ms",
];

const FIXED: &str = "citizen_login_password_otp_fixed_enabled";

impl OtpSettings {
    /// True if some user type logs in with a code.
    pub fn enabled(&self) -> bool {
        self.citizen || self.employee
    }

    /// The code settings in `g`. `uses_redis`: replicas share codes, so the combinations
    /// meant for one demo instance are refused.
    pub fn parse(g: &Given, uses_redis: bool) -> Result<Self, ConfigError> {
        let citizen = g.flag("citizen_login_password_otp_enabled", false)?;
        let employee = g.flag("employee_login_password_otp_enabled", false)?;
        let webhook = url(g, "otp_webhook_url")?;
        let validate = url(g, "otp_validate_url")?;
        let source = match (webhook, validate) {
            (Some(_), Some(v)) => {
                return Err(g.bad(
                    "otp_validate_url",
                    v.expose(),
                    "set only one of OTP_WEBHOOK_URL (codes made here, sent to your SMS gateway) and OTP_VALIDATE_URL (codes of an existing egov-otp)",
                ));
            }
            (webhook, None) => CodeSource::BuiltIn { webhook },
            (None, Some(validate)) => CodeSource::EgovOtp { validate },
        };
        let fixed_code = fixed_code(g, uses_redis, citizen)?;
        let enabled = citizen || employee;
        if enabled && uses_redis {
            if let CodeSource::BuiltIn { webhook: None } = source {
                return Err(g.bad(
                    "otp_webhook_url",
                    "",
                    "required with Redis while citizen.login.password.otp.enabled or employee.login.password.otp.enabled is on: codes are delivered to it (writing them to the log is for the embedded store only); or set OTP_VALIDATE_URL to use an existing egov-otp",
                ));
            }
            if matches!(source, CodeSource::BuiltIn { .. }) && g.non_blank("token_secret").is_none()
            {
                return Err(g.bad(
                    "token_secret",
                    "",
                    "required with Redis for one-time codes: every replica keys the codes' HMAC with it; at least 32 characters, e.g. from `openssl rand -base64 48`",
                ));
            }
        }
        Ok(OtpSettings {
            citizen,
            employee,
            source,
            ttl: g.seconds("otp_ttl_seconds", 300, 30, 900)?,
            send_interval: g.seconds("otp_send_interval_seconds", 30, 0, 3600)?,
            sends_per_hour: g.number("otp_sends_per_hour", 5, 1, 1000)? as u32,
            sends_per_ip_per_minute: g.number("otp_sends_per_ip_per_minute", 10, 0, 1_000_000)?
                as u32,
            http_timeout: Duration::from_millis(g.number(
                "otp_http_timeout_ms",
                3000,
                100,
                60_000,
            )?),
            fixed_code,
        })
    }
}

/// An absolute http(s) URL with a host, if the setting is given.
fn url(g: &Given, key: &str) -> Result<Option<HttpUrl>, ConfigError> {
    let Some(v) = g.non_blank(key) else {
        return Ok(None);
    };
    let v = v.trim().to_string();
    let ok = reqwest::Url::parse(&v).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !ok {
        return Err(ConfigError {
            value: redact_url(&v),
            ..g.bad(key, "", "an absolute http:// or https:// URL, e.g. http://sms-adapter:8000/otp (credentials as https://user:password@host/…)")
        });
    }
    Ok(Some(HttpUrl(v)))
}

/// DIGIT's fixed code, if turned on where that is allowed.
fn fixed_code(
    g: &Given,
    uses_redis: bool,
    citizen: bool,
) -> Result<Option<SecretText>, ConfigError> {
    if !g.flag(FIXED, false)? {
        return Ok(None);
    }
    let on = g.text(FIXED).unwrap_or_default();
    if uses_redis {
        return Err(g.bad(
            FIXED,
            &on,
            "refused with Redis: a fixed code lets anyone who knows a citizen's mobile number log in as that citizen, with no SMS; it is allowed only on the embedded store, for demos",
        ));
    }
    if !citizen {
        return Err(g.bad(
            FIXED,
            &on,
            "needs citizen.login.password.otp.enabled=true: the fixed code is accepted where a citizen's code is",
        ));
    }
    let key = "citizen_login_password_otp_fixed_value";
    let value = g.text(key).unwrap_or_default();
    if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError {
            value: "***".into(),
            ..g.bad(
                key,
                "",
                "6 digits, required while citizen.login.password.otp.fixed.enabled is on",
            )
        });
    }
    Ok(Some(SecretText(value)))
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const REDIS: (&str, &str) = ("REDIS_URL", "redis://127.0.0.1:6379");
    const SECRET: (&str, &str) = ("TOKEN_SECRET", "0123456789abcdef0123456789abcdef");
    const ON: (&str, &str) = ("citizen.login.password.otp.enabled", "true");

    #[test]
    fn a_fresh_server_checks_no_password_as_a_code() {
        let s = Settings::from_vars(vec![]).unwrap();
        assert!(!s.otp.enabled());
        assert!(s.otp.fixed_code.is_none());
        assert_eq!(s.otp.ttl, Duration::from_secs(300));
        assert!(s.otp.ttl <= Duration::from_secs(900), "at most DIGIT's TTL");
        assert_eq!(s.otp.send_interval, Duration::from_secs(30));
        assert_eq!(s.otp.sends_per_hour, 5);
    }

    #[test]
    fn a_fixed_code_is_refused_with_redis_and_says_why() {
        let err = Settings::from_vars(vars(&[
            REDIS,
            SECRET,
            ON,
            ("OTP_WEBHOOK_URL", "http://sms:8000/otp"),
            ("citizen.login.password.otp.fixed.enabled", "true"),
            ("citizen.login.password.otp.fixed.value", "123456"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "citizen.login.password.otp.fixed.enabled");
        assert!(err.allowed.contains("refused with Redis"), "{err}");
        assert!(!err.to_string().contains("123456"), "{err}");
        let embedded = Settings::from_vars(vars(&[
            ON,
            ("citizen.login.password.otp.fixed.enabled", "true"),
            ("citizen.login.password.otp.fixed.value", "123456"),
        ]))
        .unwrap();
        assert!(embedded.otp.fixed_code.is_some());
        assert!(!format!("{embedded:?}").contains("123456"));
    }

    #[test]
    fn codes_in_the_log_are_refused_with_redis() {
        let err = Settings::from_vars(vars(&[REDIS, SECRET, ON])).unwrap_err();
        assert_eq!(err.setting, "OTP_WEBHOOK_URL");
        let ok = Settings::from_vars(vars(&[
            REDIS,
            SECRET,
            ON,
            ("OTP_WEBHOOK_URL", "https://sms/x"),
        ]));
        assert!(ok.is_ok());
        let egov = Settings::from_vars(vars(&[
            REDIS,
            ("refresh.token.rotation", "false"),
            ON,
            ("OTP_VALIDATE_URL", "http://egov-otp:8080/otp/v1/_validate"),
        ]))
        .unwrap();
        assert!(matches!(egov.otp.source, CodeSource::EgovOtp { .. }));
    }

    #[test]
    fn the_two_sources_exclude_each_other_and_urls_hide_their_password() {
        let err = Settings::from_vars(vars(&[
            ON,
            ("OTP_WEBHOOK_URL", "https://u:hunter2@sms/x"),
            (
                "OTP_VALIDATE_URL",
                "https://u:hunter2@egov/otp/v1/_validate",
            ),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "OTP_VALIDATE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for bad in ["ftp://sms/x", "sms:8000", "http://"] {
            let err = Settings::from_vars(vars(&[("OTP_WEBHOOK_URL", bad)])).unwrap_err();
            assert_eq!(err.setting, "OTP_WEBHOOK_URL", "{bad}");
        }
        let err =
            Settings::from_vars(vars(&[("OTP_WEBHOOK_URL", "ftp://u:hunter2@sms")])).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Settings::from_vars(vars(&[("OTP_TTL_SECONDS", "3600")])).unwrap_err();
        assert_eq!(err.setting, "OTP_TTL_SECONDS");
    }

    #[test]
    fn every_setting_is_documented_in_the_example_file_and_the_configuration_doc() {
        let root = env!("CARGO_MANIFEST_DIR");
        let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
        let doc = std::fs::read_to_string(format!("{root}/docs/configuration.md")).unwrap();
        for key in super::super::known() {
            let upper = key.to_ascii_uppercase();
            let dotted = key.replace('_', ".");
            assert!(example.contains(&upper), "{upper} is not in .env.example");
            assert!(
                doc.contains(&format!("`{upper}`")) || doc.contains(&format!("`{dotted}`")),
                "{key} is not in docs/configuration.md"
            );
        }
    }
}
