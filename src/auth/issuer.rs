//! Accepted issuers: an issuer URL, or one with a `{tenantid}` placeholder
//! that must be the token's own tenant.

/// An issuer with an optional `{tenantid}` placeholder, split around it so
/// matching needs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTemplate {
    prefix: String,
    suffix: Option<String>,
}

impl IssuerTemplate {
    const PLACEHOLDER: &'static str = "{tenantid}";

    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(Self::PLACEHOLDER) {
            Some((_, rest)) if rest.contains(Self::PLACEHOLDER) => None,
            Some((pre, post)) => Some(Self { prefix: pre.into(), suffix: Some(post.into()) }),
            None => Some(Self { prefix: s.into(), suffix: None }),
        }
    }

    /// True when `iss` is this template with `{tenantid}` replaced by `tid`.
    pub fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        match (&self.suffix, tid) {
            (None, _) => iss == self.prefix,
            (Some(suffix), Some(tid)) => iss
                .strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                .is_some_and(|middle| middle == tid),
            (Some(_), None) => false,
        }
    }
}
