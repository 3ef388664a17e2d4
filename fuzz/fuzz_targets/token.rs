//! Credentials, token parsing and claim classification: from the
//! `Authorization` and auxiliary header values to the claim checks and the
//! principal type. Nothing may panic.
#![no_main]

use std::collections::HashSet;

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use mfagate::auth::claims::{ClaimChecks, Claims};
use mfagate::auth::{credentials, token};
use mfagate::config::IssuerTemplate;
use mfagate::policy::{ClientType, classify};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // One header value, or several separated by newlines.
    for value in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, value.clone());
            headers.append(&credentials::AUXILIARY, value.clone());
            headers.append(http::header::COOKIE, value);
        }
    }
    let read = credentials::read(&headers, 16 * 1024);
    let _ = credentials::auxiliary(&headers, 16 * 1024);
    let _ = credentials::stray(std::str::from_utf8(data).ok(), &headers);
    let _ = credentials::every_token(std::str::from_utf8(data).unwrap_or("/"), &headers);
    let _ = credentials::jose_in(&String::from_utf8_lossy(data));
    let text = match read.bearer {
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
