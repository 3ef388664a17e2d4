//! The Secure Application Model: calls come from the partner's own
//! confidential application (secret or, better, certificate), not from a
//! public client or a well-known scripting tool signed into with a user's
//! credentials; app-only calls only where a route allows them.

use super::partner_center::ClientType;
use super::{Check, Principal, Reason, RoutePolicy};
use crate::auth::claims::Claims;

/// The `denied_apps` entry that stands for `SCRIPTING_CLIENTS`.
pub const SCRIPTING_CLIENTS_PRESET: &str = "@scripting-clients";

/// Microsoft's public client applications used for scripted sign-ins with a
/// user's credentials: a Secure Application Model integration never sends
/// their tokens. Sources: Microsoft's list of first-party applications, and
/// the Partner Center PowerShell module's own client ids.
pub const SCRIPTING_CLIENTS: [(&str, &str); 7] = [
    ("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Microsoft Azure CLI (also Partner Center PowerShell's default)"),
    ("1950a258-227b-4e31-a9cf-717495945fc2", "Microsoft Azure PowerShell"),
    ("14d82eec-204b-4c2f-b7e8-296a70dab67e", "Microsoft Graph Command Line Tools"),
    ("fb78d390-0c51-40cd-8e17-fdbfab77341b", "Microsoft Exchange REST API Based PowerShell"),
    ("a0c73c16-a7e3-4564-9a95-2bdf47383716", "Exchange Online PowerShell"),
    ("1b730954-1685-4b74-9bfd-dac224a7b894", "Azure Active Directory PowerShell"),
    ("fa2e5f2b-d98e-42d4-9891-cbcb51e6b960", "Partner Center PowerShell (Connect-PartnerCenter)"),
];

/// The well-known name of a scripting client, for hints and reports.
pub fn scripting_client_name(app_id: &str) -> Option<&'static str> {
    SCRIPTING_CLIENTS.iter().find(|(id, _)| id.eq_ignore_ascii_case(app_id)).map(|(_, name)| *name)
}

fn listed(list: &[String], app_id: Option<&str>) -> bool {
    app_id.is_some_and(|id| list.iter().any(|a| a.eq_ignore_ascii_case(id)))
}

pub fn denied_apps(policy: &RoutePolicy, claims: &Claims) -> Check {
    if policy.denied_apps.is_empty() {
        Check::Off
    } else if listed(&policy.denied_apps, claims.app_id()) {
        Check::Fail(Reason::AppDenied)
    } else {
        Check::Pass
    }
}

pub fn app_only(policy: &RoutePolicy, principal: Principal) -> Check {
    match principal {
        Principal::Delegated => Check::Pass,
        Principal::AppOnly if policy.allow_app_only => Check::Pass,
        Principal::AppOnly => Check::Fail(Reason::AppOnlyNotAllowed),
    }
}

/// App+user calls must come from a confidential client; a missing
/// `appidacr`/`azpacr` counts as public.
pub fn public_clients(policy: &RoutePolicy, claims: &Claims, principal: Principal) -> Check {
    if policy.allow_public_clients {
        Check::Off
    } else if principal == Principal::AppOnly {
        Check::Skip
    } else if ClientType::of(claims).is_confidential() {
        Check::Pass
    } else {
        Check::Fail(Reason::PublicClient)
    }
}

/// `appidacr`/`azpacr` = `2`: the client proved a certificate, the
/// credential the Secure Application Model recommends. Any principal.
pub fn certificate_client(policy: &RoutePolicy, claims: &Claims) -> Check {
    if !policy.require_certificate_client {
        Check::Off
    } else if ClientType::of(claims) == ClientType::Certificate {
        Check::Pass
    } else {
        Check::Fail(Reason::CertificateRequired)
    }
}

pub fn allowed_apps(policy: &RoutePolicy, claims: &Claims) -> Check {
    if policy.allowed_apps.is_empty() {
        Check::Off
    } else if listed(&policy.allowed_apps, claims.app_id()) {
        Check::Pass
    } else {
        Check::Fail(Reason::AppNotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::claims::is_guid;

    #[test]
    fn preset_ids_are_guids_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (id, name) in SCRIPTING_CLIENTS {
            assert!(is_guid(id) && id == id.to_ascii_lowercase(), "{name}");
            assert!(seen.insert(id), "{id}");
        }
        assert_eq!(scripting_client_name("04B07795-8DDB-461A-BBEE-02F9E1BF7B46"), Some(SCRIPTING_CLIENTS[0].1));
        assert_eq!(scripting_client_name("23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21"), None);
    }
}
