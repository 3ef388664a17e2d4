//! Token parsing and claim classification: from the `Authorization` header
//! value to the claim checks and the principal type. Nothing may panic.
#![no_main]

use std::collections::HashSet;

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use mfagate::auth::claims::{ClaimChecks, Claims};
use mfagate::auth::{bearer, token};
use mfagate::config::IssuerTemplate;
use mfagate::policy::{ClientType, classify};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(AUTHORIZATION, value);
    }
    let text = match bearer::extract(&headers, 16 * 1024) {
        Ok(t) => t.to_string(),
        Err(_) => String::from_utf8_lossy(data).into_owned(),
    };
    // The payload alone, as if it were a token's decoded claims.
    check(data);
    if let Ok(jws) = token::parse(&text) {
        check(&jws.payload);
    }
});

fn check(payload: &[u8]) {
    let Ok(claims) = Claims::parse(payload) else { return };
    let _ = classify(&claims);
    let _ = ClientType::of(&claims).is_confidential();
    let _ = claims.app_id();
    let checks = ClaimChecks {
        issuers: vec![
            IssuerTemplate::parse("https://sts.windows.net/{tenantid}/").unwrap(),
            IssuerTemplate::parse("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap(),
        ],
        tenants: HashSet::from(["df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50".to_string()]),
        skew_secs: 60,
    };
    let audiences = ["https://api.partnercenter.microsoft.com".to_string()];
    for now in [0, 1_700_000_000, i64::MAX, i64::MIN] {
        let _ = checks.check(&claims, &audiences, now);
    }
}
