//! What a key source's series say: how fresh its keys are, what became of
//! an unknown `kid`, and the series themselves, every label set resolved at
//! start.

use prometheus::{Gauge, Histogram, IntCounter, IntGauge};

use super::fetch::FetchResult;

/// How fresh a source's keys are, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The last fetch succeeded.
    Fresh,
    /// Usable, but the last fetch failed or the keys come from the state file.
    Stale,
    /// The last good fetch is older than `max_stale`: no key is used.
    Expired,
    /// No key was ever loaded.
    Missing,
}

impl Freshness {
    pub const ALL: [Self; 4] = [Self::Fresh, Self::Stale, Self::Expired, Self::Missing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Expired => "expired",
            Self::Missing => "missing",
        }
    }

    pub fn usable(self) -> bool {
        matches!(self, Self::Fresh | Self::Stale)
    }
}

/// What became of a request whose `kid` was not in the set: the `outcome`
/// label of `mfagate_jwks_unknown_kid_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKid {
    /// A refetch found it.
    Found,
    /// Still unknown after a refetch; remembered until the next interval.
    NotFound,
    /// Remembered as unknown: no fetch.
    NegativeCached,
    /// No refetch allowed in this interval.
    RateLimited,
    /// The refetch failed.
    FetchFailed,
}

impl UnknownKid {
    pub const ALL: [UnknownKid; 5] =
        [Self::Found, Self::NotFound, Self::NegativeCached, Self::RateLimited, Self::FetchFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::NotFound => "not_found",
            Self::NegativeCached => "negative_cached",
            Self::RateLimited => "rate_limited",
            Self::FetchFailed => "fetch_failed",
        }
    }
}

/// One source's series, every label set resolved at start.
#[derive(Clone)]
pub struct SourceMetrics {
    pub fetch: [IntCounter; FetchResult::ALL.len()],
    pub metadata: [IntCounter; FetchResult::ALL.len()],
    pub duration: Histogram,
    pub keys: IntGauge,
    pub skipped: IntGauge,
    pub age: Gauge,
    /// One gauge per `Freshness`, 1 for the current state.
    pub state: [IntGauge; Freshness::ALL.len()],
    pub unknown_kid: [IntCounter; UnknownKid::ALL.len()],
}

impl SourceMetrics {
    pub(super) fn fetch(&self, result: FetchResult) {
        self.fetch[result as usize].inc();
    }

    pub(super) fn metadata(&self, result: FetchResult) {
        self.metadata[result as usize].inc();
    }

    pub(super) fn unknown_kid(&self, outcome: UnknownKid) {
        self.unknown_kid[outcome as usize].inc();
    }
}
