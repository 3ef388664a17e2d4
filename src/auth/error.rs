//! Why a token was not accepted, each with the reason it is answered with.

use crate::reason::Reason;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: {0}")]
    MissingToken(&'static str),
    #[error("legacy authentication scheme")]
    LegacyAuth,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("algorithm not allowed")]
    DisallowedAlg,
    #[error("signing key not found in the key set")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("issuer not accepted")]
    BadIssuer,
    #[error("audience not accepted")]
    BadAudience,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("tenant not allowed")]
    TenantNotAllowed,
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

impl AuthError {
    pub fn reason(&self) -> Reason {
        match self {
            Self::MissingToken(_) => Reason::MissingToken,
            Self::LegacyAuth => Reason::LegacyAuth,
            Self::Malformed(_) => Reason::MalformedToken,
            Self::DisallowedAlg => Reason::DisallowedAlg,
            Self::UnknownKey => Reason::UnknownKey,
            Self::BadSignature => Reason::BadSignature,
            Self::BadIssuer => Reason::BadIssuer,
            Self::BadAudience => Reason::BadAudience,
            Self::Expired => Reason::Expired,
            Self::NotYetValid => Reason::NotYetValid,
            Self::TenantNotAllowed => Reason::TenantNotAllowed,
            Self::KeysUnavailable => Reason::KeysUnavailable,
        }
    }
}
