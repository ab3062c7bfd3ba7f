//! Step-up authentication: the rights a person may use only after a recent,
//! strong sign-in (`BACKPLANE_STEP_UP_*`), and the challenge of RFC 9470
//! (OAuth 2.0 Step Up Authentication Challenge) when one is missing.
//!
//! How a person signed in is read from the token (or the ID token behind a
//! browser session): `amr` (RFC 8176 method names), `acr` and `auth_time`.
//! A sign-in is strong when one of its methods is in `…_AMR` or its `acr` is
//! in `…_ACR`, and recent while `auth_time` is at most `…_MAX_AGE` old; a
//! token without `auth_time` is never recent (nothing says when its person
//! last proved who they are). Service identities are not people and demo
//! identities (`backplane dev`) sign in with no provider: both are exempt.
//!
//! A person keeps seeing the fields of such a right in the schema (their role
//! grants it); an operation that uses one is refused whole by the gate with
//! 401 and the challenge, and `Principal::can` says no to it everywhere else
//! (guards, compiled reads, exports), as a second wall.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Principal, PrincipalKind};
use crate::policy::Permission;

/// RFC 8176's method values that are, or imply, a factor beyond a password:
/// multiple factors or channels, one-time passwords, proof of a hardware or
/// software key, smart cards, biometrics.
pub const MULTI_FACTOR_AMR: &[&str] = &[
    "mfa", "mca", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm",
];

/// Rights that need a step-up unless configured otherwise: cost data, bulk
/// changes and the audit log.
pub const DEFAULT_PERMISSIONS: &[Permission] = &[
    Permission::ReadCostData,
    Permission::BulkOrganizations,
    Permission::ReadAuditLog,
];

/// How long a strong sign-in counts by default: a working day.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// Clock skew allowed for an `auth_time` in the future.
const LEEWAY_SECS: i64 = 60;

/// How a person authenticated, as the identity provider's token says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// `amr`: the methods used (RFC 8176), e.g. `["pwd", "otp"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// `acr`: the authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// `auth_time`: when the person last authenticated (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Authentication {
    /// Reads `amr`, `acr` and `auth_time` from a token's claims. Values of
    /// the wrong type count as absent.
    pub fn from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Self {
        use serde_json::Value;
        let amr = match claims.get("amr") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let acr = claims.get("acr").and_then(Value::as_str).map(str::to_owned);
        let auth_time = claims.get("auth_time").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        });
        Self {
            amr,
            acr,
            auth_time,
        }
    }
}

/// What counts as strong and which rights need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepUpSettings {
    /// `BACKPLANE_STEP_UP_PERMISSIONS`; empty turns step-up off.
    pub permissions: BTreeSet<Permission>,
    /// `BACKPLANE_STEP_UP_AMR`: any one of these methods makes a sign-in strong.
    pub amr: Vec<String>,
    /// `BACKPLANE_STEP_UP_ACR`: any one of these classes makes a sign-in strong.
    pub acr: Vec<String>,
    /// `BACKPLANE_STEP_UP_MAX_AGE`: how old `auth_time` may be.
    pub max_age: Duration,
}

impl Default for StepUpSettings {
    fn default() -> Self {
        Self {
            permissions: DEFAULT_PERMISSIONS.iter().copied().collect(),
            amr: MULTI_FACTOR_AMR.iter().map(|m| (*m).to_owned()).collect(),
            acr: Vec::new(),
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Where a person stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// The rights the person holds but may not use until they step up.
    pub pending: BTreeSet<Permission>,
    /// Until when the person's sign-in counts as strong, if it does now
    /// (Unix seconds).
    pub strong_until: Option<i64>,
}

impl StepUpSettings {
    /// Step-up off: no right needs it.
    pub fn off() -> Self {
        Self {
            permissions: BTreeSet::new(),
            ..Self::default()
        }
    }

    /// Whether the settings can ever be met: with rights to guard, some
    /// method or class must count as strong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.permissions.is_empty() && self.amr.is_empty() && self.acr.is_empty() {
            return Err("BACKPLANE_STEP_UP_PERMISSIONS names rights, but neither BACKPLANE_STEP_UP_AMR nor BACKPLANE_STEP_UP_ACR names what counts as a strong sign-in: nobody could ever use them".into());
        }
        if self.max_age.is_zero() {
            return Err("BACKPLANE_STEP_UP_MAX_AGE must be at least one second".into());
        }
        Ok(())
    }

    /// Until when `auth` counts as strong (Unix seconds), whether or not
    /// that is still ahead; `None` when it is not strong at all.
    pub fn strong_until(&self, auth: &Authentication) -> Option<i64> {
        let strong = auth.amr.iter().any(|m| self.amr.iter().any(|a| a == m))
            || auth
                .acr
                .as_ref()
                .is_some_and(|acr| self.acr.iter().any(|a| a == acr));
        if !strong {
            return None;
        }
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        auth.auth_time.map(|t| t.saturating_add(max_age))
    }

    /// Where `principal` stands at `now` (Unix seconds).
    pub fn standing(&self, principal: &Principal, now: i64) -> Standing {
        if principal.kind != PrincipalKind::Staff || self.permissions.is_empty() {
            return Standing::default();
        }
        let auth = &principal.authentication;
        let strong_until = self.strong_until(auth).filter(|until| {
            now <= *until
                && auth
                    .auth_time
                    .is_some_and(|t| t <= now.saturating_add(LEEWAY_SECS))
        });
        if strong_until.is_some() {
            return Standing {
                pending: BTreeSet::new(),
                strong_until,
            };
        }
        Standing {
            pending: principal
                .permissions()
                .intersection(&self.permissions)
                .copied()
                .collect(),
            strong_until: None,
        }
    }

    /// `max_age` in whole seconds, as the challenge and a sign-in request
    /// carry it.
    pub fn max_age_secs(&self) -> u64 {
        self.max_age.as_secs().max(1)
    }

    /// The `WWW-Authenticate` value of RFC 9470 section 3: the error,
    /// `acr_values` (space-separated, when classes are configured) and
    /// `max_age`.
    pub fn challenge(&self) -> String {
        let mut value = String::from(
            "Bearer realm=\"backplane\", error=\"insufficient_user_authentication\", \
             error_description=\"a recent multi-factor sign-in is required\"",
        );
        if !self.acr.is_empty() {
            value.push_str(&format!(", acr_values=\"{}\"", self.acr.join(" ")));
        }
        value.push_str(&format!(", max_age=\"{}\"", self.max_age_secs()));
        value
    }
}

/// Parses a duration such as `12h`, `90m`, `3600s` or `3600` (seconds).
pub fn parse_max_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 12h, 90m or 3600s"))?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "{text:?} is not a duration such as 12h, 90m or 3600s"
            ));
        }
    };
    if secs == 0 {
        return Err("the step-up max age must be at least one second".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;

    fn person(roles: &[Role], auth: Authentication) -> Principal {
        Principal {
            subject: "p".into(),
            email: None,
            name: None,
            kind: PrincipalKind::Staff,
            roles: roles.iter().copied().collect(),
            scopes: BTreeSet::new(),
            authentication: auth,
            step_up: BTreeSet::new(),
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_password_only_sign_in_leaves_the_guarded_rights_pending() {
        let settings = StepUpSettings::default();
        let auth = Authentication {
            amr: vec!["pwd".into()],
            acr: None,
            auth_time: Some(NOW - 10),
        };
        let standing = settings.standing(&person(&[Role::Admin], auth), NOW);
        assert_eq!(
            standing.pending,
            DEFAULT_PERMISSIONS.iter().copied().collect()
        );
        assert_eq!(standing.strong_until, None);
        // Support holds none of them: nothing is pending.
        let support = person(&[Role::Support], Authentication::default());
        assert!(settings.standing(&support, NOW).pending.is_empty());
    }

    #[test]
    fn a_recent_second_factor_or_class_counts_and_an_old_one_does_not() {
        let settings = StepUpSettings {
            acr: vec!["urn:corp:mfa".into()],
            ..StepUpSettings::default()
        };
        let otp = Authentication {
            amr: vec!["pwd".into(), "otp".into()],
            acr: None,
            auth_time: Some(NOW - 60),
        };
        let standing = settings.standing(&person(&[Role::Finance], otp.clone()), NOW);
        assert!(standing.pending.is_empty());
        assert_eq!(standing.strong_until, Some(NOW - 60 + 12 * 3600));
        let by_acr = Authentication {
            amr: vec![],
            acr: Some("urn:corp:mfa".into()),
            auth_time: Some(NOW - 60),
        };
        assert!(
            settings
                .standing(&person(&[Role::Finance], by_acr), NOW)
                .pending
                .is_empty()
        );
        let old = Authentication {
            auth_time: Some(NOW - 12 * 3600 - 1),
            ..otp.clone()
        };
        assert_eq!(
            settings
                .standing(&person(&[Role::Finance], old), NOW)
                .pending,
            BTreeSet::from([Permission::ReadCostData])
        );
        let timeless = Authentication {
            auth_time: None,
            ..otp
        };
        assert!(
            !settings
                .standing(&person(&[Role::Finance], timeless), NOW)
                .pending
                .is_empty()
        );
    }

    #[test]
    fn services_and_demo_identities_are_exempt() {
        let settings = StepUpSettings::default();
        let mut service = person(&[Role::Admin], Authentication::default());
        service.kind = PrincipalKind::Service;
        assert!(settings.standing(&service, NOW).pending.is_empty());
        service.kind = PrincipalKind::Demo;
        assert!(settings.standing(&service, NOW).pending.is_empty());
    }

    #[test]
    fn the_challenge_has_rfc_9470s_form() {
        let settings = StepUpSettings::default();
        assert_eq!(
            settings.challenge(),
            "Bearer realm=\"backplane\", error=\"insufficient_user_authentication\", error_description=\"a recent multi-factor sign-in is required\", max_age=\"43200\""
        );
        let settings = StepUpSettings {
            acr: vec!["gold".into(), "urn:corp:mfa".into()],
            max_age: Duration::from_secs(300),
            ..settings
        };
        assert!(
            settings
                .challenge()
                .ends_with(", acr_values=\"gold urn:corp:mfa\", max_age=\"300\"")
        );
    }

    #[test]
    fn claims_are_read_leniently() {
        let claims = serde_json::json!({"amr": "otp", "acr": "1", "auth_time": 1.7e9});
        let auth = Authentication::from_claims(claims.as_object().expect("object"));
        assert_eq!(auth.amr, ["otp"]);
        assert_eq!(auth.acr.as_deref(), Some("1"));
        assert_eq!(auth.auth_time, Some(1_700_000_000));
    }

    #[test]
    fn settings_nobody_could_meet_are_refused() {
        let settings = StepUpSettings {
            amr: Vec::new(),
            acr: Vec::new(),
            ..StepUpSettings::default()
        };
        assert!(settings.validate().is_err());
        let off = StepUpSettings {
            amr: Vec::new(),
            ..StepUpSettings::off()
        };
        assert!(off.validate().is_ok());
    }

    #[test]
    fn max_ages_parse_with_units() {
        assert_eq!(parse_max_age("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_max_age("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_max_age("30"), Ok(Duration::from_secs(30)));
        assert!(parse_max_age("0").is_err());
        assert!(parse_max_age("soon").is_err());
    }
}
