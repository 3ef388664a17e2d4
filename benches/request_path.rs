//! The request path's steps, one at a time, on an Entra-v1-shaped token of
//! the usual size (RS256, RSA-2048, about 1.5 KB): bearer extraction and
//! token parsing, key lookup, RS256 verification (aws-lc-rs with a pre-parsed
//! key, against mfagate's verifier, the verifier plus token and claims
//! parsing, and the whole uncached check), policy, the
//! full check with a verified-token cache hit and miss, and header rewriting.
//!
//!     cargo bench --bench request_path
//!     cargo bench --bench request_path -- rs256      # one group

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm as JwtAlgorithm, EncodingKey, Header};
use mfagate::auth::claims::{ClaimChecks, Claims};
use mfagate::auth::jwks::KeyStore;
use mfagate::auth::token_cache::TokenCache;
use mfagate::auth::{Authenticator, credentials, token};
use mfagate::config::Config;
use mfagate::correlation::Correlation;
use mfagate::metrics::Metrics;
use mfagate::policy::{self, Facts, Presented, RoutePolicy};
use mfagate::upstream::headers;
use serde_json::json;

// The allocator the gateway's binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TID: &str = "6707d272-c9c1-55e5-afbc-60e5c6c45248";
const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";
const KID: &str = "x7P5kATUKdPRPTKPv5y5RIcwi4UwIPvp5f0rYoflIgU";

struct Fixture {
    token: String,
    headers: HeaderMap,
    auth: Authenticator,
    uncached: Authenticator,
    keys: Arc<KeyStore>,
    policy: RoutePolicy,
    audiences: Vec<String>,
    now: i64,
    /// The raw baseline: the signing key as aws-lc-rs parses it, and the
    /// signature already decoded.
    raw_key: aws_lc_rs::signature::ParsedPublicKey,
    raw_signature: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A delegated v1 token as Entra issues it for Partner Center.
fn claims(now: i64) -> serde_json::Value {
    json!({
        "aud": AUDIENCE, "iss": format!("https://sts.windows.net/{TID}/"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "acr": "1", "aio": "AVQAq/8ZAAAA".repeat(6), "amr": ["pwd", "mfa"],
        "appid": "1950a258-227b-4e31-a9cf-717495945fc2", "appidacr": "2",
        "family_name": "Bench", "given_name": "Load", "ipaddr": "192.0.2.10", "name": "Load Bench",
        "oid": "0d8e4c1a-9f3b-4c2e-8a7d-000000000001", "puid": "10032001A2B3C4D5",
        "rh": "0.AQcA".repeat(8), "scp": "user_impersonation", "sub": "l6Bq3u5Y".repeat(5),
        "tid": TID, "unique_name": "load@contoso.onmicrosoft.com", "upn": "load@contoso.onmicrosoft.com",
        "uti": "Qx8uNhR0nkKz6dW1AAAA", "ver": "1.0",
        "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"], "xms_tcdt": 1600000000
    })
}

fn fixture(runtime: &tokio::runtime::Runtime) -> Fixture {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let signing = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&signing, JwtAlgorithm::RS256).unwrap()).unwrap();
    jwk.as_object_mut().unwrap().retain(|k, _| matches!(k.as_str(), "kty" | "n" | "e"));
    jwk["kid"] = KID.into();
    jwk["use"] = "sig".into();
    jwk["alg"] = "RS256".into();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [jwk.clone()] }).to_string()).unwrap();

    let now = now();
    let mut header = Header::new(JwtAlgorithm::RS256);
    header.kid = Some(KID.into());
    let token = jsonwebtoken::encode(&header, &claims(now), &signing).unwrap();

    let config = Config::from_toml(&format!(
        r#"
        [identity]
        jwks_uri = "file:{}"
        issuers = ["https://sts.windows.net/{{tenantid}}/"]
        state_dir = ""
        [[routes]]
        name = "partner-center"
        path_prefix = "/"
        upstream = "http://127.0.0.1:18080"
        audiences = ["{AUDIENCE}"]
        accepted_amr = ["mfa"]
        "#,
        jwks.display()
    ))
    .unwrap();
    let metrics = Metrics::new().unwrap();
    let keys = Arc::new(KeyStore::new(&config.identity, |name| metrics.jwks_source(name)).unwrap());
    runtime.block_on(keys.load());
    let checks = ClaimChecks {
        issuers: config.identity.issuers.clone(),
        tenants: config.identity.tenants.clone(),
        skew_secs: 60,
    };
    let auth = Authenticator::new(Arc::clone(&keys), checks.clone(), 16384)
        .with_token_cache(TokenCache::new(10_000, metrics.token_cache()));
    let uncached = Authenticator::new(Arc::clone(&keys), checks, 16384);

    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1:18090"));
    headers.insert(USER_AGENT, HeaderValue::from_static("wrk"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());

    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let raw_key = aws_lc_rs::signature::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let raw_signature = URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap();

    Fixture {
        token,
        headers,
        auth,
        uncached,
        keys,
        policy: config.routes[0].policy.clone(),
        audiences: config.routes[0].audiences.clone(),
        now,
        raw_key,
        raw_signature,
        _dir: dir,
    }
}

/// What the gateway checks for a request once its route is known: every
/// credential it carries, the bearer token (cache, expiry, issuer, audience,
/// tenant) and the decision on the route's rules.
fn full_check(f: &Fixture, auth: &Authenticator) -> bool {
    let creds = credentials::read(&f.headers, 16384);
    if credentials::stray(None, &f.headers).is_some()
        || !credentials::auxiliary(&f.headers, 16384).is_ok_and(|a| a.is_empty())
    {
        return false;
    }
    let Ok(token) = creds.bearer else { return false };
    let Some(Ok(verified)) = auth.authenticate(token, &f.audiences, f.now).now_or_never() else {
        return false;
    };
    let facts = Facts {
        token: Some(Presented::Checked { claims: verified.into_claims(), verified: true }),
        ..Facts::default()
    };
    let outcome = policy::decide(&f.policy, &facts, f.now);
    policy::authorize(&outcome, &facts).is_ok()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let f = fixture(&runtime);
    assert!(full_check(&f, &f.auth) && full_check(&f, &f.uncached), "the fixture's token is accepted");

    let mut g = c.benchmark_group("parse");
    g.bench_function("credentials", |b| b.iter(|| credentials::read(black_box(&f.headers), 16384).bearer.is_ok()));
    g.bench_function("token_parse", |b| b.iter(|| token::parse(black_box(&f.token)).is_ok()));
    let payload = token::parse(&f.token).unwrap().payload;
    g.bench_function("claims_parse", |b| b.iter(|| Claims::parse(black_box(&payload)).is_ok()));
    g.bench_function("cache_digest", |b| b.iter(|| TokenCache::digest(black_box(&f.token))));
    g.finish();

    let claims = Claims::parse(&payload).unwrap();
    let mut g = c.benchmark_group("keys");
    g.bench_function("lookup", |b| {
        b.iter(|| f.keys.key(black_box(&claims), KID).now_or_never().is_some_and(|k| k.is_ok()))
    });
    g.finish();

    let (signing_input, signature) = f.token.rsplit_once('.').unwrap();
    let (_, key) = f.keys.key(&claims, KID).now_or_never().unwrap().unwrap();
    let alg = token::Algorithm::RS256;
    let mut g = c.benchmark_group("rs256");
    g.bench_function("raw_aws_lc_rs", |b| {
        b.iter(|| f.raw_key.verify_sig(black_box(signing_input.as_bytes()), &f.raw_signature).is_ok())
    });
    g.bench_function("verify_key", |b| b.iter(|| key.verify(alg, black_box(signing_input), signature)));
    // What jsonwebtoken's `decode` does with a known key: parse the token,
    // verify its signature, parse the claims.
    g.bench_function("verify_and_claims", |b| {
        b.iter(|| {
            let jws = token::parse(black_box(&f.token)).unwrap();
            key.verify(jws.alg, jws.signing_input, jws.signature) && Claims::parse(&jws.payload).is_ok()
        })
    });
    g.bench_function("uncached_check", |b| {
        b.iter(|| f.uncached.authenticate(black_box(&f.token), &f.audiences, f.now).now_or_never().is_some())
    });
    g.finish();

    let mut g = c.benchmark_group("policy");
    let shared = std::sync::Arc::new(claims.clone());
    g.bench_function("decide", |b| {
        b.iter(|| {
            let token = Presented::Checked { claims: std::sync::Arc::clone(black_box(&shared)), verified: true };
            let facts = Facts { token: Some(token), ..Facts::default() };
            policy::authorize(&policy::decide(&f.policy, &facts, f.now), &facts).is_ok()
        })
    });
    g.finish();

    let digest = TokenCache::digest(&f.token);
    let mut g = c.benchmark_group("full_check");
    g.bench_function("cache_hit", |b| b.iter(|| full_check(black_box(&f), &f.auth)));
    g.bench_function("cache_miss", |b| {
        b.iter_batched(
            || f.auth.token_cache().unwrap().invalidate(&digest),
            |()| full_check(black_box(&f), &f.auth),
            // The setup's side effect must come right before each run.
            BatchSize::PerIteration,
        )
    });
    g.bench_function("uncached", |b| b.iter(|| full_check(black_box(&f), &f.uncached)));
    g.finish();

    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let host = Some(HeaderValue::from_static("127.0.0.1:18090"));
    let mut response = HeaderMap::new();
    response.insert("content-type", HeaderValue::from_static("application/json"));
    response.insert("content-length", HeaderValue::from_static("42"));
    response.insert("server", HeaderValue::from_static("nginx"));
    response.insert("date", HeaderValue::from_static("Sun, 29 Nov 2026 18:00:00 GMT"));
    response.insert("connection", HeaderValue::from_static("keep-alive"));
    let mut g = c.benchmark_group("headers");
    g.bench_function("correlation_ids", |b| b.iter(|| Correlation::of(black_box(&f.headers))));
    let ids = Correlation::of(&f.headers);
    g.bench_function("to_upstream", |b| {
        b.iter_batched(
            || f.headers.clone(),
            |mut h| headers::to_upstream(&mut h, peer, host.clone(), &ids),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("to_downstream", |b| {
        b.iter_batched(|| response.clone(), |mut h| headers::to_downstream(&mut h), BatchSize::SmallInput)
    });
    let request = Request::get("/v1/customers").body(()).unwrap();
    g.bench_function("check_connection", |b| b.iter(|| headers::check_connection(black_box(request.headers()))));
    g.finish();
}

criterion_group!(request_path, benches);
criterion_main!(request_path);
