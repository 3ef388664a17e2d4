//! How `check-token` shows what it found: text for people, JSON for scripts.

use serde_json::{Value, json};

use super::{Signature, TokenReport};
use crate::error::{Reason, step_up_challenge};
use crate::policy::gdap::{self, Tenancy};
use crate::policy::{self, Check, ClientType, Mode, TokenVersion, classify};

impl TokenReport {
    fn classification(&self) -> Option<Value> {
        let c = self.claims.as_ref()?;
        let (tenancy, idp_tenant) = match gdap::tenancy(c) {
            Tenancy::Home => ("home", None),
            Tenancy::Foreign { idp_tenant } => ("foreign", idp_tenant),
        };
        Some(json!({
            "principal": classify(c).as_str(),
            "client": ClientType::of(c).as_str(),
            "app_id": c.app_id(),
            "tenancy": tenancy,
            "tenant": c.tid,
            "idp_tenant": idp_tenant,
            "version": TokenVersion::of(c).as_str(),
        }))
    }

    pub(super) fn to_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|l| {
                let (result, reason) = check_words(l.check);
                let reason = reason.map(|r| r.as_str());
                json!({"rule": l.rule.as_str(), "result": result, "reason": reason, "mode": l.mode.as_str(), "hint": l.hint})
            })
            .collect();
        let (signature, signature_note) = match &self.signature {
            Signature::Verified => ("verified", None),
            Signature::NotChecked(why) => ("not_checked", Some(*why)),
            Signature::Failed(r) => ("failed", Some(r.as_str())),
        };
        json!({
            "header": self.header,
            "claims": self.claims_json,
            "classification": self.classification(),
            "route": self.route,
            "kind": self.kind.as_str(),
            "mode": self.mode.as_str(),
            "signature": signature,
            "signature_note": signature_note,
            "token": match &self.token {
                Ok(()) => json!({"result": "pass"}),
                Err((r, hint)) => json!({"result": "fail", "reason": r.as_str(), "hint": hint}),
            },
            "findings": self.findings.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "auxiliary": self.auxiliary.iter().map(|r| match r {
                None => json!({"result": "pass"}),
                Some(r) => json!({"result": "fail", "reason": r.as_str()}),
            }).collect::<Vec<_>>(),
            "rules": rules,
            "exemption": self.exemption,
            "decision": self.decision,
            "reason": self.reason.map(Reason::as_str),
            "status": (self.decision == "deny").then(|| self.reason.map(|r| r.status().as_u16())).flatten(),
            "step_up": self.step_up.as_ref().map(|s| json!({
                "challenge": step_up_challenge(s),
                "claims": serde_json::from_str::<Value>(&s.claims_request()).unwrap_or_default(),
            })),
        })
    }

    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        let pretty = |v: &Option<Value>| {
            v.as_ref().map_or("(does not decode)".to_string(), |v| serde_json::to_string_pretty(v).unwrap_or_default())
        };
        out.push_str(&format!(
            "Header (signature not shown)\n{}\n\nClaims\n{}\n\n",
            pretty(&self.header),
            pretty(&self.claims_json)
        ));
        if let Some(c) = &self.claims {
            let tenancy = match gdap::tenancy(c) {
                Tenancy::Home => format!("home principal of tenant {}", c.tid.as_deref().unwrap_or("?")),
                Tenancy::Foreign { idp_tenant } => format!(
                    "foreign principal from {} acting in tenant {} (AOBO/GDAP or guest)",
                    idp_tenant
                        .map_or_else(|| format!("{:?}", c.idp.as_deref().unwrap_or("")), |t| format!("tenant {t}")),
                    c.tid.as_deref().unwrap_or("?")
                ),
            };
            let principal = match classify(c) {
                policy::Principal::Delegated => "app+user (a signed-in user)",
                policy::Principal::AppOnly => "app-only (client credentials)",
            };
            out.push_str("Token\n");
            out.push_str(&format!("  principal   {principal}\n"));
            out.push_str(&format!(
                "  client      {} (appidacr/azpacr {}), app {}\n",
                ClientType::of(c).as_str(),
                c.client_auth().unwrap_or("absent"),
                c.app_id().unwrap_or("(none)")
            ));
            out.push_str(&format!("  tenant      {tenancy}\n"));
            out.push_str(&format!("  format      v{} access token\n\n", TokenVersion::of(c).as_str()));
        }
        out.push_str(&format!("Route {:?} ({}, {} now)\n", self.route, self.kind.as_str(), self.mode.as_str()));
        let line = |out: &mut String, name: &str, result: &str, detail: &str| {
            let text = format!("  {name:<20}{result:<8}{detail}");
            out.push_str(text.trim_end());
            out.push('\n');
        };
        match &self.signature {
            Signature::Verified => line(&mut out, "signature", "pass", "verified with the configured key set"),
            Signature::NotChecked(why) => line(&mut out, "signature", "-", &format!("not checked: {why}")),
            Signature::Failed(r) => {
                line(&mut out, "signature", "FAIL", &format!("{} ({})", r.as_str(), r.status().as_u16()))
            }
        }
        for r in &self.findings {
            line(
                &mut out,
                "credentials",
                "FAIL",
                &format!("{} ({}): found in the request itself", r.as_str(), r.status().as_u16()),
            );
        }
        match &self.token {
            Ok(()) => line(&mut out, "token", "pass", "issuer, audience, lifetime, tenant"),
            Err((r, hint)) => {
                line(&mut out, "token", "FAIL", &format!("{} ({})", r.as_str(), r.status().as_u16()));
                line(&mut out, "", "", hint);
            }
        }
        for (i, aux) in self.auxiliary.iter().enumerate() {
            let name = format!("auxiliary[{i}]");
            match aux {
                None => line(&mut out, &name, "pass", "checked like the main token"),
                Some(r) => line(&mut out, &name, "FAIL", &format!("{} ({})", r.as_str(), r.status().as_u16())),
            }
        }
        for l in &self.rules {
            let (result, reason) = check_words(l.check);
            let result = match (l.check, l.mode) {
                (Check::Fail(_), Mode::ReportOnly) => "REPORT",
                (Check::Fail(_), Mode::Enforce) => "FAIL",
                _ => result,
            };
            let detail = reason.map(|r| {
                format!(
                    "{} ({}){}",
                    r.as_str(),
                    r.status().as_u16(),
                    if l.mode == Mode::ReportOnly { ", report-only" } else { "" }
                )
            });
            line(&mut out, l.rule.as_str(), result, &detail.unwrap_or_default());
            if !l.hint.is_empty() {
                line(&mut out, "", "", &l.hint);
            }
        }
        if let Some(e) = &self.exemption {
            out.push_str(&format!("  exemption applies: {e}\n"));
        }
        let decision = match (self.decision, self.reason) {
            ("deny", Some(r)) => format!("deny: {} (HTTP {})", r.as_str(), r.status().as_u16()),
            ("would_deny", Some(r)) => format!("forwarded in report-only mode; enforcing would deny: {}", r.as_str()),
            ("exempt", Some(r)) => format!("forwarded under an exemption; otherwise denied: {}", r.as_str()),
            (d, _) => d.to_string(),
        };
        out.push_str(&format!("\nDecision: {decision}\n"));
        if let Some(s) = &self.step_up {
            out.push_str(&format!(
                "Step-up: the answer asks the client to sign in again for authentication context {:?} \
                 (tenant {}); a client that declared cp1 (MSAL, azure-identity) does so and retries.\n  \
                 WWW-Authenticate: {}\n  claims (decoded): {}\n",
                s.auth_context,
                s.tenant,
                step_up_challenge(s),
                s.claims_request()
            ));
        }
        out
    }
}

/// `(result, failing reason)` words for a rule's check.
fn check_words(check: Check) -> (&'static str, Option<policy::Reason>) {
    match check {
        Check::Off => ("off", None),
        Check::Skip => ("n/a", None),
        Check::Pass => ("pass", None),
        Check::Fail(r) => ("fail", Some(r)),
    }
}
