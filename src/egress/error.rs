//! Why the egress proxy answered a request itself, each with its reason.

use super::hosts::TargetRefusal;
use crate::reason::Reason;

/// Why the egress proxy answered a request itself.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("proxy credentials missing or wrong")]
    ProxyAuth,
    #[error("target refused: {}", .0.as_str())]
    Denied(TargetRefusal),
    #[error("request does not match the tunnel: {0}")]
    Misdirected(&'static str),
    #[error("the token's audience names another host")]
    AudienceHostMismatch,
    #[error("cannot reach the target: {0}")]
    Unreachable(#[source] std::io::Error),
    #[error("the target did not answer in time")]
    Timeout,
}

impl EgressError {
    pub fn reason(&self) -> Reason {
        match self {
            Self::ProxyAuth => Reason::ProxyAuthRequired,
            Self::Denied(TargetRefusal::TlsRequired) => Reason::TlsRequired,
            Self::Denied(_) => Reason::EgressDenied,
            Self::Misdirected(_) => Reason::MisdirectedRequest,
            Self::AudienceHostMismatch => Reason::AudienceHostMismatch,
            Self::Unreachable(_) => Reason::UpstreamUnavailable,
            Self::Timeout => Reason::UpstreamTimeout,
        }
    }
}
