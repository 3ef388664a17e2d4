//! What to do about a failed check: one sentence per reason, using the
//! token's own values.

use crate::auth::claims::Claims;
use crate::error::Reason;
use crate::policy::gdap::{self, GLOBAL_ADMINISTRATOR, Tenancy};
use crate::policy::sam::scripting_client_name;
use crate::policy::{ClientType, RoutePolicy};
use crate::rfc3339;

/// Context a hint may quote.
pub struct Context<'a> {
    pub claims: Option<&'a Claims>,
    pub policy: &'a RoutePolicy,
    pub audiences: &'a [String],
    pub customer: Option<&'a str>,
    pub now: i64,
}

fn list(values: Option<&Vec<String>>) -> String {
    format!("[{}]", values.map(|v| v.join(", ")).unwrap_or_default())
}

pub fn hint(reason: Reason, cx: &Context<'_>) -> String {
    let c = cx.claims;
    let app = c.and_then(Claims::app_id).unwrap_or("(none)");
    let tid = c.and_then(|c| c.tid.as_deref()).unwrap_or("(none)");
    match reason {
        Reason::MfaRequired => {
            let amr = c.and_then(|c| c.amr.as_ref());
            let ambiguous = amr.is_some_and(|a| a.iter().any(|m| m == "wiaormfa"));
            let mut s = format!(
                "amr={}: no accepted MFA method ({}) was performed. Sign in interactively with MFA; a federated or third-party MFA must send the multipleauthn claim to Entra, which then puts mfa in amr.",
                list(amr),
                cx.policy.accepted_amr.join(", ")
            );
            if ambiguous {
                s.push_str(" wiaormfa means Windows authentication or MFA, so it proves nothing.");
            }
            s
        }
        Reason::MfaUnprovableV2 => "ver=2.0: v2.0 access tokens carry no amr claim, so they cannot show MFA. Request a v1.0 token for this API (Partner Center, Graph and ARM issue v1.0 tokens).".into(),
        Reason::PublicClient => match scripting_client_name(app) {
            Some(name) => format!("appid {app} is {name}, a public client. Use the partner's own confidential application (Secure Application Model)."),
            None => format!(
                "appidacr/azpacr={}: the client did not authenticate (public client). Use a confidential application with a secret or, better, a certificate.",
                c.and_then(Claims::client_auth).unwrap_or("(none)")
            ),
        },
        Reason::AppDenied => format!(
            "appid {app} ({}) is in denied_apps: scripted sign-ins with a user's credentials are not the Secure Application Model.",
            scripting_client_name(app).unwrap_or("listed by the operator")
        ),
        Reason::CertificateRequired => format!(
            "The client authenticated as {} (appidacr/azpacr={}); this route requires a certificate credential (2).",
            c.map_or("unknown", |c| ClientType::of(c).as_str()),
            c.and_then(Claims::client_auth).unwrap_or("(none)")
        ),
        Reason::AppOnlyNotAllowed => "App-only (client credentials) token: this route requires app+user authentication with MFA.".into(),
        Reason::AppNotAllowed => format!("appid {app} is not in the route's allowed_apps."),
        Reason::ForeignTenantNotAllowed => {
            let idp = match c.map(gdap::tenancy) {
                Some(Tenancy::Foreign { idp_tenant: Some(t) }) => format!("tenant {t}"),
                _ => format!("{:?}", c.and_then(|c| c.idp.as_deref()).unwrap_or("")),
            };
            format!("The user comes from {idp} (idp), acting in tenant {tid}; that is not one of partner_tenants.")
        }
        Reason::CustomerNotAllowed => {
            format!("Customer {} has no relationship in the route's customers list.", cx.customer.unwrap_or(tid))
        }
        Reason::RelationshipExpired => {
            let customer = cx.customer.unwrap_or(tid);
            match cx.policy.customers.as_ref().and_then(|l| l.relationship_end(customer)) {
                Some(i64::MIN) | None => format!("The relationship with customer {customer} was terminated."),
                Some(end) => format!("The relationship with customer {customer} ended at {}.", rfc3339::format(end)),
            }
        }
        Reason::PrivilegedRole => {
            let roles: Vec<&str> = c
                .and_then(|c| c.wids.as_ref())
                .map(|w| w.iter().filter(|r| cx.policy.deny_roles.iter().any(|d| d.eq_ignore_ascii_case(r))).map(String::as_str).collect())
                .unwrap_or_default();
            let named: Vec<String> = roles
                .iter()
                .map(|r| if r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR) { format!("Global Administrator ({r})") } else { r.to_string() })
                .collect();
            format!("wids holds {}, denied on this route: use a least-privileged GDAP role.", named.join(", "))
        }
        Reason::Expired => match c.and_then(|c| c.exp) {
            Some(exp) => format!("exp was {} ({} s ago): get a new token.", rfc3339::format(exp), cx.now - exp),
            None => "The token has expired.".into(),
        },
        Reason::NotYetValid => match c.and_then(|c| c.nbf) {
            Some(nbf) => format!("nbf is {}: check the clocks.", rfc3339::format(nbf)),
            None => "The token is not valid yet.".into(),
        },
        Reason::BadAudience => {
            format!("aud is not one of the route's audiences [{}]: request the token for this API.", cx.audiences.join(", "))
        }
        Reason::BadIssuer => format!(
            "iss {:?} is not an accepted issuer for tid {tid} (identity.issuers).",
            c.and_then(|c| c.iss.as_deref()).unwrap_or("")
        ),
        Reason::TenantNotAllowed => format!("tid {tid} is not in identity.tenants."),
        Reason::UnknownKey => "The token's kid is not in the identity provider's key set (is identity.jwks_uri the issuer's?).".into(),
        Reason::BadSignature => "The signature does not verify: the token was altered or signed by someone else. Microsoft Graph tokens (header nonce) can only be verified by Graph: use --no-verify, or verify_signature = false on their route.".into(),
        Reason::DisallowedAlg => "alg must be an asymmetric algorithm (RS256, PS256, ES256, ...) that fits the signing key.".into(),
        Reason::MalformedToken => "Not a well-formed JWT: three base64url parts, JSON header and claims of the expected types.".into(),
        Reason::MissingToken => "No token was given.".into(),
        Reason::LegacyAuth => "Legacy authentication cannot prove MFA: use an OAuth access token.".into(),
        Reason::PasswordGrant => "The password grant (ROPC) cannot perform MFA: use the authorization code flow.".into(),
        Reason::GrantNotAllowed => "The route's deny_grants lists this grant type (e.g. the device code flow): use the authorization code flow.".into(),
        Reason::ClientSecretNotAllowed => "The route sets require_client_assertion: authenticate the application with a certificate (client_assertion), not a client secret.".into(),
        Reason::TokenClientNotAllowed => "The route's allowed_token_clients does not list this client_id.".into(),
        Reason::AudienceHostMismatch => {
            "Through the egress proxy a token may only travel to the host its audience names: request a token for this host's API.".into()
        }
        Reason::KeysUnavailable
        | Reason::MisdirectedRequest
        | Reason::EgressDenied
        | Reason::TlsRequired
        | Reason::ProxyAuthRequired
        | Reason::RateLimited
        | Reason::Overloaded
        | Reason::RateLimitStoreUnavailable
        | Reason::NoRoute
        | Reason::BadRequest
        | Reason::UpstreamUnavailable
        | Reason::UpstreamTimeout => String::new(),
        // Found in a request body, which check-token does not read.
        Reason::ComputeAbuseSuspected | Reason::ComputeBodyTooLarge => String::new(),
    }
}
