//! Exemptions: a principal (`oid`) or an application (`appid`) the rules
//! do not stop, for a stated reason and until a stated instant, like Entra's
//! exclusion of its directory sync account or a break-glass account.

use crate::auth::claims::Claims;

/// Whom an exemption covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A user or service principal object id (`oid`), lower-case.
    Oid(String),
    /// A client application id (`appid` / `azp`), lower-case.
    AppId(String),
}

impl Selector {
    pub fn matches(&self, claims: &Claims) -> bool {
        let (want, got) = match self {
            Self::Oid(want) => (want, claims.oid.as_deref()),
            Self::AppId(want) => (want, claims.app_id()),
        };
        got.is_some_and(|g| g.eq_ignore_ascii_case(want))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub selector: Selector,
    pub reason: String,
    /// Unix seconds; from then on the exemption no longer applies.
    pub expires: i64,
}

impl Exemption {
    pub fn is_active(&self, now: i64) -> bool {
        now < self.expires
    }
}

/// The first active exemption covering the token, and the first expired one
/// that would have (reported so that an operator notices).
pub fn find<'p>(list: &'p [Exemption], claims: &Claims, now: i64) -> (Option<&'p Exemption>, Option<&'p Exemption>) {
    let matching = || list.iter().filter(|e| e.selector.matches(claims));
    (matching().find(|e| e.is_active(now)), matching().find(|e| !e.is_active(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_and_expired() {
        let oid = "02223b6b-aa1d-42d4-9ec0-1b2bb9194438";
        let list = vec![
            Exemption { selector: Selector::Oid(oid.into()), reason: "old".into(), expires: 100 },
            Exemption { selector: Selector::AppId("app".into()), reason: "sync".into(), expires: 1_000 },
        ];
        let claims = Claims { oid: Some(oid.to_uppercase()), appid: Some("APP".into()), ..Claims::default() };
        let (active, expired) = find(&list, &claims, 500);
        assert_eq!(active.map(|e| e.reason.as_str()), Some("sync"));
        assert_eq!(expired.map(|e| e.reason.as_str()), Some("old"));
        assert_eq!(find(&list, &claims, 1_000).0, None);
        assert_eq!(find(&list, &claims, 99).0.map(|e| e.reason.as_str()), Some("old"));
        assert_eq!(find(&list, &Claims::default(), 0), (None, None));
    }
}
