//! The sign-in review: every token request a login route decided, per
//! tenant (in the path), client, grant and client authentication, with
//! counts, first and last seen, and the denials by reason. This is the
//! review of sign-in activity partners are asked to do, from the gateway's
//! own log, without Entra ID P1/P2 sign-in logs.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::audit::AuditRecord;
use crate::policy::legacy::{canonical_grant, client_id};

/// One tenant × client × grant × client authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub tenant: String,
    pub client_id: String,
    pub grant_type: String,
    pub client_auth: String,
    pub count: u64,
    /// Forwarded (allowed, exempt or report-only).
    pub forwarded: u64,
    /// Of the forwarded, answered 2xx by the token endpoint.
    pub issued: u64,
    /// Refused, by reason.
    pub denied: BTreeMap<String, u64>,
    /// Would have been refused (report-only), by reason.
    pub would_deny: BTreeMap<String, u64>,
    pub first_seen: String,
    pub last_seen: String,
}

type Key = (String, String, String, String);

#[derive(Default)]
pub struct Signins {
    rows: BTreeMap<Key, (SignIn, i128, i128)>,
}

impl Signins {
    /// Counts `record` when it is a login route's decision on a request
    /// (the log records `client_auth` for those only).
    pub fn observe(&mut self, record: &AuditRecord, at: i128) {
        let Some(client_auth) = &record.client_auth else { return };
        let or = |v: &Option<String>| v.clone().unwrap_or_default();
        // Logs written before grants and client ids were recorded in one
        // spelling count in the same rows, each grant once.
        let grant = record.grant_type.as_deref().map(|g| {
            let mut grants: Vec<String> = Vec::new();
            for g in g.split(' ').map(canonical_grant) {
                if !grants.contains(&g) {
                    grants.push(g);
                }
            }
            grants.join(" ")
        });
        let client = record.appid.as_deref().map(|id| client_id(id.to_string()));
        let key = (or(&record.signin_tenant), or(&client), or(&grant), client_auth.clone());
        let (row, first, last) = self.rows.entry(key.clone()).or_insert_with(|| {
            let row = SignIn {
                tenant: key.0,
                client_id: key.1,
                grant_type: key.2,
                client_auth: key.3,
                count: 0,
                forwarded: 0,
                issued: 0,
                denied: BTreeMap::new(),
                would_deny: BTreeMap::new(),
                first_seen: record.timestamp.clone(),
                last_seen: record.timestamp.clone(),
            };
            (row, at, at)
        });
        row.count += 1;
        match record.decision.as_str() {
            "deny" => *row.denied.entry(record.reason.clone()).or_default() += 1,
            decision => {
                if decision == "would_deny" {
                    *row.would_deny.entry(record.reason.clone()).or_default() += 1;
                }
                if record.upstream_status.is_some() {
                    row.forwarded += 1;
                }
                if record.upstream_status.is_some_and(|s| (200..300).contains(&s)) {
                    row.issued += 1;
                }
            }
        }
        if at < *first {
            (*first, row.first_seen) = (at, record.timestamp.clone());
        }
        if at > *last {
            (*last, row.last_seen) = (at, record.timestamp.clone());
        }
    }

    /// Most requests first; ties in key order.
    pub fn finish(self) -> Vec<SignIn> {
        let mut rows: Vec<SignIn> = self.rows.into_values().map(|(row, _, _)| row).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.count));
        rows
    }
}

/// `reason=count` pairs, space-separated.
pub fn by_reason(counts: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    for (reason, n) in counts {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{reason}={n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: &str, reason: &str, grant: &str, status: Option<u16>, at: &str) -> AuditRecord {
        AuditRecord {
            timestamp: at.into(),
            decision: decision.into(),
            reason: reason.into(),
            signin_tenant: Some("contoso.onmicrosoft.com".into()),
            appid: Some("23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21".into()),
            grant_type: Some(grant.into()),
            client_auth: Some("secret".into()),
            upstream_status: status,
            ..AuditRecord::default()
        }
    }

    #[test]
    fn rows_per_tenant_client_grant_and_authentication() {
        let mut s = Signins::default();
        s.observe(&record("allow", "none", "client_credentials", Some(200), "2026-12-07T10:00:00.000Z"), 2);
        s.observe(&record("allow", "none", "client_credentials", Some(400), "2026-12-07T09:00:00.000Z"), 1);
        s.observe(
            &record("deny", "client_secret_not_allowed", "client_credentials", None, "2026-12-07T11:00:00.000Z"),
            3,
        );
        s.observe(&record("deny", "grant_not_allowed", "device_code", None, "2026-12-07T11:00:00.000Z"), 3);
        s.observe(&AuditRecord { client_auth: None, ..record("allow", "none", "x", None, "t") }, 4);
        // Another spelling of the same grant and client: the same row.
        let upper = AuditRecord {
            appid: Some("23EC45A3-5F8B-4C3D-9E1A-7B6C5D4E3F21".into()),
            ..record("deny", "grant_not_allowed", "URN:IETF:PARAMS:OAUTH:GRANT-TYPE:DEVICE_CODE", None, "t")
        };
        s.observe(&upper, 3);
        let rows = s.finish();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[1].count, 2, "{rows:?}");
        let cc = &rows[0];
        assert_eq!((cc.count, cc.forwarded, cc.issued), (3, 2, 1));
        assert_eq!(by_reason(&cc.denied), "client_secret_not_allowed=1");
        assert_eq!(
            (cc.first_seen.as_str(), cc.last_seen.as_str()),
            ("2026-12-07T09:00:00.000Z", "2026-12-07T11:00:00.000Z")
        );
        assert_eq!(rows[1].grant_type, "urn:ietf:params:oauth:grant-type:device_code");
    }

    #[test]
    fn a_grant_named_twice_in_two_spellings_is_one_grant_of_the_row() {
        let mut s = Signins::default();
        let device = "urn:ietf:params:oauth:grant-type:device_code";
        s.observe(&record("deny", "grant_not_allowed", &format!("device_code {device}"), None, "t"), 1);
        s.observe(&record("deny", "grant_not_allowed", device, None, "t"), 2);
        let rows = s.finish();
        assert_eq!((rows.len(), rows[0].count, rows[0].grant_type.as_str()), (1, 2, device), "{rows:?}");
    }
}
