//! Customer ids in Partner Center paths. Partner Center is ASP.NET, and
//! .NET's `Guid.Parse` reads a tenant id written in the N, D, B, P or X
//! form, in any case, with surrounding whitespace: each of those names the
//! same customer, and each is checked against the relationships. A segment
//! after `customers` that is neither a GUID nor one of Partner Center's
//! collections is refused.

use crate::support::idp::OTHER_TID;
use crate::support::{TestEnv, assert_rejected};

/// Tenants with no relationship, and with an ended one.
const STRANGER_TID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const FORMER_TID: &str = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";

/// As `customers_of_partner_center_calls_from_a_relationship_export` in
/// tests/policy.rs: OTHER_TID has a live relationship, FORMER_TID an expired one.
async fn env() -> (TestEnv, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let day = |offset: i64| mfagate::rfc3339::format(crate::support::idp::now() + offset * 86_400);
    let export = serde_json::json!({"value": [
        {"id": "r1", "status": "active", "endDateTime": day(30), "customer": {"tenantId": OTHER_TID}},
        {"id": "r2", "status": "expired", "endDateTime": day(-10), "customer": {"tenantId": FORMER_TID}},
    ]});
    let path = crate::support::write(dir.path(), "relationships.json", &export.to_string());
    let env = TestEnv::setup().route(&format!("customers = \"{}\"", path.display())).start().await;
    let token = env.idp.delegated().mint();
    (env, token, dir)
}

/// `id` (canonical) as a path segment in each form `Guid.Parse` accepts.
fn forms(id: &str) -> Vec<(&'static str, String)> {
    let n = id.replace('-', "");
    let bytes: Vec<String> = (0..8).map(|i| format!("0x{}", &n[16 + 2 * i..18 + 2 * i])).collect();
    let x = format!("0x{},0x{},0x{},%7B{}%7D", &n[..8], &n[8..12], &n[12..16], bytes.join(","));
    let mixed: String =
        id.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
    vec![
        ("N", n.clone()),
        ("N, upper case", n.to_uppercase()),
        ("D, upper case", id.to_uppercase()),
        ("D, mixed case", mixed),
        ("B", format!("%7B{id}%7D")),
        ("B, upper case, lower-case escapes", format!("%7b{}%7d", id.to_uppercase())),
        ("P", format!("({id})")),
        ("X", format!("%7B{x}%7D")),
        ("X, upper case and spaces", format!("%7B%20{}%20%7D", x.to_uppercase().replace(',', ",%20"))),
        ("leading space", format!("%20{id}")),
        ("trailing no-break space", format!("{id}%C2%A0")),
        ("leading space, B", format!("%20%20%7B{id}%7D")),
    ]
}

/// Each GET is refused with `status` and `reason`, and the upstream never sees it.
async fn refused(env: &TestEnv, token: &str, paths: &[(&str, String)], status: u16, reason: &str) {
    for (name, path) in paths {
        let before = env.upstream.hits();
        let rsp = env.get(path, Some(token)).await;
        assert_eq!(rsp.status().as_u16(), status, "{name}: {path}");
        assert_rejected(rsp, status, reason).await;
        assert_eq!(env.upstream.hits(), before, "{name}: {path}: the upstream was reached");
    }
}

/// Each GET reaches the upstream; returns the paths it received.
async fn forwarded(env: &TestEnv, token: &str, paths: &[(&str, String)]) -> Vec<String> {
    let mut seen = Vec::new();
    for (name, path) in paths {
        let before = env.upstream.hits();
        let rsp = env.get(path, Some(token)).await;
        assert_eq!(rsp.status(), 200, "{name}: {path}");
        assert_eq!(env.upstream.hits(), before + 1, "{name}: {path}");
        seen.push(env.upstream.last().path_and_query);
    }
    seen
}

fn under(prefix: &str, forms: Vec<(&'static str, String)>, suffix: &str) -> Vec<(&'static str, String)> {
    forms.into_iter().map(|(name, id)| (name, format!("{prefix}{id}{suffix}"))).collect()
}

#[tokio::test]
async fn every_form_of_an_unrelated_customer_is_refused() {
    let (env, token, _dir) = env().await;
    refused(&env, &token, &under("/v1/customers/", forms(STRANGER_TID), "/subscriptions"), 403, "customer_not_allowed")
        .await;
    refused(&env, &token, &under("/v1/customers/", forms(STRANGER_TID), ""), 403, "customer_not_allowed").await;
    let spellings = [
        ("customers in upper case", format!("/v1/CUSTOMERS/{}/users", STRANGER_TID.replace('-', ""))),
        ("customers with a parameter", format!("/v1/customers;v=2/%7B{STRANGER_TID}%7D/users")),
        ("customers, encoded letter", format!("/v1/%63ustomers/({STRANGER_TID})")),
    ];
    refused(&env, &token, &spellings, 403, "customer_not_allowed").await;
    refused(&env, &token, &under("/v1/customers/", forms(FORMER_TID), "/orders"), 403, "relationship_expired").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn a_segment_after_customers_that_is_no_customer_id_is_refused() {
    let (env, token, _dir) = env().await;
    let n = STRANGER_TID.replace('-', "");
    let garbage = [
        ("path parameter", format!("/v1/customers/{STRANGER_TID};x=1/users")),
        ("trailing letter", format!("/v1/customers/{STRANGER_TID}x")),
        ("trailing brace", format!("/v1/customers/{STRANGER_TID}%7D")),
        ("unclosed brace", format!("/v1/customers/%7B{STRANGER_TID}")),
        ("mismatched brackets", format!("/v1/customers/({STRANGER_TID}%7D")),
        ("33 digits", format!("/v1/customers/{n}0")),
        ("31 digits", format!("/v1/customers/{}", &n[1..])),
        ("braces around N", format!("/v1/customers/%7B{n}%7D")),
        ("a name", "/v1/customers/contoso.onmicrosoft.com".to_string()),
        ("a word", "/v1/customers/everyone/subscriptions".to_string()),
        ("a collection with a parameter", "/v1/customers/relationshiprequests;x=1".to_string()),
        (
            "X with a ninth byte",
            format!("/v1/customers/%7B0x{},0x1,0x1,%7B0x1,0x1,0x1,0x1,0x1,0x1,0x1,0x1,0x1%7D%7D", &n[..8]),
        ),
        (
            "X overflowing a field",
            format!("/v1/customers/%7B0x{},0x10000,0x1,%7B0x1,0x1,0x1,0x1,0x1,0x1,0x1,0x1%7D%7D", &n[..8]),
        ),
        ("trailing space", format!("/v1/customers/{STRANGER_TID}%20/users")),
    ];
    refused(&env, &token, &garbage, 400, "bad_request").await;
    assert_eq!(env.upstream.hits(), 0);
}

#[tokio::test]
async fn partner_center_collections_under_customers_are_not_customers() {
    let (env, token, _dir) = env().await;
    let collections = [
        ("list", "/v1/customers".to_string()),
        ("list, query", "/v1/customers?size=10".to_string()),
        ("list, trailing slash", "/v1/customers/".to_string()),
        ("relationship requests", "/v1/customers/relationshiprequests".to_string()),
        ("relationship requests, any case", "/v1/Customers/RelationshipRequests".to_string()),
        ("usage records", "/v1/customers/usagerecords".to_string()),
        ("validation codes", "/v1/customers/all/validations".to_string()),
    ];
    let seen = forwarded(&env, &token, &collections).await;
    assert_eq!(seen[1], "/v1/customers?size=10");
}

#[tokio::test]
async fn a_related_customer_written_another_way_is_allowed() {
    let (env, token, _dir) = env().await;
    forwarded(&env, &token, &under("/v1/customers/", forms(OTHER_TID), "/subscriptions")).await;
}

/// The gateway forwards the customer it checked, in canonical form.
#[tokio::test]
async fn a_related_customer_is_forwarded_in_canonical_form() {
    let (env, token, _dir) = env().await;
    let seen = forwarded(&env, &token, &under("/v1/customers/", forms(OTHER_TID), "/subscriptions?size=1")).await;
    for path in seen {
        assert_eq!(path, format!("/v1/customers/{OTHER_TID}/subscriptions?size=1"));
    }
}
