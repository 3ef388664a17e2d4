//! Which hosts the proxy intercepts, tunnels or refuses. A host is *guarded*
//! when a route's `host` names it (exactly, or as `*.name`); guarded hosts
//! are always intercepted and never reached any other way. Other hosts are
//! tunnelled blind when the lists and `default` allow it. The device
//! authentication hosts (`entra::NEVER_INTERCEPTED`) are never guarded, not
//! even by a wildcard route: they are tunnelled when allowed.

use crate::config::{DefaultAction, EgressConfig, RouteConfig};
pub use crate::entra::is_never_intercepted;
pub use crate::host::{BadHost, HostPattern, is_wildcard, normalize, pattern_matches};

/// What the proxy does with a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetAction {
    /// A guarded host: terminate TLS and enforce the route's policy.
    Intercept,
    /// Another allowed host: a blind tunnel (CONNECT) or a plain forward.
    Pass,
    Deny(TargetRefusal),
}

/// Why a target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRefusal {
    IpLiteral,
    Port,
    DenyList,
    NotAllowed,
    /// Plain HTTP to a guarded host: it must be reached over TLS.
    TlsRequired,
}

impl TargetRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IpLiteral => "ip_literal",
            Self::Port => "port",
            Self::DenyList => "deny_list",
            Self::NotAllowed => "not_allowed",
            Self::TlsRequired => "tls_required",
        }
    }
}

/// The host rules of the egress listener.
#[derive(Debug, Clone)]
pub struct HostRules {
    guarded: Vec<String>,
    allow: Vec<HostPattern>,
    deny: Vec<HostPattern>,
    default: DefaultAction,
    connect_ports: Vec<u16>,
    http_ports: Vec<u16>,
}

impl HostRules {
    pub fn new(config: &EgressConfig, routes: &[RouteConfig]) -> Self {
        Self {
            guarded: routes.iter().filter_map(|r| r.host.clone()).collect(),
            allow: config.allow_hosts.clone(),
            deny: config.deny_hosts.clone(),
            default: config.default,
            connect_ports: config.connect_ports.clone(),
            http_ports: config.http_ports.clone(),
        }
    }

    /// True when a route guards `host` (normalised). The device
    /// authentication hosts never are, whatever a wildcard covers.
    pub fn is_guarded(&self, host: &str) -> bool {
        !is_never_intercepted(host) && self.guarded.iter().any(|p| pattern_matches(p, host))
    }

    /// The exact host names and wildcard patterns routes guard.
    pub fn guarded(&self) -> &[String] {
        &self.guarded
    }

    /// A `CONNECT host:port` (host normalised).
    pub fn connect(&self, host: &str, port: u16) -> TargetAction {
        if self.deny.iter().any(|p| p.matches(host)) {
            return TargetAction::Deny(TargetRefusal::DenyList);
        }
        if !self.connect_ports.contains(&port) {
            return TargetAction::Deny(TargetRefusal::Port);
        }
        if self.is_guarded(host) {
            return TargetAction::Intercept;
        }
        self.allowed(host)
    }

    /// A plain `GET http://host:port/...` (host normalised).
    pub fn plain(&self, host: &str, port: u16) -> TargetAction {
        if self.deny.iter().any(|p| p.matches(host)) {
            return TargetAction::Deny(TargetRefusal::DenyList);
        }
        if self.is_guarded(host) {
            return TargetAction::Deny(TargetRefusal::TlsRequired);
        }
        if !self.http_ports.contains(&port) {
            return TargetAction::Deny(TargetRefusal::Port);
        }
        self.allowed(host)
    }

    fn allowed(&self, host: &str) -> TargetAction {
        if self.allow.iter().any(|p| p.matches(host)) || self.default == DefaultAction::Tunnel {
            TargetAction::Pass
        } else {
            TargetAction::Deny(TargetRefusal::NotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(default: DefaultAction) -> HostRules {
        HostRules {
            guarded: vec!["api.partnercenter.microsoft.com".into(), "*.graph.example".into()],
            allow: vec![HostPattern::parse("*.example.net").unwrap(), HostPattern::parse("pypi.org").unwrap()],
            deny: vec![HostPattern::parse("bad.example.net").unwrap()],
            default,
            connect_ports: vec![443],
            http_ports: vec![80],
        }
    }

    #[test]
    fn patterns() {
        let p = HostPattern::parse("*.Example.NET.").unwrap();
        assert_eq!(p.as_str(), "*.example.net");
        assert!(p.matches("a.example.net"));
        assert!(p.matches("a.b.example.net"));
        assert!(!p.matches("example.net"));
        assert!(!p.matches("aexample.net"));
        let exact = HostPattern::parse("pypi.org").unwrap();
        assert!(exact.matches("pypi.org"));
        assert!(!exact.matches("x.pypi.org"));
        for bad in ["", "*", "*.", "a.*.b", "http://x", "x/y", "x:1", "127.0.0.1", "a..b", "-*.x", "[::1]"] {
            assert!(HostPattern::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn addresses_in_disguise_are_ip_literals() {
        for ip in ["127.0.0.1", "[::1]", "::1", "127.1", "2130706433", "0x7f.1", "10.0.0.0x1"] {
            assert_eq!(normalize(ip), Err(BadHost::IpLiteral), "{ip}");
        }
        assert_eq!(normalize("API.PartnerCenter.Microsoft.com.").unwrap(), "api.partnercenter.microsoft.com");
        assert_eq!(normalize("1password.com").unwrap(), "1password.com");
        assert_eq!(normalize("a b"), Err(BadHost::Invalid));
        assert_eq!(normalize(&format!("{}.com", "x".repeat(64))), Err(BadHost::Invalid));
    }

    #[test]
    fn connect_verdicts() {
        let r = rules(DefaultAction::Deny);
        assert_eq!(r.connect("api.partnercenter.microsoft.com", 443), TargetAction::Intercept);
        assert_eq!(r.connect("v1.graph.example", 443), TargetAction::Intercept);
        assert_eq!(r.connect("api.partnercenter.microsoft.com", 8443), TargetAction::Deny(TargetRefusal::Port));
        assert_eq!(r.connect("files.example.net", 443), TargetAction::Pass);
        assert_eq!(r.connect("bad.example.net", 443), TargetAction::Deny(TargetRefusal::DenyList));
        assert_eq!(r.connect("elsewhere.org", 443), TargetAction::Deny(TargetRefusal::NotAllowed));
        let open = rules(DefaultAction::Tunnel);
        assert_eq!(open.connect("elsewhere.org", 443), TargetAction::Pass);
        assert_eq!(open.connect("elsewhere.org", 22), TargetAction::Deny(TargetRefusal::Port));
        assert_eq!(open.connect("bad.example.net", 443), TargetAction::Deny(TargetRefusal::DenyList));
    }

    #[test]
    fn device_hosts_are_never_intercepted_even_under_a_wildcard() {
        let mut r = rules(DefaultAction::Deny);
        r.guarded = vec!["*.microsoftonline.com".into(), "*.windows.net".into()];
        assert_eq!(r.connect("login.microsoftonline.com", 443), TargetAction::Intercept);
        for host in crate::entra::NEVER_INTERCEPTED {
            assert!(!r.is_guarded(host), "{host}");
            assert_eq!(r.connect(host, 443), TargetAction::Deny(TargetRefusal::NotAllowed), "{host}");
            r.allow.push(HostPattern::parse(host).unwrap());
            assert_eq!(r.connect(host, 443), TargetAction::Pass, "{host}: tunnelled blind when allowed");
            assert_eq!(r.plain(host, 80), TargetAction::Pass, "{host}");
        }
    }

    #[test]
    fn plain_http_never_reaches_a_guarded_host() {
        let r = rules(DefaultAction::Tunnel);
        assert_eq!(r.plain("api.partnercenter.microsoft.com", 80), TargetAction::Deny(TargetRefusal::TlsRequired));
        assert_eq!(r.plain("api.partnercenter.microsoft.com", 443), TargetAction::Deny(TargetRefusal::TlsRequired));
        assert_eq!(r.plain("files.example.net", 80), TargetAction::Pass);
        assert_eq!(r.plain("files.example.net", 8080), TargetAction::Deny(TargetRefusal::Port));
    }
}
