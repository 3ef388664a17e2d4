//! The proxy's own credentials (`Proxy-Authorization: Basic`, RFC 9110
//! §11.7.2 and RFC 7617). Compared in constant time through their SHA-256
//! digests, so neither the content nor the length of the expected value
//! leaks through timing. Credentials are never logged.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::PROXY_AUTHORIZATION;

use crate::config::ProxyCredentials;

pub struct ProxyAuth {
    expected: [u8; 32],
}

impl ProxyAuth {
    pub fn new(credentials: &ProxyCredentials) -> Self {
        Self { expected: sha256(format!("{}:{}", credentials.username, credentials.password).as_bytes()) }
    }

    /// True when the request carries exactly one `Proxy-Authorization: Basic`
    /// header with the configured user and password.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(PROXY_AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some((scheme, encoded)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return false;
        };
        constant_time_eq(&sha256(&decoded), &self.expected)
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn auth() -> ProxyAuth {
        ProxyAuth::new(&ProxyCredentials { username: "svc-automation".into(), password: "pa:ss w0rd".into() })
    }

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(PROXY_AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    #[test]
    fn admits_only_the_configured_pair() {
        let a = auth();
        assert!(a.admits(&with(&[&basic("svc-automation:pa:ss w0rd")])));
        assert!(a.admits(&with(&[&basic("svc-automation:pa:ss w0rd").replace("Basic", "basic")])));
        assert!(!a.admits(&with(&[])));
        assert!(!a.admits(&with(&[&basic("svc-automation:wrong")])));
        assert!(!a.admits(&with(&[&basic("other:pa:ss w0rd")])));
        assert!(!a.admits(&with(&[&basic("svc-automation:pa:ss w0rd"), &basic("svc-automation:pa:ss w0rd")])));
        assert!(!a.admits(&with(&["Bearer abc"])));
        assert!(!a.admits(&with(&["Basic !!!"])));
        assert!(!a.admits(&with(&["Basic"])));
    }
}
