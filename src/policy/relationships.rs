//! GDAP relationships: which customer tenants the partner may act in, and
//! until when.

use std::collections::HashMap;

/// A relationship's state, as Microsoft Graph's `delegatedAdminRelationship`
/// reports it (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `active`, `expiring`: usable until its end date.
    Live,
    /// `expired`, `terminated`, `terminating`, `terminationRequested`.
    Ended,
    /// `created`, `approvalPending`, `approved`, `activating`: not usable yet.
    Pending,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "active" | "expiring" => Self::Live,
            "expired" | "terminated" | "terminating" | "terminationrequested" => Self::Ended,
            "created" | "approvalpending" | "approved" | "activating" => Self::Pending,
            _ => return None,
        })
    }
}

/// Customer tenants and when their relationship with the partner ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customers {
    ends: HashMap<String, i64>,
}

impl Customers {
    /// Adds one relationship. A customer with several keeps the latest end;
    /// an ended one counts as already over; a pending one is not added.
    pub fn add(&mut self, tenant: &str, ends: i64, status: Status) {
        let ends = match status {
            Status::Live => ends,
            Status::Ended => i64::MIN,
            Status::Pending => return,
        };
        let slot = self.ends.entry(tenant.to_ascii_lowercase()).or_insert(ends);
        *slot = (*slot).max(ends);
    }

    /// When the relationship with `tenant` ends (unix seconds; `i64::MIN`
    /// when it has been terminated), or `None` when there is none.
    pub fn relationship_end(&self, tenant: &str) -> Option<i64> {
        match self.ends.get(tenant) {
            Some(end) => Some(*end),
            None if tenant.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.ends.get(&tenant.to_ascii_lowercase()).copied()
            }
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}
