//! The report's Azure fraud section: ARM compute requests `compute_guard`
//! flagged, by customer (the token's `tid`), principal (`oid`) and
//! application, with what flagged them and what they asked for.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::audit::AuditRecord;

/// One customer, principal and application whose compute requests were flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeFlagged {
    pub tenant_id: String,
    pub object_id: String,
    pub application_id: String,
    /// `deny`, `would_deny`, `exempt`, or `allow` (recorded only, or vouched for by a step-up).
    pub decision: String,
    /// What flagged them (`gpu`, `hpc`, `vcpus`, `regions`, `quota`, `uninspectable`).
    pub kinds: Vec<String>,
    pub sizes: Vec<String>,
    pub regions: Vec<String>,
    pub subscriptions: Vec<String>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

type Key = (String, String, String, String);

#[derive(Default)]
pub(super) struct Collector {
    seen: BTreeMap<Key, Entry>,
}

struct Entry {
    kinds: BTreeSet<String>,
    sizes: BTreeSet<String>,
    regions: BTreeSet<String>,
    subscriptions: BTreeSet<String>,
    count: u64,
    first: (i128, String),
    last: (i128, String),
}

/// Distinct values kept per row, so a flood cannot grow the report without bound.
const MAX_VALUES: usize = 32;

impl Collector {
    pub(super) fn observe(&mut self, record: &AuditRecord, at: i128) {
        let kinds: Vec<&str> = [&record.compute_kind, &record.compute_noted]
            .into_iter()
            .flatten()
            .flat_map(|k| k.split(','))
            .filter(|k| !k.is_empty())
            .collect();
        if kinds.is_empty() {
            return;
        }
        let id = |v: &Option<String>| v.clone().unwrap_or_default();
        let key = (id(&record.tid), id(&record.oid), id(&record.appid), record.decision.clone());
        let e = self.seen.entry(key).or_insert_with(|| Entry {
            kinds: BTreeSet::new(),
            sizes: BTreeSet::new(),
            regions: BTreeSet::new(),
            subscriptions: BTreeSet::new(),
            count: 0,
            first: (at, record.timestamp.clone()),
            last: (at, record.timestamp.clone()),
        });
        e.count += 1;
        let add = |set: &mut BTreeSet<String>, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty())
                && set.len() < MAX_VALUES
            {
                set.insert(v.to_string());
            }
        };
        for k in kinds {
            add(&mut e.kinds, Some(k));
        }
        add(&mut e.sizes, record.compute_size.as_deref());
        add(&mut e.regions, record.compute_region.as_deref());
        add(&mut e.subscriptions, record.compute_subscription.as_deref());
        if at < e.first.0 {
            e.first = (at, record.timestamp.clone());
        }
        if at > e.last.0 {
            e.last = (at, record.timestamp.clone());
        }
    }

    /// The rows, most requests first.
    pub(super) fn finish(self) -> Vec<ComputeFlagged> {
        let list = |s: BTreeSet<String>| s.into_iter().collect();
        let mut rows: Vec<ComputeFlagged> = self
            .seen
            .into_iter()
            .map(|((tenant_id, object_id, application_id, decision), e)| ComputeFlagged {
                tenant_id,
                object_id,
                application_id,
                decision,
                kinds: list(e.kinds),
                sizes: list(e.sizes),
                regions: list(e.regions),
                subscriptions: list(e.subscriptions),
                count: e.count,
                first_seen: e.first.1,
                last_seen: e.last.1,
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.count));
        rows
    }
}
