//! Which forwarded requests get the tenant restrictions headers: those whose
//! destination is one of Entra's sign-in hosts, decided from where the
//! request goes (a route's upstream on the reverse-proxy listener, the
//! CONNECT target in egress mode), never from the listener it came in on.

use super::headers::Injection;

/// Per sign-in host, what its requests get; empty without
/// `[egress.tenant_restrictions]`.
#[derive(Default)]
pub struct SignInHeaders {
    hosts: Vec<(&'static str, Injection)>,
}

impl SignInHeaders {
    /// `hosts`: lower-case sign-in host names and their injections.
    pub fn new(hosts: Vec<(&'static str, Injection)>) -> Self {
        Self { hosts }
    }

    /// What a request to `host` gets: compared as host names are (case and
    /// a final dot ignored); an address or a name that is no sign-in host
    /// gets nothing.
    pub fn for_host(&self, host: &str) -> Option<&Injection> {
        if self.hosts.is_empty() {
            return None;
        }
        let host = crate::host::normalize(host).ok()?;
        self.hosts.iter().find(|(h, _)| *h == host).map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn injection() -> Injection {
        Injection {
            remove: &[],
            set: vec![(HeaderName::from_static("x-set"), HeaderValue::from_static("1"))],
            injected: prometheus::IntCounter::new("i", "i").unwrap(),
            client_header_removed: prometheus::IntCounter::new("r", "r").unwrap(),
        }
    }

    #[test]
    fn the_destination_is_compared_as_a_host_name() {
        let headers = SignInHeaders::new(vec![("login.microsoftonline.com", injection())]);
        let authority = |s: &str| s.parse::<http::uri::Authority>().unwrap();
        for spelled in ["login.microsoftonline.com", "LOGIN.MicrosoftOnline.com.", "login.microsoftonline.com:8443"] {
            assert!(headers.for_host(authority(spelled).host()).is_some(), "{spelled}");
        }
        for other in ["login.microsoftonline.com.evil.example", "127.0.0.1", "device.login.microsoftonline.com"] {
            assert!(headers.for_host(authority(other).host()).is_none(), "{other}");
        }
        assert!(SignInHeaders::default().for_host("login.microsoftonline.com").is_none());
    }
}
