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
mod tests {
    use super::*;

    const TID: &str = "df845f1a-1111-2222-3333-444455556666";

    fn checks() -> ClaimChecks {
        ClaimChecks {
            issuers: vec![
                IssuerTemplate::parse("https://sts.windows.net/{tenantid}/").unwrap(),
                IssuerTemplate::parse("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap(),
            ],
            tenants: HashSet::new(),
            skew_secs: 60,
        }
    }

    fn claims(json: serde_json::Value) -> Claims {
        Claims::parse(json.to_string().as_bytes()).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "iss": format!("https://sts.windows.net/{TID}/"),
            "aud": "https://api.partnercenter.microsoft.com",
            "exp": 2_000, "nbf": 1_000, "tid": TID,
        })
    }

    fn run(json: serde_json::Value, now: i64) -> Result<(), &'static str> {
        let aud = vec!["https://api.partnercenter.microsoft.com".to_string()];
        checks().check(&claims(json), &aud, now).map_err(|e| e.reason().as_str())
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = base();
        v[key] = value;
        v
    }

    #[test]
    fn accepts_within_lifetime_and_skew() {
        assert_eq!(run(base(), 1_500), Ok(()));
        assert_eq!(run(base(), 2_059), Ok(()));
        assert_eq!(run(base(), 940), Ok(()));
    }

    #[test]
    fn lifetime_bounds() {
        assert_eq!(run(base(), 2_060), Err("expired"));
        assert_eq!(run(base(), 939), Err("not_yet_valid"));
        let mut no_exp = base();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(run(no_exp, 1_500), Err("malformed_token"));
    }

    #[test]
    fn issuer_must_carry_the_tokens_own_tenant() {
        let other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        assert_eq!(run(with("iss", format!("https://sts.windows.net/{other}/").into()), 1_500), Err("bad_issuer"));
        assert_eq!(run(with("iss", "https://sts.windows.net/{tenantid}/".into()), 1_500), Err("bad_issuer"));
        assert_eq!(run(with("iss", "https://evil.example/".into()), 1_500), Err("bad_issuer"));
        assert_eq!(run(with("tid", "not-a-guid".into()), 1_500), Err("bad_issuer"));
        let v2 = with("iss", format!("https://login.microsoftonline.com/{TID}/v2.0").into());
        assert_eq!(run(v2, 1_500), Ok(()));
        let mut no_iss = base();
        no_iss.as_object_mut().unwrap().remove("iss");
        assert_eq!(run(no_iss, 1_500), Err("bad_issuer"));
    }

    #[test]
    fn audience_forms() {
        assert_eq!(run(with("aud", "https://api.partnercenter.microsoft.com/".into()), 1_500), Ok(()));
        assert_eq!(
            run(with("aud", serde_json::json!(["x", "https://api.partnercenter.microsoft.com"])), 1_500),
            Ok(())
        );
        assert_eq!(run(with("aud", "https://graph.microsoft.com".into()), 1_500), Err("bad_audience"));
        assert_eq!(run(with("aud", "https://api.partnercenter.microsoft.com.evil".into()), 1_500), Err("bad_audience"));
        let mut no_aud = base();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(run(no_aud, 1_500), Err("bad_audience"));
    }

    #[test]
    fn audience_keys() {
        let pc = "https://api.partnercenter.microsoft.com";
        for same in [
            "https://api.partnercenter.microsoft.com",
            "https://api.partnercenter.microsoft.com/",
            "HTTPS://API.PartnerCenter.microsoft.com/",
            "Https://API.PARTNERCENTER.MICROSOFT.COM",
        ] {
            assert_eq!(audience_key(same), pc, "{same}");
        }
        let guid = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
        assert_eq!(audience_key("FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"), guid);
        assert_eq!(audience_key("fa3d9a0c-3FB0-42cc-9193-47C7ecd2edbd/"), guid);
        // Past the host, as written.
        assert_eq!(
            audience_key("HTTPS://API.PartnerCenter.microsoft.com/V1/"),
            "https://api.partnercenter.microsoft.com/V1"
        );
        assert_eq!(audience_key("https://Contoso.example/API?Q=1#F"), "https://contoso.example/API?Q=1#F");
        assert_eq!(audience_key("API://Contoso-Automation/Read"), "api://contoso-automation/Read");
        assert_eq!(audience_key("https://Host.example:8443/p"), "https://host.example:8443/p");
        // Not a URI, not a GUID: as written.
        for exact in ["Contoso-Automation", "urn:Contoso:App", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbdX"] {
            assert_eq!(audience_key(exact), exact);
        }
        // One trailing slash, as Entra adds it; a second is part of the path.
        assert_eq!(audience_key("https://x.example//"), "https://x.example/");
    }

    #[test]
    fn audiences_compare_by_key() {
        let check = |aud: serde_json::Value, accepted: &[&str]| {
            let accepted: Vec<String> = accepted.iter().map(|a| audience_key(a)).collect();
            checks().check(&claims(with("aud", aud)), &accepted, 1_500).map_err(|e| e.reason().as_str())
        };
        let pc = "https://api.partnercenter.microsoft.com";
        let guid = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
        assert_eq!(check("HTTPS://API.PartnerCenter.microsoft.com/".into(), &[pc]), Ok(()));
        assert_eq!(check("FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD".into(), &[guid]), Ok(()));
        assert_eq!(check(pc.into(), &["HTTPS://API.PARTNERCENTER.MICROSOFT.COM/"]), Ok(()));
        assert_eq!(check(guid.into(), &["FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"]), Ok(()));
        assert_eq!(check(serde_json::json!(["x", "HTTPS://api.partnercenter.microsoft.com"]), &[pc]), Ok(()));
        let v1 = "https://api.partnercenter.microsoft.com/v1";
        assert_eq!(check("https://api.partnercenter.microsoft.com/V1".into(), &[v1]), Err("bad_audience"));
        assert_eq!(check("HTTPS://API.PARTNERCENTER.MICROSOFT.COM/v1/".into(), &[v1]), Ok(()));
        assert_eq!(check("https://api.partnercenter.microsoft.com.evil".into(), &[pc]), Err("bad_audience"));
        assert_eq!(check("Contoso-App".into(), &["contoso-app"]), Err("bad_audience"));
    }

    #[test]
    fn wrong_types_and_duplicates_are_malformed() {
        for payload in [
            r#"{"exp":"2000"}"#,
            r#"{"aud":["a",1]}"#,
            r#"{"amr":"mfa"}"#,
            r#"{"exp":1,"exp":2}"#,
            r#"{"amr":["pwd"],"amr":["mfa"]}"#,
            r#"[1]"#,
        ] {
            assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
        }
        assert_eq!(Claims::parse(br#"{"exp":1.9e3}"#).unwrap().exp, Some(1900));
        assert_eq!(Claims::parse(br#"{"exp":null,"nbf":18446744073709551615}"#).unwrap().exp, None);
        assert_eq!(Claims::parse(br#"{"nbf":18446744073709551615}"#).unwrap().nbf, Some(i64::MAX));
        for payload in [r#"{"exp":true}"#, r#"{"exp":[1]}"#, r#"{"aud":{"a":1}}"#, r#"{"aud":5}"#, r#"{"nbf":"1"}"#] {
            assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
        }
        for payload in [r#"{"wids":[1]}"#, r#"{"xms_cc":{"a":1}}"#, r#"{"wids":["a"],"wids":["b"]}"#] {
            assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
        }
    }

    #[test]
    fn list_claims_accept_one_string() {
        let c = Claims::parse(br#"{"xms_cc":"cp1","wids":["62e90394-69f5-4237-9190-012177145e10"],"acrs":["c1"]}"#)
            .unwrap();
        assert_eq!(c.xms_cc.as_deref(), Some(&["cp1".to_string()][..]));
        assert_eq!(c.wids.unwrap().len(), 1);
        assert_eq!(c.acrs.unwrap(), ["c1"]);
        let c = Claims::parse(br#"{"unique_name":"u@x","preferred_username":"p@x"}"#).unwrap();
        assert_eq!(c.user_name(), Some("u@x"));
    }

    #[test]
    fn tenant_allowlist() {
        let mut c = checks();
        c.tenants.insert("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into());
        let aud = vec!["https://api.partnercenter.microsoft.com".to_string()];
        let r = c.check(&claims(base()), &aud, 1_500);
        assert_eq!(r.unwrap_err().reason().as_str(), "tenant_not_allowed");
        c.tenants.insert(TID.into());
        assert!(c.check(&claims(base()), &aud, 1_500).is_ok());
    }

    #[test]
    fn guid_shape() {
        assert!(is_guid(TID));
        assert!(is_guid("DF845F1A-1111-2222-3333-444455556666"));
        assert!(!is_guid("df845f1a11112222333344445555666677"));
        assert!(!is_guid("df845f1a-1111-2222-3333-44445555666g"));
        assert!(!is_guid("../../../../etc/passwd-aaaaaaaaaaaaa"));
    }
}
