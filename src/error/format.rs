//! The shape of an answer's body, per route (`error_format`): each API's
//! own error contract, so that the client's SDK reads the reason instead of
//! `None`.
//!
//! - `partner-center`: `{"code","description","data","source","reason","correlationId"}`,
//!   Partner Center's contract.
//! - `arm`: `{"error":{"code","message","reason","correlationId"}}`, what
//!   azure-core's `ARMErrorFormat` and `ODataV4Format` read.
//! - `graph`: `{"error":{"code","message","innerError":{"date","request-id",
//!   "client-request-id"},"reason","correlationId"}}`, kiota's `ODataError`.
//! - `oauth`: RFC 6749 §5.2 `{"error","error_description"}` with Entra's
//!   `correlation_id` and the gateway's `reason` beside them, what MSAL and
//!   azure-identity read from a token endpoint.
//!
//! Every format carries the stable `reason` and the correlation id in a
//! field of its own; statuses and challenges do not depend on the format.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::reason::{Class, Reason};

/// How a route's refusals are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    #[default]
    PartnerCenter,
    Arm,
    Graph,
    OAuth,
}

/// Hosts and audiences (as `audience_key` writes them) of Azure Resource
/// Manager, in every cloud.
fn names_arm(names: &[&str]) -> bool {
    names.iter().any(|n| ARM.iter().any(|l| n.eq_ignore_ascii_case(l)))
}

const ARM: [&str; 8] = [
    "management.azure.com",
    "management.core.windows.net",
    "management.usgovcloudapi.net",
    "management.core.usgovcloudapi.net",
    "management.chinacloudapi.cn",
    "management.core.chinacloudapi.cn",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "management.microsoftazure.de",
];

/// Hosts and audiences of Microsoft Graph, in every cloud.
const GRAPH: [&str; 6] = [
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
    "canary.graph.microsoft.com",
];

impl ErrorFormat {
    pub const ALL: [ErrorFormat; 4] = [Self::PartnerCenter, Self::Arm, Self::Graph, Self::OAuth];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartnerCenter => "partner-center",
            Self::Arm => "arm",
            Self::Graph => "graph",
            Self::OAuth => "oauth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The format of a route that does not name one: from its kind, then
    /// from the hosts it serves and forwards to, then from its audiences.
    pub fn infer<'a>(
        partner_center: bool,
        login: bool,
        hosts: impl IntoIterator<Item = &'a str>,
        audiences: &'a [String],
    ) -> Self {
        if login {
            return Self::OAuth;
        }
        if partner_center {
            return Self::PartnerCenter;
        }
        let names: Vec<&str> = hosts.into_iter().chain(audiences.iter().map(|a| audience_host(a))).collect();
        let any = |list: &[&str]| names.iter().any(|n| list.iter().any(|l| n.eq_ignore_ascii_case(l)));
        if names_arm(&names) {
            Self::Arm
        } else if any(&GRAPH) {
            Self::Graph
        } else {
            Self::PartnerCenter
        }
    }

    /// True when a route serving or forwarding to `hosts` with these
    /// audiences fronts Azure Resource Manager.
    pub fn is_arm<'a>(hosts: impl IntoIterator<Item = &'a str>, audiences: &'a [String]) -> bool {
        let names: Vec<&str> = hosts.into_iter().chain(audiences.iter().map(|a| audience_host(a))).collect();
        names_arm(&names)
    }

    /// The body of an answer in this format.
    pub fn body(self, answer: &Fields<'_>) -> Value {
        let Fields { reason, code, description, correlation_id, request_id, client_request_id } = *answer;
        match self {
            Self::PartnerCenter => json!({
                "code": code,
                "description": description,
                "data": [],
                "source": "mfagate",
                "reason": reason.as_str(),
                "correlationId": correlation_id,
            }),
            Self::Arm => json!({
                "error": {
                    "code": code,
                    "message": description,
                    "reason": reason.as_str(),
                    "correlationId": correlation_id,
                }
            }),
            Self::Graph => json!({
                "error": {
                    "code": code,
                    "message": description,
                    "innerError": {
                        "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                        "request-id": request_id,
                        "client-request-id": client_request_id.unwrap_or(correlation_id),
                    },
                    "reason": reason.as_str(),
                    "correlationId": correlation_id,
                }
            }),
            Self::OAuth => json!({
                "error": oauth_error(reason),
                "error_description": description,
                "reason": reason.as_str(),
                "correlation_id": correlation_id,
            }),
        }
    }
}

/// What an answer says, whatever its shape.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub reason: Reason,
    /// Partner Center's code for missing MFA, else the reason.
    pub code: &'a str,
    pub description: &'a str,
    pub correlation_id: &'a str,
    pub request_id: &'a str,
    /// The client's own `client-request-id`, when it sent a usable one.
    pub client_request_id: Option<&'a str>,
}

/// RFC 6749 §5.2's `error` for a refused token request: `invalid_request`
/// for what is malformed, `unauthorized_client` for what the policy refuses,
/// and Entra's `temporarily_unavailable` when the gateway or the token
/// endpoint cannot answer now.
fn oauth_error(reason: Reason) -> &'static str {
    match reason.class() {
        Class::Request => "invalid_request",
        Class::Capacity | Class::Upstream => "temporarily_unavailable",
        Class::Credential | Class::Rule(_) | Class::Egress => "unauthorized_client",
    }
}

/// The host of an audience URI (`https://graph.microsoft.com/` →
/// `graph.microsoft.com`); an application id is returned as it is.
fn audience_host(audience: &str) -> &str {
    let rest = audience.split_once("://").map_or(audience, |(_, rest)| rest);
    rest.split(['/', ':', '?', '#']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(pc: bool, login: bool, hosts: &[&str], audiences: &[&str]) -> ErrorFormat {
        let audiences: Vec<String> = audiences.iter().map(|a| a.to_string()).collect();
        ErrorFormat::infer(pc, login, hosts.iter().copied(), &audiences)
    }

    #[test]
    fn defaults_follow_the_route() {
        assert_eq!(infer(true, false, &["api.partnercenter.microsoft.com"], &[]), ErrorFormat::PartnerCenter);
        assert_eq!(infer(false, true, &["login.microsoftonline.com"], &[]), ErrorFormat::OAuth);
        assert_eq!(infer(false, false, &["127.0.0.1"], &["https://management.azure.com"]), ErrorFormat::Arm);
        assert_eq!(infer(false, false, &["127.0.0.1"], &["https://management.core.windows.net"]), ErrorFormat::Arm);
        assert_eq!(infer(false, false, &["MANAGEMENT.azure.com"], &["api://x"]), ErrorFormat::Arm);
        assert_eq!(infer(false, false, &["127.0.0.1"], &["https://graph.microsoft.com"]), ErrorFormat::Graph);
        assert_eq!(infer(false, false, &["127.0.0.1"], &["00000003-0000-0000-c000-000000000000"]), ErrorFormat::Graph);
        assert_eq!(infer(false, false, &["graph.microsoft.us"], &[]), ErrorFormat::Graph);
        assert_eq!(
            infer(false, false, &["outlook.office365.com"], &["https://outlook.office365.com"]),
            ErrorFormat::PartnerCenter
        );
        // A look-alike is not Graph.
        assert_eq!(infer(false, false, &["graph.microsoft.com.evil.example"], &[]), ErrorFormat::PartnerCenter);
    }

    #[test]
    fn names_round_trip() {
        for f in ErrorFormat::ALL {
            assert_eq!(ErrorFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(ErrorFormat::parse("json"), None);
    }

    #[test]
    fn oauth_errors_by_class() {
        assert_eq!(oauth_error(Reason::BadRequest), "invalid_request");
        assert_eq!(oauth_error(Reason::PasswordGrant), "unauthorized_client");
        assert_eq!(oauth_error(Reason::RateLimited), "temporarily_unavailable");
        assert_eq!(oauth_error(Reason::UpstreamUnavailable), "temporarily_unavailable");
    }
}
