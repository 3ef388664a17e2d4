use super::*;
use crate::error::Reason;

use crate::config::TEST_ROUTE as BASE;

fn store() -> LimitStore {
    LimitStore::register(&Registry::new()).unwrap()
}

fn limits(store: &LimitStore, config: &Config) -> Limits {
    store.limits(config).unwrap()
}

fn claims(oid: &str, tid: &str) -> Subject {
    let claims = crate::auth::claims::Claims::parse(format!(r#"{{"oid":"{oid}","tid":"{tid}"}}"#).as_bytes()).unwrap();
    let token = crate::policy::Presented::Checked { claims: std::sync::Arc::new(claims), verified: true };
    crate::policy::Facts { token: Some(token), ..Default::default() }.subject().unwrap()
}

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";

#[tokio::test]
async fn route_limits_count_per_claim_value() {
    let text = format!("{BASE}rate_limits = [{{ key = \"oid\", requests = 2, per = \"1h\" }}]\n");
    let config = Config::from_toml(&text).unwrap();
    let limits = limits(&store(), &config);
    assert!(limits.admit("pc", Some(&claims(A, B)), PEER).await.is_ok());
    assert!(limits.admit("pc", Some(&claims(A, B)), PEER).await.is_ok());
    let err = limits.admit("pc", Some(&claims(A, B)), PEER).await.unwrap_err();
    assert_eq!(err.reason(), Reason::RateLimited);
    let Reject::RateLimited(wait) = err else { unreachable!() };
    assert!(wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800), "{wait:?}");
    assert!(limits.admit("pc", Some(&claims(B, B)), PEER).await.is_ok(), "another principal has its own bucket");
    assert!(limits.admit("other", Some(&claims(A, B)), PEER).await.is_ok(), "unknown routes have no limits");
}

#[tokio::test]
async fn buckets_survive_a_reload_with_the_same_settings() {
    let store = store();
    let text = format!("{BASE}rate_limits = [{{ key = \"tenant\", requests = 1, per = \"1h\" }}]\n");
    let config = Config::from_toml(&text).unwrap();
    assert!(limits(&store, &config).admit("pc", Some(&claims(A, B)), PEER).await.is_ok());
    assert!(
        limits(&store, &config).admit("pc", Some(&claims(A, B)), PEER).await.is_err(),
        "same settings: same bucket"
    );
    let changed = Config::from_toml(&text.replace("requests = 1", "requests = 2")).unwrap();
    assert!(limits(&store, &changed).admit("pc", Some(&claims(A, B)), PEER).await.is_ok(), "new settings: new bucket");
}

#[tokio::test]
async fn denied_budget_blocks_the_address() {
    let text = format!("[limits]\ndenied_per_ip = {{ requests = 3, per = \"1h\" }}\n{BASE}");
    let limits = limits(&store(), &Config::from_toml(&text).unwrap());
    let peer: IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..3 {
        assert!(limits.admit_peer("pc", peer).await.is_ok());
        limits.note_denied(peer).await;
    }
    assert!(limits.admit_peer("pc", peer).await.is_ok(), "the budget is spent only when exceeded");
    limits.note_denied(peer).await;
    assert!(matches!(limits.admit_peer("pc", peer).await, Err(Reject::RateLimited(_))));
    assert!(limits.admit_peer("pc", "192.0.2.2".parse().unwrap()).await.is_ok());
    let off = store().limits_unconnected(&Config::from_toml(&text.replace("requests = 3", "requests = 0")).unwrap());
    for _ in 0..10 {
        off.note_denied(peer).await;
    }
    assert!(off.admit_peer("pc", peer).await.is_ok());
}
