//! A key's public key, parsed once per algorithm it may verify (aws-lc-rs
//! `ParsedPublicKey`), so that checking a signature neither rebuilds the key
//! nor allocates.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::token::Algorithm;

/// The longest signature read: RSA-8192, the largest modulus the RSA
/// algorithms accept.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Indexed by `Algorithm as usize`; `None` for the algorithms the key may not verify.
pub struct Verifiers([Option<ParsedPublicKey>; Algorithm::ALL.len()]);

impl Verifiers {
    /// An RSA key (`n`, `e`: base64url big-endian integers) for each RSA
    /// algorithm of `algs`. Moduli outside 2048–8192 bits fail every signature.
    pub fn rsa(n: &str, e: &str, algs: &[Algorithm]) -> Option<Self> {
        let (n, e) = (URL_SAFE_NO_PAD.decode(n).ok()?, URL_SAFE_NO_PAD.decode(e).ok()?);
        let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
        let mut verifiers = [const { None }; Algorithm::ALL.len()];
        for &alg in algs {
            if let Some(params) = rsa_parameters(alg) {
                verifiers[alg as usize] = Some(components.to_parsed_public_key(params).ok()?);
            }
        }
        Some(Self(verifiers))
    }

    /// An EC key (`x`, `y`: base64url coordinates of exactly the curve's
    /// size, RFC 7518 §6.2.1.2) for `alg` (ES256 on P-256, ES384 on P-384),
    /// when `usable`. Signatures are `r || s` of fixed length (RFC 7518 §3.4).
    pub fn ec(x: &str, y: &str, alg: Algorithm, usable: bool) -> Option<Self> {
        let (size, verification) = match alg {
            Algorithm::ES256 => (32, &signature::ECDSA_P256_SHA256_FIXED),
            Algorithm::ES384 => (48, &signature::ECDSA_P384_SHA384_FIXED),
            _ => return None,
        };
        let (x, y) = (URL_SAFE_NO_PAD.decode(x).ok()?, URL_SAFE_NO_PAD.decode(y).ok()?);
        if x.len() != size || y.len() != size {
            return None;
        }
        // The uncompressed point (SEC 1 §2.3.3); parsing checks it is on the curve.
        let key = ParsedPublicKey::new(verification, [&[0x04][..], &x, &y].concat()).ok()?;
        let mut verifiers = [const { None }; Algorithm::ALL.len()];
        verifiers[alg as usize] = usable.then_some(key);
        Some(Self(verifiers))
    }

    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.0[alg as usize].is_some()
    }

    /// Checks `signature` (base64url) over `signing_input` with `alg`; false
    /// when the key may not verify `alg`.
    pub fn verify(&self, alg: Algorithm, signing_input: &str, signature: &str) -> bool {
        let Some(key) = &self.0[alg as usize] else { return false };
        // RSA-4096 and smaller (all of Entra's keys) fit the small buffer;
        // zeroing the large one costs as much as the rest of the parsing.
        if signature.len() <= base64_len(SMALL_SIGNATURE_BYTES) {
            verify_with::<SMALL_SIGNATURE_BYTES>(key, signing_input, signature)
        } else {
            verify_with::<MAX_SIGNATURE_BYTES>(key, signing_input, signature)
        }
    }
}

const SMALL_SIGNATURE_BYTES: usize = 512;

/// Unpadded base64 length of `bytes` bytes.
const fn base64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

fn verify_with<const N: usize>(key: &ParsedPublicKey, signing_input: &str, signature: &str) -> bool {
    let mut decoded = [0u8; N];
    // A segment too long for the buffer fails to decode.
    let Ok(len) = URL_SAFE_NO_PAD.decode_slice(signature, &mut decoded) else { return false };
    key.verify_sig(signing_input.as_bytes(), &decoded[..len]).is_ok()
}

/// PKCS#1 v1.5 (RFC 7518 §3.3) or PSS (§3.5) with the algorithm's hash.
fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 | Algorithm::ES384 => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm as JwtAlgorithm, EncodingKey};
    use serde_json::Value;

    use super::*;
    use crate::auth::keys::{VerifyKey, parse_jwk};

    const INPUT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJhbXIiOlsicHdkIiwibWZhIl19";

    /// A key pair made here: the signer is jsonwebtoken, the verifier ours.
    struct Pair {
        signing: EncodingKey,
        jwk: Value,
    }

    impl Pair {
        fn new(alg: &'static rcgen::SignatureAlgorithm, jwt_alg: JwtAlgorithm) -> Self {
            let pair = rcgen::KeyPair::generate_for(alg).unwrap();
            let pem = pair.serialize_pem();
            let signing = match jwt_alg {
                JwtAlgorithm::ES256 | JwtAlgorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
                _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
            }
            .unwrap();
            let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&signing, jwt_alg).unwrap()).unwrap();
            jwk.as_object_mut().unwrap().retain(|k, _| matches!(k.as_str(), "kty" | "n" | "e" | "crv" | "x" | "y"));
            jwk["kid"] = "k".into();
            Self { signing, jwk }
        }

        fn key(&self) -> VerifyKey {
            parse_jwk(self.jwk.clone()).unwrap()
        }

        fn key_with(&self, member: &str, value: &str) -> Option<VerifyKey> {
            let mut jwk = self.jwk.clone();
            jwk[member] = value.into();
            parse_jwk(jwk)
        }

        fn sign(&self, alg: JwtAlgorithm, input: &str) -> String {
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.signing, alg).unwrap()
        }
    }

    struct Pairs {
        rsa: Pair,
        rsa_other: Pair,
        p256: Pair,
        p256_other: Pair,
        p384: Pair,
    }

    fn pairs() -> &'static Pairs {
        static PAIRS: OnceLock<Pairs> = OnceLock::new();
        PAIRS.get_or_init(|| Pairs {
            rsa: Pair::new(&rcgen::PKCS_RSA_SHA256, JwtAlgorithm::RS256),
            rsa_other: Pair::new(&rcgen::PKCS_RSA_SHA256, JwtAlgorithm::RS256),
            p256: Pair::new(&rcgen::PKCS_ECDSA_P256_SHA256, JwtAlgorithm::ES256),
            p256_other: Pair::new(&rcgen::PKCS_ECDSA_P256_SHA256, JwtAlgorithm::ES256),
            p384: Pair::new(&rcgen::PKCS_ECDSA_P384_SHA384, JwtAlgorithm::ES384),
        })
    }

    fn ours(alg: JwtAlgorithm) -> Algorithm {
        Algorithm::parse(&format!("{alg:?}")).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Every way a signature can be wrong, for one algorithm.
    fn check(signer: &Pair, other: &Pair, jwt_alg: JwtAlgorithm) {
        let (key, alg) = (signer.key(), ours(jwt_alg));
        let sig = signer.sign(jwt_alg, INPUT);
        assert!(key.verify(alg, INPUT, &sig), "{alg:?}: valid signature");
        assert!(!other.key().verify(alg, INPUT, &sig), "{alg:?}: another key");
        assert!(!key.verify(alg, &format!("{INPUT}x"), &sig), "{alg:?}: payload altered");
        let mut flipped = URL_SAFE_NO_PAD.decode(&sig).unwrap();
        flipped[3] ^= 1;
        assert!(!key.verify(alg, INPUT, &b64(&flipped)), "{alg:?}: signature altered");
        assert!(!key.verify(alg, INPUT, &sig[..sig.len() - 4]), "{alg:?}: signature truncated");
        let len = URL_SAFE_NO_PAD.decode(&sig).unwrap().len();
        assert!(!key.verify(alg, INPUT, &b64(&vec![0; len])), "{alg:?}: zero signature");
        assert!(!key.verify(alg, INPUT, ""), "{alg:?}: empty signature");
        assert!(!key.verify(alg, INPUT, &b64(&vec![1; 2000])), "{alg:?}: oversized signature");
        assert!(!key.verify(alg, INPUT, &format!("{sig}=")), "{alg:?}: padded signature");
    }

    #[test]
    fn rsa_pkcs1_and_pss() {
        let p = pairs();
        for alg in [
            JwtAlgorithm::RS256,
            JwtAlgorithm::RS384,
            JwtAlgorithm::RS512,
            JwtAlgorithm::PS256,
            JwtAlgorithm::PS384,
            JwtAlgorithm::PS512,
        ] {
            check(&p.rsa, &p.rsa_other, alg);
        }
    }

    #[test]
    fn ecdsa_p256_and_p384() {
        let p = pairs();
        check(&p.p256, &p.p256_other, JwtAlgorithm::ES256);
        check(&p.p384, &p.p256, JwtAlgorithm::ES384);
    }

    #[test]
    fn es256_with_r_and_s_zero_is_refused() {
        // The "psychic signature" (CVE-2022-21449): r = s = 0 verifies any
        // message under a verifier that skips the range check.
        let key = pairs().p256.key();
        assert!(!key.verify(Algorithm::ES256, INPUT, &b64(&[0; 64])));
        assert!(!key.verify(Algorithm::ES256, "", &b64(&[0; 64])));
    }

    #[test]
    fn the_algorithm_must_fit_the_key() {
        let p = pairs();
        let (rsa, p256, p384) = (p.rsa.key(), p.p256.key(), p.p384.key());
        // A valid signature, checked under an algorithm the key may not use.
        let es256 = p.p256.sign(JwtAlgorithm::ES256, INPUT);
        assert!(!rsa.accepts(Algorithm::ES256) && !rsa.verify(Algorithm::ES256, INPUT, &es256));
        assert!(!p384.accepts(Algorithm::ES256) && !p384.verify(Algorithm::ES256, INPUT, &es256));
        let rs256 = p.rsa.sign(JwtAlgorithm::RS256, INPUT);
        assert!(!p256.accepts(Algorithm::RS256) && !p256.verify(Algorithm::RS256, INPUT, &rs256));
        assert!(!p256.accepts(Algorithm::ES384));
        // A PKCS#1 signature is not a PSS one.
        assert!(!rsa.verify(Algorithm::PS256, INPUT, &rs256));
        assert!(!rsa.verify(Algorithm::RS384, INPUT, &rs256));
    }

    #[test]
    fn a_stated_alg_is_the_only_one_verified() {
        let p = pairs();
        let rs256_only = p.rsa.key_with("alg", "RS256").unwrap();
        let ps256 = p.rsa.sign(JwtAlgorithm::PS256, INPUT);
        assert!(p.rsa.key().verify(Algorithm::PS256, INPUT, &ps256));
        assert!(!rs256_only.accepts(Algorithm::PS256) && !rs256_only.verify(Algorithm::PS256, INPUT, &ps256));
        assert!(rs256_only.verify(Algorithm::RS256, INPUT, &p.rsa.sign(JwtAlgorithm::RS256, INPUT)));
        // An `alg` of another family: the key is kept but verifies nothing.
        let confused = p.rsa.key_with("alg", "ES256").unwrap();
        assert!(Algorithm::ALL.iter().all(|a| !confused.accepts(*a)));
        let confused = p.p256.key_with("alg", "RS256").unwrap();
        assert!(!confused.verify(Algorithm::ES256, INPUT, &p.p256.sign(JwtAlgorithm::ES256, INPUT)));
        for hmac in ["HS256", "HS384", "HS512", "none"] {
            assert!(p.rsa.key_with("alg", hmac).is_none(), "{hmac}");
        }
    }

    #[test]
    fn malformed_key_material_is_skipped() {
        let p = pairs();
        let x = p.p256.jwk["x"].as_str().unwrap();
        // A coordinate of the wrong size (leading byte dropped), not base64url,
        // or a point off the curve.
        let short = b64(&URL_SAFE_NO_PAD.decode(x).unwrap()[1..]);
        assert!(p.p256.key_with("x", &short).is_none());
        assert!(p.p256.key_with("x", "not base64!").is_none());
        assert!(p.p256.key_with("x", &b64(&[1; 32])).is_none());
        assert!(p.p256.key_with("crv", "P-384").is_none());
        assert!(p.rsa.key_with("n", "not base64!").is_none());
        assert!(p.rsa.key_with("e", "").is_none());
    }

    /// Signatures of every modulus size Entra could use, on both sides of
    /// the small decoding buffer (RSA-4096 fills it exactly).
    #[test]
    fn rsa_moduli_up_to_8192_bits() {
        use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
        for size in [KeySize::Rsa4096, KeySize::Rsa8192] {
            let pair = KeyPair::generate(size).unwrap();
            let public: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
            let key = Verifiers::rsa(&b64(&public.n), &b64(&public.e), &[Algorithm::RS256]).unwrap();
            let mut signature = vec![0; pair.public_modulus_len()];
            let rng = aws_lc_rs::rand::SystemRandom::new();
            pair.sign(&RSA_PKCS1_SHA256, &rng, INPUT.as_bytes(), &mut signature).unwrap();
            assert!(key.verify(Algorithm::RS256, INPUT, &b64(&signature)), "{size:?}");
            signature[7] ^= 1;
            assert!(!key.verify(Algorithm::RS256, INPUT, &b64(&signature)), "{size:?} altered");
            // One byte beyond the largest signature does not decode.
            let oversized = vec![1u8; MAX_SIGNATURE_BYTES + 1];
            assert!(!key.verify(Algorithm::RS256, INPUT, &b64(&oversized)));
        }
    }
}
