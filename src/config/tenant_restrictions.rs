//! `[egress.tenant_restrictions]`: the headers the egress proxy adds to
//! every request to Entra's sign-in hosts (tenant restrictions v2, and the
//! v1 pair when configured), after removing any copy the client sent.

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use crate::entra::is_guid;

/// Tenant restrictions v2: `<tenant-id>:<policy-id>`.
pub static V2_POLICY: HeaderName = HeaderName::from_static("sec-restrict-tenant-access-policy");
/// Tenant restrictions v1: the tenants sign-in is allowed to, comma-separated.
pub static V1_TENANTS: HeaderName = HeaderName::from_static("restrict-access-to-tenants");
/// Tenant restrictions v1: the tenant that sets the restriction.
pub static V1_CONTEXT: HeaderName = HeaderName::from_static("restrict-access-context");

/// Every header of tenant restrictions: a client's copy is always removed.
pub static ALL_HEADERS: [&HeaderName; 3] = [&V2_POLICY, &V1_TENANTS, &V1_CONTEXT];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantRestrictions {
    pub tenant_id: String,
    pub policy_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrict_access_to_tenants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict_access_context: Option<String>,
}

/// The checked section: the header values, in the order they are added.
#[derive(Debug, Clone)]
pub struct TenantRestrictions {
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

const KEY: &str = "egress.tenant_restrictions";

pub fn from_raw(raw: &RawTenantRestrictions) -> Result<TenantRestrictions, ConfigError> {
    let guid = |field: &str, value: &str| {
        if is_guid(value) {
            Ok(value.to_ascii_lowercase())
        } else {
            Err(ConfigError::invalid(format!("{KEY}.{field}"), "not a GUID"))
        }
    };
    let tenant = guid("tenant_id", &raw.tenant_id)?;
    let policy = guid("policy_id", &raw.policy_id)?;
    let mut headers = vec![(V2_POLICY.clone(), value(&format!("{tenant}:{policy}"))?)];
    let context = raw.restrict_access_context.as_deref().map(|c| guid("restrict_access_context", c)).transpose()?;
    match (raw.restrict_access_to_tenants.is_empty(), context) {
        (true, None) => {}
        (false, Some(context)) => {
            let mut tenants = Vec::with_capacity(raw.restrict_access_to_tenants.len());
            for (i, t) in raw.restrict_access_to_tenants.iter().enumerate() {
                tenants.push(tenant_name(i, t)?);
            }
            headers.push((V1_TENANTS.clone(), value(&tenants.join(","))?));
            headers.push((V1_CONTEXT.clone(), value(&context)?));
        }
        (true, Some(_)) => {
            return Err(ConfigError::invalid(
                format!("{KEY}.restrict_access_to_tenants"),
                "required with restrict_access_context (v1 sends both headers or neither)",
            ));
        }
        (false, None) => {
            return Err(ConfigError::invalid(
                format!("{KEY}.restrict_access_context"),
                "required with restrict_access_to_tenants (v1 sends both headers or neither)",
            ));
        }
    }
    Ok(TenantRestrictions { headers })
}

/// A tenant as v1 lists it: a GUID or a domain name such as
/// `contoso.onmicrosoft.com`; never a list separator or a space.
fn tenant_name(i: usize, t: &str) -> Result<String, ConfigError> {
    let key = format!("{KEY}.restrict_access_to_tenants[{i}]");
    if is_guid(t) {
        return Ok(t.to_ascii_lowercase());
    }
    match crate::host::normalize(t) {
        Ok(name) if name.contains('.') => Ok(name),
        _ => Err(ConfigError::invalid(key, "a tenant id (GUID) or a domain name such as contoso.onmicrosoft.com")),
    }
}

fn value(s: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(s).map_err(|_| ConfigError::invalid(KEY, "not a valid header value"))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, TEST_ROUTE};
    use crate::policy::RouteKind;

    const EGRESS: &str = "[egress]\nlisten = \"127.0.0.1:3128\"\nca_cert = \"ca.pem\"\nca_key = \"ca.key\"\n";
    const T: &str = "6f1c0a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    const P: &str = "0b7e4c1d-2a3f-4b5c-9d6e-7f8a9b0c1d2e";

    fn section(extra: &str) -> String {
        format!("[egress.tenant_restrictions]\ntenant_id = \"{T}\"\npolicy_id = \"{P}\"\n{extra}")
    }

    fn key_of(text: &str) -> String {
        Config::from_toml(text).unwrap_err().key().unwrap_or_default().to_string()
    }

    #[test]
    fn v2_alone_and_v1_beside_it() {
        let config = Config::from_toml(&format!("{TEST_ROUTE}{EGRESS}{}", section(""))).unwrap();
        let tr = config.egress.unwrap().tenant_restrictions.unwrap();
        assert_eq!(tr.headers.len(), 1);
        assert_eq!(tr.headers[0].0.as_str(), "sec-restrict-tenant-access-policy");
        assert_eq!(tr.headers[0].1, format!("{T}:{P}").as_str());
        let v1 = section(&format!(
            "restrict_access_to_tenants = [\"Contoso.onmicrosoft.com\", \"{}\"]\nrestrict_access_context = \"{T}\"\n",
            T.to_uppercase()
        ));
        let config = Config::from_toml(&format!("{TEST_ROUTE}{EGRESS}{v1}")).unwrap();
        let headers = config.egress.unwrap().tenant_restrictions.unwrap().headers;
        assert_eq!(headers[1].1, format!("contoso.onmicrosoft.com,{T}").as_str());
        assert_eq!(headers[2].0.as_str(), "restrict-access-context");
    }

    #[test]
    fn every_sign_in_host_gets_a_login_route() {
        let config = Config::from_toml(&format!("{TEST_ROUTE}{EGRESS}{}", section(""))).unwrap();
        for host in crate::entra::SIGN_IN_HOSTS {
            let route = config.routes.iter().find(|r| r.host.as_deref() == Some(host)).expect(host);
            assert_eq!(route.policy.kind, RouteKind::Login, "{host}");
            assert_eq!(route.upstream.authority.as_str(), host);
        }
        // Without the section, none is added.
        let config = Config::from_toml(&format!("{TEST_ROUTE}{EGRESS}")).unwrap();
        assert_eq!(config.routes.len(), 1);
    }

    #[test]
    fn bad_sections_name_their_key() {
        let with = |extra: &str| format!("{TEST_ROUTE}{EGRESS}{}", section(extra));
        assert_eq!(key_of(&format!("{TEST_ROUTE}{}", section(""))), "egress.tenant_restrictions", "no [egress]");
        assert_eq!(
            key_of(&format!(
                "{TEST_ROUTE}{EGRESS}[egress.tenant_restrictions]\ntenant_id = \"x\"\npolicy_id = \"{P}\"\n"
            )),
            "egress.tenant_restrictions.tenant_id"
        );
        assert_eq!(
            key_of(&format!(
                "{TEST_ROUTE}{EGRESS}[egress.tenant_restrictions]\ntenant_id = \"{T}\"\npolicy_id = \"{T}:x\"\n"
            )),
            "egress.tenant_restrictions.policy_id"
        );
        assert_eq!(
            key_of(&with("restrict_access_context = \"x\"\n")),
            "egress.tenant_restrictions.restrict_access_context"
        );
        assert_eq!(
            key_of(&with(&format!("restrict_access_context = \"{T}\"\n"))),
            "egress.tenant_restrictions.restrict_access_to_tenants"
        );
        assert_eq!(
            key_of(&with(&format!(
                "restrict_access_to_tenants = [\"a.example\", \"a,b\"]\nrestrict_access_context = \"{T}\"\n"
            ))),
            "egress.tenant_restrictions.restrict_access_to_tenants[1]"
        );
        assert_eq!(
            key_of(&with("restrict_access_to_tenants = [\"contoso.onmicrosoft.com\"]\n")),
            "egress.tenant_restrictions.restrict_access_context"
        );
        assert_eq!(key_of(&with("v2 = true\n")), "egress.tenant_restrictions.v2");
    }

    #[test]
    fn a_route_for_a_sign_in_host_must_be_a_login_route() {
        let graph = "[[routes]]\nname = \"ms\"\nhost = \"*.microsoft.com\"\nupstream = \"https://graph.microsoft.com\"\naudiences = [\"https://graph.microsoft.com\"]\n";
        assert_eq!(key_of(&format!("{TEST_ROUTE}{graph}{EGRESS}{}", section(""))), "routes[1].kind");
        assert!(Config::from_toml(&format!("{TEST_ROUTE}{graph}{EGRESS}")).is_ok(), "fine without the section");
    }

    #[test]
    fn device_hosts_cannot_be_route_hosts() {
        for host in crate::entra::NEVER_INTERCEPTED {
            let route = format!(
                "[[routes]]\nname = \"d\"\nkind = \"login\"\nhost = \"{}.\"\nupstream = \"https://{host}\"\n",
                host.to_uppercase()
            );
            assert_eq!(key_of(&format!("{TEST_ROUTE}{route}")), "routes[1].host", "{host}");
        }
    }
}
