//! What a bucket is keyed by: a client address or a claim value, as a
//! `u128` for the local store and as a Redis key name for the shared one.
//!
//! A Redis key is `{key_prefix}{kind}:{limit}:{id}`: `kind` is `r` for a
//! route's limit and `d` for the per-address budget of denied requests
//! (whose `id` is `b:{address}` for an address blocked for spending it);
//! `limit` is a digest of what the
//! limit is (route, key, interval and tolerance), so that a limit changed
//! by a reload starts new buckets, as the local store does, and a route
//! name with `:` in it cannot run into another's keys; `id` is a GUID or an
//! address in hex, or a digest of any other claim value. Nothing in a key
//! names a principal in clear but the GUIDs Entra already uses as ids.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::fingerprint::sha256_hex;

/// IPv4 addresses count one by one; IPv6 addresses by their /64, which is
/// what one subscriber usually gets.
pub fn peer_key(ip: IpAddr) -> u128 {
    // IPv4 keys are even, IPv6 prefixes odd (their low 64 bits are masked off).
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 1,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)) << 1,
            None => (u128::from(v6) & (u128::MAX << 64)) | 1,
        },
    }
}

/// A claim value as a bucket key: Entra's ids are GUIDs, which fit a `u128`
/// without allocating; anything else is hashed. A missing claim shares one bucket.
pub fn claim_key(value: Option<&str>) -> u128 {
    let Some(value) = value else { return 0 };
    match uuid::Uuid::try_parse(value) {
        Ok(id) => id.as_u128(),
        Err(_) => {
            let mut h = std::hash::DefaultHasher::new();
            value.hash(&mut h);
            u128::from(h.finish()) | (1 << 127)
        }
    }
}

/// A claim value as the last part of a Redis key: the same on every
/// replica and every build (`claim_key`'s hash is neither promised).
pub fn remote_claim(value: Option<&str>) -> String {
    match value.map(|v| (v, uuid::Uuid::try_parse(v))) {
        None => "-".to_string(),
        Some((_, Ok(id))) => format!("{:032x}", id.as_u128()),
        Some((v, Err(_))) => format!("h{}", &sha256_hex(v.as_bytes())[..32]),
    }
}

/// A client address as the last part of a Redis key.
pub fn remote_peer(ip: IpAddr) -> String {
    format!("{:x}", peer_key(ip))
}

/// The middle part of a Redis key: what the limit is.
pub fn limit_digest(parts: &[&str]) -> String {
    sha256_hex(parts.join("\n").as_bytes())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";

    #[test]
    fn ipv6_counts_by_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        assert_eq!(peer_key("::ffff:192.0.2.1".parse().unwrap()), peer_key("192.0.2.1".parse().unwrap()));
        assert_eq!(remote_peer(a), remote_peer(b));
        assert_ne!(remote_peer(a), remote_peer(c));
    }

    #[test]
    fn claim_keys() {
        assert_eq!(claim_key(Some(A)), claim_key(Some(&A.to_uppercase())));
        assert_ne!(claim_key(Some(A)), claim_key(Some(B)));
        assert_ne!(claim_key(Some("not-a-guid")), claim_key(None));
    }

    #[test]
    fn remote_keys_are_stable_and_distinct() {
        assert_eq!(remote_claim(Some(A)), "aaaaaaaa000000000000000000000001");
        assert_eq!(remote_claim(Some(A)), remote_claim(Some(&A.to_uppercase())));
        assert_eq!(remote_claim(Some(&format!("{{{A}}}"))), remote_claim(Some(A)), "one GUID, one bucket");
        // A value that is not a GUID cannot pass for one, nor for no value.
        let other = remote_claim(Some("aaaaaaaa000000000000000000000001x"));
        assert!(other.starts_with('h') && other.len() == 33, "{other}");
        assert_ne!(remote_claim(Some("")), remote_claim(None));
        assert_eq!(remote_claim(Some("x")), remote_claim(Some("x")));
        // Route names are digested: "a:b" + "c" and "a" + "b:c" differ.
        assert_ne!(limit_digest(&["a:b", "c"]), limit_digest(&["a", "b:c"]));
    }
}
