//! Fingerprints: what the decision log and the policy record in place of a
//! value that must not be written (a token's `uti`, a user name).

/// Lower-case hexadecimal SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// A user name's fingerprint: names are case-insensitive, so lower-cased first.
pub fn user_fingerprint(name: &str) -> String {
    sha256_hex(name.to_lowercase().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            user_fingerprint("Admin@Contoso.onmicrosoft.com"),
            user_fingerprint("admin@contoso.onmicrosoft.com")
        );
    }
}
