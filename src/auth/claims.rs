//! The claims of an Entra access token that the gateway reads, and the
//! route-independent and per-route checks on them (issuer, audience, lifetime,
//! tenant). Unknown claims are ignored; a known claim of the wrong type, or
//! given twice, makes the token malformed.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::AuthError;
use super::issuer::IssuerTemplate;
use crate::entra::tenant_of;
pub use crate::entra::{audience_key, is_guid};
use crate::fingerprint::{sha256_hex, user_fingerprint};

/// Only the claims policy and logging read. v1 and v2 names both appear
/// (`appid`/`azp`, `appidacr`/`azpacr`); the accessors pick whichever is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    pub tid: Option<String>,
    pub ver: Option<String>,
    pub amr: Option<Vec<String>>,
    pub scp: Option<String>,
    pub roles: Option<Vec<String>>,
    pub idtyp: Option<String>,
    pub appid: Option<String>,
    pub azp: Option<String>,
    pub appidacr: Option<String>,
    pub azpacr: Option<String>,
    pub oid: Option<String>,
    pub idp: Option<String>,
    pub uti: Option<String>,
    /// Role template ids of the user's tenant-wide directory roles.
    #[serde(default, deserialize_with = "string_or_list")]
    pub wids: Option<Vec<String>>,
    /// Client capabilities; `cp1` means the client handles claims challenges.
    #[serde(default, deserialize_with = "string_or_list")]
    pub xms_cc: Option<Vec<String>>,
    /// Conditional Access authentication contexts the token satisfied.
    #[serde(default, deserialize_with = "string_or_list")]
    pub acrs: Option<Vec<String>>,
    pub upn: Option<String>,
    pub unique_name: Option<String>,
    pub preferred_username: Option<String>,
    /// What the decision log derives from the claims, computed once: a
    /// cached token's claims are shared by all its requests.
    #[serde(skip)]
    pub derived: Derived,
}

/// Not a claim: see `Claims::derived`.
#[derive(Debug, Clone, Default)]
pub struct Derived(OnceLock<DerivedValues>);

#[derive(Debug, Clone)]
struct DerivedValues {
    uti_sha256: Option<String>,
    upn_sha256: Option<String>,
    idp_tenant: Option<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Default)]
pub enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match d.deserialize_any(StringOrList("a string or an array of strings"))? {
            None => Self::None,
            Some(OneOrMany::One(s)) => Self::One(s),
            Some(OneOrMany::Many(v)) => Self::Many(v),
        })
    }
}

impl Audience {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Self::None => (None, &[]),
            Self::One(s) => (Some(s.as_str()), &[]),
            Self::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

impl Claims {
    pub fn parse(payload: &[u8]) -> Result<Self, AuthError> {
        const MALFORMED: AuthError = AuthError::Malformed("claims are not valid JSON of the expected types");
        // UTF-8 checked once for the whole payload rather than per string.
        let text = std::str::from_utf8(payload).map_err(|_| MALFORMED)?;
        serde_json::from_str(text).map_err(|_| MALFORMED)
    }

    /// The calling client's application id (`appid` in v1, `azp` in v2).
    pub fn app_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }

    /// How the client authenticated (`appidacr`/`azpacr`): `0` public, `1` secret, `2` certificate.
    pub fn client_auth(&self) -> Option<&str> {
        self.appidacr.as_deref().or(self.azpacr.as_deref())
    }

    /// The signed-in user's name: `upn`, else `unique_name` (v1), else `preferred_username` (v2).
    pub fn user_name(&self) -> Option<&str> {
        self.upn.as_deref().or(self.unique_name.as_deref()).or(self.preferred_username.as_deref())
    }

    /// SHA-256 (hex) of `uti`.
    pub fn uti_fingerprint(&self) -> Option<&str> {
        self.derived().uti_sha256.as_deref()
    }

    /// `fingerprint::user_fingerprint` of `user_name`.
    pub fn user_fingerprint(&self) -> Option<&str> {
        self.derived().upn_sha256.as_deref()
    }

    /// The tenant of a foreign principal's identity provider (`idp`), lower-cased.
    pub fn idp_tenant(&self) -> Option<&str> {
        self.derived().idp_tenant.as_deref()
    }

    fn derived(&self) -> &DerivedValues {
        self.derived.0.get_or_init(|| DerivedValues {
            uti_sha256: self.uti.as_deref().map(|u| sha256_hex(u.as_bytes())),
            upn_sha256: self.user_name().map(user_fingerprint),
            idp_tenant: self.idp.as_deref().and_then(tenant_of).map(str::to_ascii_lowercase),
        })
    }
}

/// A claim Entra writes as an array of strings; a single string is read as a
/// one-element array.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match d.deserialize_any(StringOrList("a string or an array of strings"))? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Reads a string, an array of strings or `null` in one pass (an untagged
/// enum would buffer the value first).
struct StringOrList(&'static str);

impl<'de> Visitor<'de> for StringOrList {
    type Value = Option<OneOrMany>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(OneOrMany::One(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(OneOrMany::One(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(Some(OneOrMany::Many(items)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// JWT NumericDate: a JSON number of seconds; fractions are truncated.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct NumericDate;

    impl<'de> Visitor<'de> for NumericDate {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of seconds")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() { Ok(Some(v as i64)) } else { Err(E::custom("not a finite number")) }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    d.deserialize_any(NumericDate)
}

/// Route-independent claim checks, built once from `[identity]`.
#[derive(Debug, Clone)]
pub struct ClaimChecks {
    pub issuers: Vec<IssuerTemplate>,
    pub tenants: HashSet<String>,
    pub skew_secs: i64,
}

impl ClaimChecks {
    /// Issuer, audience, lifetime and tenant, in that order.
    pub fn check(&self, claims: &Claims, audiences: &[String], now: i64) -> Result<(), AuthError> {
        let iss = claims.iss.as_deref().ok_or(AuthError::BadIssuer)?;
        let tid = claims.tid.as_deref().filter(|t| is_guid(t));
        if !self.issuers.iter().any(|t| t.matches(iss, tid)) {
            return Err(AuthError::BadIssuer);
        }
        if !claims.aud.iter().any(|a| audience_matches(a, audiences)) {
            return Err(AuthError::BadAudience);
        }
        let exp = claims.exp.ok_or(AuthError::Malformed("exp claim is required"))?;
        // RFC 7519 §4.1.4: the token must not be accepted on or after exp.
        if now >= exp.saturating_add(self.skew_secs) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(self.skew_secs) < nbf
        {
            return Err(AuthError::NotYetValid);
        }
        if !self.tenants.is_empty() {
            let allowed = tid.is_some_and(|t| self.tenants.contains(&t.to_ascii_lowercase()));
            if !allowed {
                return Err(AuthError::TenantNotAllowed);
            }
        }
        Ok(())
    }
}

/// True when the token's `aud` is one of `accepted` (`audience_key`s).
fn audience_matches(aud: &str, accepted: &[String]) -> bool {
    // Tokens mostly carry an accepted audience as configured: no allocation then.
    let trimmed = aud.strip_suffix('/').unwrap_or(aud);
    if accepted.iter().any(|a| a == trimmed) {
        return true;
    }
    let key = audience_key(aud);
    accepted.contains(&key)
}

#[cfg(test)]
mod tests;
