//! What a request asks for, read by the parsers that must read it as a
//! lenient upstream does: token requests on a login route (query and body
//! in every form), Partner Center customer ids, and paths. Nothing may
//! panic, and what the parsers accept must be stable: a customer path
//! rewritten to its canonical form reads back as the same customer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfagate::policy::gdap::{customer_in_path, parse_guid};
use mfagate::policy::legacy::{TokenRequest, ws_trust};
use mfagate::proxy::hygiene::normalize_path;

fuzz_target!(|data: &[u8]| {
    // `content type \n query \n body`, each part optional.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let content_type = parts.next().and_then(|c| std::str::from_utf8(c).ok());
    let query = parts.next().and_then(|q| std::str::from_utf8(q).ok());
    let body = parts.next().unwrap_or_default();
    if let Ok(request) = TokenRequest::parse(query, content_type, body) {
        let _ = request.check();
        let _ = request.grant_label();
    }
    let text = String::from_utf8_lossy(data);
    let _ = ws_trust(&text);
    if let Some(id) = parse_guid(&text) {
        assert_eq!(parse_guid(&id).as_deref(), Some(id.as_str()), "a canonical GUID reads back as itself");
    }
    let path = format!("/v1/customers/{text}");
    let normalized = match normalize_path(&path) {
        Ok(Some(p)) => p,
        Ok(None) => path,
        Err(_) => return,
    };
    if let Ok(Some(customer)) = customer_in_path(&normalized) {
        let forwarded = customer.path.unwrap_or(normalized);
        let again = customer_in_path(&forwarded).ok().flatten().map(|c| c.id);
        assert_eq!(again.as_deref(), Some(customer.id.as_str()), "the forwarded path names the checked customer");
    }
});
