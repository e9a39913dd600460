//! One-time codes as passwords (DIGIT's citizen login): which logins check their password as
//! a code, and where the code comes from.
//!
//! - **Built in.** `send` makes a code for a registered mobile number, keeps only its HMAC
//!   (`store/codes.rs`) and posts it to the operator's webhook (`webhook.rs`); with no
//!   webhook, on the embedded store only, it writes the code to the log for a demo.
//! - **egov-otp.** An existing egov-otp makes and sends codes (DIGIT's user-otp); `verify`
//!   asks it (`egov.rs`).
//!
//! The login runs `verify` where it would run bcrypt: inside the account's budget, after the
//! lock check, so wrong codes count toward the lockout and a locked account spends no code.

mod egov;
mod http;
mod webhook;

use crate::config::{CodeSource, OtpSettings, SecretText};
use crate::domain::address::throttle_key;
use crate::domain::code::{Code, CodeDigest, CodeKey, CodeOwner};
use crate::domain::credentials::{Password, TenantId};
use crate::domain::user::{User, UserType};
use crate::metrics::OtpSendOutcome;
use crate::store::StoreError;
use crate::store::codes::{CodeStore, SendLimits, Started};
use crate::users::UserDirectory;
use egov::EgovOtp;
use std::net::IpAddr;
use std::time::Duration;
use subtle::ConstantTimeEq;
use webhook::Webhook;

/// Where codes come from.
enum Source {
    /// Made here, and sent this way.
    Made(Delivery),
    Egov(EgovOtp),
}

/// Where a code made here goes.
enum Delivery {
    Webhook(Webhook),
    /// Embedded store only: the code goes to the log.
    Log,
}

/// What `/user-otp/v1/_send` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    Login,
    Register,
    PasswordReset,
}

/// A send request, its fields checked.
pub struct SendRequest {
    /// Digits only, as DIGIT checks them.
    pub mobile: String,
    pub tenant: TenantId,
    pub kind: SendKind,
    /// `userType` was exactly `EMPLOYEE` (DIGIT searches employees at the tenant as given,
    /// anyone else at its state level).
    pub employee: bool,
}

/// Why no code was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("only type login is served")]
    NotServed(SendKind),
    #[error("no user with that mobile number logs in with a code")]
    UnknownNumber,
    #[error("too many codes sent to that number")]
    NumberThrottled { retry_after: Duration },
    #[error("too many codes sent from that address")]
    AddressThrottled { retry_after: Duration },
    /// The webhook did not take the code; it is not left live.
    #[error("the code could not be delivered")]
    Undelivered { retry_after: Duration },
    #[error("code store unavailable")]
    Store(#[from] StoreError),
}

impl SendError {
    /// The `outcome` label of `token_server_otp_sends_total`.
    pub fn outcome(&self) -> OtpSendOutcome {
        match self {
            SendError::NotServed(_) => OtpSendOutcome::NotServed,
            SendError::UnknownNumber => OtpSendOutcome::UnknownNumber,
            SendError::NumberThrottled { .. } | SendError::AddressThrottled { .. } => {
                OtpSendOutcome::Throttled
            }
            SendError::Undelivered { .. } => OtpSendOutcome::Undelivered,
            SendError::Store(_) => OtpSendOutcome::StoreError,
        }
    }
}

/// Why a code could not be checked (the login answers 503 and counts no try).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("code store unavailable")]
    Store(#[from] StoreError),
    #[error("egov-otp could not check the code")]
    Unavailable,
}

/// One-time codes: the settings, the store of codes and where codes go.
pub struct Otp {
    citizen: bool,
    employee: bool,
    source: Source,
    codes: CodeStore,
    key: CodeKey,
    limits: SendLimits,
    per_address: u32,
    fixed: Option<SecretText>,
    users: UserDirectory,
}

impl Otp {
    /// Codes as the settings describe them, kept in `codes` and keyed by `secret`; `None`
    /// when no user type logs in with a code.
    pub fn new(
        settings: &OtpSettings,
        codes: CodeStore,
        secret: &[u8],
        users: UserDirectory,
    ) -> Result<Option<Self>, String> {
        if !settings.enabled() {
            if matches!(
                settings.source,
                CodeSource::EgovOtp { .. } | CodeSource::BuiltIn { webhook: Some(_) }
            ) {
                log::warn!(
                    "OTP_WEBHOOK_URL or OTP_VALIDATE_URL is set, but no user type logs in with a code: set citizen.login.password.otp.enabled (or employee.…) to use it"
                );
            }
            return Ok(None);
        }
        let source = match &settings.source {
            CodeSource::EgovOtp { validate } => {
                log::info!("one-time codes: checked by egov-otp at {validate}");
                Source::Egov(EgovOtp::new(validate, settings.http_timeout)?)
            }
            CodeSource::BuiltIn { webhook: Some(url) } => {
                log::info!("one-time codes: made here, delivered to {url}");
                Source::Made(Delivery::Webhook(Webhook::new(url, settings.http_timeout)?))
            }
            CodeSource::BuiltIn { webhook: None } => {
                log::warn!(
                    "!!! OTP_WEBHOOK_URL is not set: one-time codes are WRITTEN TO THIS LOG instead of being sent. For a demo on the embedded store only; never expose this server !!!"
                );
                Source::Made(Delivery::Log)
            }
        };
        if settings.fixed_code.is_some() {
            log::warn!(
                "!!! citizen.login.password.otp.fixed.enabled: the fixed code logs ANY citizen in without an SMS. For a demo on the embedded store only !!!"
            );
        }
        Ok(Some(Otp {
            citizen: settings.citizen,
            employee: settings.employee,
            source,
            codes,
            key: CodeKey::new(secret),
            limits: SendLimits {
                ttl: settings.ttl,
                interval: settings.send_interval,
                per_hour: settings.sends_per_hour,
            },
            per_address: settings.sends_per_ip_per_minute,
            fixed: settings.fixed_code.clone(),
            users,
        }))
    }

    /// Whether users of type `t` log in with a code: CITIZEN and EMPLOYEE each by their
    /// setting; SYSTEM and BUSINESS never.
    fn uses_codes(&self, t: UserType) -> bool {
        match t {
            UserType::Citizen => self.citizen,
            UserType::Employee => self.employee,
            UserType::System | UserType::Business => false,
        }
    }

    /// Whether the login's password is checked as a code: by the type of the user found,
    /// else the type the login names. A login that finds nobody and names no type is checked
    /// as a code when the password has a code's shape, so that it takes the time a code
    /// check takes.
    pub fn checks_as_code(
        &self,
        user: Option<&User>,
        named: Option<UserType>,
        password: &Password,
    ) -> bool {
        match user.map(|u| u.public.user_type).or(named) {
            Some(t) => self.uses_codes(t),
            None => Code::looks_like(password.expose()),
        }
    }

    /// Whether `password` is the live code of `user`'s mobile number in `user`'s tenant,
    /// which it then ends (single use); a wrong one counts a try against that code. With no
    /// user, or one without a mobile number, a check that matches nothing.
    pub async fn verify(
        &self,
        password: &Password,
        user: Option<&User>,
    ) -> Result<bool, CheckError> {
        let owner = user.and_then(|u| {
            let number = u
                .public
                .mobile_number
                .as_deref()
                .filter(|m| !m.is_empty())?;
            Some(CodeOwner::new(number, &u.public.tenant_id))
        });
        if let (Some(fixed), Some(u)) = (&self.fixed, user)
            && u.public.user_type == UserType::Citizen
            && bool::from(
                fixed
                    .expose()
                    .as_bytes()
                    .ct_eq(password.expose().as_bytes()),
            )
        {
            return Ok(true);
        }
        match &self.source {
            Source::Egov(egov) => match (owner, user) {
                (Some(owner), Some(u)) => egov
                    .validate(&owner, password.expose(), u.public.user_type)
                    .await
                    .map_err(|_| CheckError::Unavailable),
                _ => Ok(false),
            },
            Source::Made(_) => {
                let owner = owner.unwrap_or_else(CodeOwner::nobody);
                let presented = self.key.digest(&owner, password.expose());
                Ok(self.codes.redeem(&owner, &presented).await?)
            }
        }
    }

    /// Whether `/user-otp/v1/_send` is this server's: codes are made here.
    pub fn serves_send(&self) -> bool {
        !matches!(self.source, Source::Egov(_))
    }

    /// Makes a code for the request's mobile number and sends it: throttled per client
    /// address (`ip`, resolved) and per number; only for a registered number whose user logs
    /// in with a code.
    pub async fn send(&self, request: SendRequest, ip: Option<IpAddr>) -> Result<(), SendError> {
        let result = self.try_send(&request, ip).await;
        crate::metrics::otp_send(
            result
                .as_ref()
                .map_or_else(SendError::outcome, |_| OtpSendOutcome::Sent),
        );
        result
    }

    async fn try_send(&self, request: &SendRequest, ip: Option<IpAddr>) -> Result<(), SendError> {
        let Source::Made(delivery) = &self.source else {
            return Err(SendError::NotServed(request.kind));
        };
        let from = ip.map_or_else(|| "unknown address".to_string(), |ip| ip.to_string());
        if let Some(ip) = ip
            && let Some(wait) = self
                .codes
                .hit_address(&throttle_key(ip), self.per_address)
                .await?
        {
            log::info!(target: "audit", "code send throttled: too many sends from {from}");
            return Err(SendError::AddressThrottled { retry_after: wait });
        }
        if request.kind != SendKind::Login {
            return Err(SendError::NotServed(request.kind));
        }
        let owner = self.registered(request, &from).await?;
        let code = Code::generate();
        let digest = self.key.digest(&owner, code.expose());
        if let Started::Throttled(wait) = self.codes.start(&owner, &digest, self.limits).await? {
            log::info!(
                target: "audit",
                "code send throttled: too many sends to {:?} in tenant {:?} (from {from})",
                owner.number(),
                owner.tenant()
            );
            return Err(SendError::NumberThrottled { retry_after: wait });
        }
        self.deliver(delivery, &owner, &code, &digest).await?;
        log::info!(
            target: "audit",
            "one-time code sent for {:?} in tenant {:?} (from {from})",
            owner.number(),
            owner.tenant()
        );
        Ok(())
    }

    /// Whose code the request asks for: a registered number of a user type that logs in with
    /// a code (a citizen's in the state tenant, an employee's in the tenant asked).
    async fn registered(&self, request: &SendRequest, from: &str) -> Result<CodeOwner, SendError> {
        let (user_type, tenant) = if request.employee {
            (UserType::Employee, request.tenant.clone())
        } else {
            let state = request
                .tenant
                .as_str()
                .split('.')
                .next()
                .unwrap_or_default();
            let state = TenantId::parse(state).map_err(|_| SendError::UnknownNumber)?;
            (UserType::Citizen, state)
        };
        let found = if self.uses_codes(user_type) {
            self.users.with_mobile(&request.mobile, &tenant).await?
        } else {
            vec![]
        };
        if !found.iter().any(|u| u.public.user_type == user_type) {
            log::info!(
                target: "audit",
                "code send refused: no {user_type:?} with mobile number {:?} in tenant {:?} (from {from})",
                request.mobile,
                tenant.as_str()
            );
            return Err(SendError::UnknownNumber);
        }
        Ok(CodeOwner::new(&request.mobile, tenant.as_str()))
    }

    /// Hands the code to its delivery; one the webhook did not take is discarded.
    async fn deliver(
        &self,
        delivery: &Delivery,
        owner: &CodeOwner,
        code: &Code,
        digest: &CodeDigest,
    ) -> Result<(), SendError> {
        match delivery {
            Delivery::Webhook(webhook) => {
                let Err(reason) = webhook.deliver(owner, code, self.limits.ttl).await else {
                    return Ok(());
                };
                log::warn!(
                    "one-time code for {:?} in tenant {:?} not delivered: {reason}; the code is discarded",
                    owner.number(),
                    owner.tenant()
                );
                if let Err(e) = self.codes.discard(owner, digest).await {
                    log::error!(
                        "an undelivered code could not be discarded (it expires with its TTL): {e}"
                    );
                }
                Err(SendError::Undelivered {
                    retry_after: self.limits.interval.max(Duration::from_secs(1)),
                })
            }
            Delivery::Log => {
                log::warn!(
                    "!!! DEV MODE (no OTP_WEBHOOK_URL): one-time code {} for mobile number {:?} in tenant {:?} !!!",
                    code.expose(),
                    owner.number(),
                    owner.tenant()
                );
                Ok(())
            }
        }
    }
}
