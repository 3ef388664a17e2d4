//! The policy keys of `[[routes]]` and the `[[exemptions]]` tables, checked
//! into `policy` types. Errors name the key.

use std::path::Path;
use std::sync::Arc;

use super::error::ConfigError;
use super::values::guids;
use super::{customers, raw};
use crate::auth::claims::is_guid;
use crate::policy::gdap::{Customers, GLOBAL_ADMINISTRATOR};
use crate::policy::grants::GrantPolicy;
use crate::policy::sam::{SCRIPTING_CLIENTS, SCRIPTING_CLIENTS_PRESET};
use crate::policy::{Exemption, Mode, RouteKind, RoutePolicy, Rule, Schedule, Selector};
use crate::rfc3339;

/// Audiences that make a route a Partner Center route by default.
const PARTNER_CENTER_AUDIENCES: [&str; 2] =
    ["https://api.partnercenter.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"];

/// `kind` when set; otherwise `login` for a route to Entra's sign-in host,
/// `partner-center` when an audience is Partner Center's, else `aobo`.
pub(super) fn kind(key: &str, raw: &raw::Route, upstream_host: &str) -> Result<RouteKind, ConfigError> {
    match raw.kind.as_deref() {
        Some(k) => RouteKind::parse(k)
            .ok_or_else(|| ConfigError::invalid(key, "expected \"partner-center\", \"aobo\" or \"login\"")),
        None if crate::host::normalize(upstream_host).is_ok_and(|h| crate::entra::is_sign_in_host(&h)) => {
            Ok(RouteKind::Login)
        }
        None if raw.audiences.iter().any(|a| PARTNER_CENTER_AUDIENCES.contains(&a.trim_end_matches('/'))) => {
            Ok(RouteKind::PartnerCenter)
        }
        None => Ok(RouteKind::Aobo),
    }
}

pub(super) fn route_policy(i: usize, raw: &raw::Route, kind: RouteKind) -> Result<RoutePolicy, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let mode = Mode::parse(&raw.mode)
        .ok_or_else(|| ConfigError::invalid(key("mode"), "expected \"enforce\" or \"report-only\""))?;
    let enforce_after = match &raw.enforce_after {
        None => None,
        Some(_) if mode == Mode::ReportOnly => {
            return Err(ConfigError::invalid(
                key("enforce_after"),
                "needs mode = \"enforce\" (the route is report-only until that instant)",
            ));
        }
        Some(s) => Some(instant(&key("enforce_after"), s)?),
    };
    let mut rule_modes = [None; Rule::ALL.len()];
    for (name, value) in &raw.rule_modes {
        let k = format!("routes[{i}].rule_modes.{name}");
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        let rule = Rule::parse(name)
            .ok_or_else(|| ConfigError::invalid(&k, format!("unknown rule; one of {}", names.join(", "))))?;
        let mode =
            Mode::parse(value).ok_or_else(|| ConfigError::invalid(&k, "expected \"enforce\" or \"report-only\""))?;
        rule_modes[rule as usize] = Some(mode);
    }
    if raw.require_mfa && raw.accepted_amr.is_empty() {
        return Err(ConfigError::invalid(key("accepted_amr"), "must not be empty while require_mfa is true"));
    }
    let deny_roles = match &raw.deny_roles {
        Some(roles) => guids(&key("deny_roles"), roles)?,
        None if kind == RouteKind::Aobo => vec![GLOBAL_ADMINISTRATOR.to_string()],
        None => Vec::new(),
    };
    Ok(RoutePolicy {
        kind,
        schedule: Schedule { mode, enforce_after },
        rule_modes,
        verify_signature: raw.verify_signature,
        require_mfa: raw.require_mfa,
        accepted_amr: raw.accepted_amr.clone(),
        allow_app_only: raw.allow_app_only,
        allow_public_clients: raw.allow_public_clients,
        require_certificate_client: raw.require_certificate_client,
        allowed_apps: guids(&key("allowed_apps"), &raw.allowed_apps)?,
        denied_apps: denied_apps(&key("denied_apps"), &raw.denied_apps)?,
        partner_tenants: guids(&key("partner_tenants"), &raw.partner_tenants)?,
        customers: raw.customers.as_ref().map(|c| customer_list(&key("customers"), c)).transpose()?.map(Arc::new),
        deny_roles,
        auth_context_id: raw
            .auth_context_id
            .as_deref()
            .map(|c| auth_context(&key("auth_context_id"), c))
            .transpose()?,
        exemptions: Vec::new(),
        // Set by `routes::route`, which knows whether the route fronts ARM.
        compute_guard: None,
        grants: grant_policy(i, raw, kind)?,
    })
}

/// `deny_grants`, `require_client_assertion`, `allowed_token_clients`:
/// login routes only (elsewhere a request carries no grant to judge), with
/// the default `deny_grants` accepted anywhere.
fn grant_policy(i: usize, raw: &raw::Route, kind: RouteKind) -> Result<GrantPolicy, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let default = GrantPolicy::default();
    if kind != RouteKind::Login {
        let set = if raw.deny_grants != default.deny_grants {
            Some("deny_grants")
        } else if raw.require_client_assertion {
            Some("require_client_assertion")
        } else if !raw.allowed_token_clients.is_empty() {
            Some("allowed_token_clients")
        } else {
            None
        };
        if let Some(field) = set {
            return Err(ConfigError::invalid(
                key(field),
                "only a login route (kind = \"login\") checks token requests",
            ));
        }
        return Ok(default);
    }
    let mut deny_grants = Vec::new();
    for (j, g) in raw.deny_grants.iter().enumerate() {
        let g = g.trim();
        let plain = !g.is_empty() && g.len() <= 256 && g.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !plain {
            return Err(ConfigError::invalid(
                format!("{}[{j}]", key("deny_grants")),
                "a grant type, e.g. \"urn:ietf:params:oauth:grant-type:device_code\"",
            ));
        }
        deny_grants.push(g.to_ascii_lowercase());
    }
    Ok(GrantPolicy {
        deny_grants,
        require_client_assertion: raw.require_client_assertion,
        allowed_token_clients: guids(&key("allowed_token_clients"), &raw.allowed_token_clients)?,
    })
}

/// GUIDs, or the `@scripting-clients` preset.
fn denied_apps(key: &str, values: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if v == SCRIPTING_CLIENTS_PRESET {
            out.extend(SCRIPTING_CLIENTS.iter().map(|(id, _)| id.to_string()));
        } else if is_guid(v) {
            out.push(v.to_ascii_lowercase());
        } else {
            return Err(ConfigError::invalid(
                format!("{key}[{i}]"),
                format!("not a GUID or \"{SCRIPTING_CLIENTS_PRESET}\""),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn customer_list(key: &str, raw: &raw::Customers) -> Result<Customers, ConfigError> {
    match raw {
        raw::Customers::File(path) => customers::load(Path::new(path)).map_err(|e| ConfigError::invalid(key, e)),
        raw::Customers::Inline(entries) => {
            let mut list = Customers::default();
            for (i, entry) in entries.iter().enumerate() {
                let k = format!("{key}[{i}]");
                if let Some(unknown) = entry.keys().find(|f| !["tenant_id", "ends", "status"].contains(&f.as_str())) {
                    return Err(ConfigError::invalid(format!("{k}.{unknown}"), "unknown field"));
                }
                let field = |f: &str| entry.get(f).ok_or_else(|| ConfigError::invalid(format!("{k}.{f}"), "required"));
                let (tenant, ends, status) = customers::relationship(
                    field("tenant_id")?,
                    field("ends")?,
                    entry.get("status").map(String::as_str),
                )
                .map_err(|e| ConfigError::invalid(&k, e))?;
                list.add(&tenant, ends, status);
            }
            Ok(list)
        }
    }
}

/// A Conditional Access authentication context id: `c1` to `c99`.
fn auth_context(key: &str, s: &str) -> Result<String, ConfigError> {
    let lower = s.to_ascii_lowercase();
    let ok = lower
        .strip_prefix('c')
        .is_some_and(|n| (1..=2).contains(&n.len()) && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(ConfigError::invalid(key, "an authentication context id such as \"c1\""));
    }
    Ok(lower)
}

/// An RFC 3339 instant, e.g. `2026-04-01T00:00:00Z`.
pub(super) fn instant(key: &str, s: &str) -> Result<i64, ConfigError> {
    rfc3339::parse(s).ok_or_else(|| {
        ConfigError::invalid(key, "not an RFC 3339 date-time with offset (e.g. \"2026-04-01T00:00:00Z\") or a date")
    })
}

/// An exemption and the routes it is limited to (`None`: every route).
pub(super) type ScopedExemption = (Exemption, Option<Vec<String>>);

/// `[[exemptions]]`: each with exactly one of `oid` and `appid`, a reason,
/// and an `expires` instant; `routes` limits it to the named routes.
pub(super) fn exemptions(raw: &[raw::Exemption], route_names: &[&str]) -> Result<Vec<ScopedExemption>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let key = |field: &str| format!("exemptions[{i}].{field}");
        let selector = match (&e.oid, &e.appid) {
            (Some(oid), None) if is_guid(oid) => Selector::Oid(oid.to_ascii_lowercase()),
            (None, Some(appid)) if is_guid(appid) => Selector::AppId(appid.to_ascii_lowercase()),
            (Some(_), None) => return Err(ConfigError::invalid(key("oid"), "not a GUID")),
            (None, Some(_)) => return Err(ConfigError::invalid(key("appid"), "not a GUID")),
            _ => return Err(ConfigError::invalid(format!("exemptions[{i}]"), "set exactly one of oid and appid")),
        };
        if e.reason.trim().is_empty() {
            return Err(ConfigError::invalid(key("reason"), "say why the exemption exists"));
        }
        let expires = instant(&key("expires"), &e.expires)?;
        if let Some(routes) = &e.routes
            && let Some((j, unknown)) = routes.iter().enumerate().find(|(_, r)| !route_names.contains(&r.as_str()))
        {
            return Err(ConfigError::invalid(format!("exemptions[{i}].routes[{j}]"), format!("no route {unknown:?}")));
        }
        out.push((Exemption { selector, reason: e.reason.clone(), expires }, e.routes.clone()));
    }
    Ok(out)
}
