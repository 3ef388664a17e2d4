use super::super::Config;
use super::*;

use crate::config::TEST_ROUTE as ROUTE;

fn identity(text: &str) -> Result<IdentityConfig, ConfigError> {
    Config::from_toml(&format!("{text}\n{ROUTE}")).map(|c| c.identity)
}

fn err_key(text: &str) -> String {
    identity(text).map(|_| ()).unwrap_err().key().unwrap_or("").to_string()
}

#[test]
fn defaults_are_one_entra_v1_source_and_the_documented_timings() {
    let id = identity("").unwrap();
    assert_eq!(id.sources.len(), 1);
    let s = &id.sources[0];
    assert_eq!(s.name, "default");
    assert_eq!(s.origin, SourceOrigin::Jwks(JwksLocation::Url(DEFAULT_JWKS_URI.parse().unwrap())));
    assert!(s.required && s.issuers.is_empty() && s.token_version.is_none());
    let h = Duration::from_secs(3600);
    assert_eq!(s.timing.refresh_interval, h);
    assert_eq!(s.timing.unknown_kid_refetch_interval, Duration::from_secs(300));
    assert_eq!(s.timing.key_ttl, 24 * h);
    assert_eq!(s.timing.max_stale, 24 * h);
    assert_eq!(s.timing.metadata_refresh_interval, 12 * h);
    assert_eq!(id.fetch.connect_timeout, Duration::from_secs(5));
    assert_eq!(id.fetch.timeout, Duration::from_secs(10));
    assert_eq!(id.fetch.max_bytes, 1024 * 1024);
    assert_eq!(id.state_dir, Some(PathBuf::from("state")));
    assert_eq!(id.token_cache_size, 10_000);
}

#[test]
fn sources_take_identity_timings_unless_they_override_them() {
    let id = identity(
        r#"
[identity]
max_stale = "2h"
token_cache_size = 0
state_dir = ""
[[identity.sources]]
name = "entra-v1"
metadata_uri = "https://login.microsoftonline.com/contoso.onmicrosoft.com/.well-known/openid-configuration"
[[identity.sources]]
name = "air-gapped"
jwks_uri = "file:/etc/mfagate/keys.json"
issuers = ["https://login.microsoftonline.com/{tenantid}/v2.0"]
token_version = "2.0"
required = false
max_stale = "7d"
"#,
    )
    .unwrap();
    assert_eq!(id.sources.len(), 2);
    assert!(matches!(id.sources[0].origin, SourceOrigin::Discovery(JwksLocation::Url(_))));
    assert_eq!(id.sources[0].timing.max_stale, Duration::from_secs(7200));
    let b = &id.sources[1];
    assert_eq!(b.origin, SourceOrigin::Jwks(JwksLocation::File("/etc/mfagate/keys.json".into())));
    assert_eq!(b.token_version.as_deref(), Some("2.0"));
    assert!(!b.required);
    assert_eq!(b.issuers.len(), 1);
    assert_eq!(b.timing.max_stale, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(id.token_cache_size, 0);
    assert_eq!(id.state_dir, None);
}

#[test]
fn locations() {
    let loc = |s: &str| location("k", s);
    assert_eq!(loc("file:///a/b.json").unwrap(), JwksLocation::File("/a/b.json".into()));
    assert_eq!(loc("keys.json").unwrap(), JwksLocation::File("keys.json".into()));
    assert!(loc("http://127.0.0.1:8080/keys").is_ok());
    assert!(loc("http://localhost/keys").is_ok());
    assert!(loc("http://login.microsoftonline.com/common/discovery/keys").is_err());
    assert!(loc("ftp://x/keys").is_err());
    assert!(loc("https:///keys").is_err());
    assert!(loc("").is_err());
    assert!(loc("file:").is_err());
}

#[test]
fn bad_sources_name_the_key() {
    let src = |body: &str| format!("[[identity.sources]]\n{body}\n");
    assert_eq!(err_key(&src("name = \"Entra V1\"\njwks_uri = \"https://x/keys\"")), "identity.sources[0].name");
    assert_eq!(err_key(&src("name = \"a\"")), "identity.sources[0].jwks_uri");
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\nmetadata_uri = \"https://x/m\"")),
        "identity.sources[0].jwks_uri"
    );
    assert_eq!(
        err_key(&format!(
            "{}{}",
            src("name = \"a\"\njwks_uri = \"https://x/k\""),
            src("name = \"a\"\njwks_uri = \"https://y/k\"")
        )),
        "identity.sources[1].name"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\nmetadata_uri = \"http://example.com/m\"")),
        "identity.sources[0].metadata_uri"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\ntoken_version = \"3\"")),
        "identity.sources[0].token_version"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\nissuers = [\"sts.windows.net\"]")),
        "identity.sources[0].issuers[0]"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\nmax_stale = \"10m\"")),
        "identity.sources[0].max_stale"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\nkey_ttl = \"soon\"")),
        "identity.sources[0].key_ttl"
    );
    assert_eq!(
        err_key(&format!(
            "[identity]\njwks_uri = \"https://x/k\"\n{}",
            src("name = \"a\"\njwks_uri = \"https://x/k\"")
        )),
        "identity.jwks_uri"
    );
    assert_eq!(
        err_key(&src("name = \"a\"\njwks_uri = \"https://x/k\"\nrefresh = \"1h\"")),
        "identity.sources[0].refresh"
    );
}

#[test]
fn bad_identity_values_name_the_key() {
    assert_eq!(err_key("[identity]\nmax_stale = \"30m\""), "identity.max_stale");
    assert_eq!(err_key("[identity]\nrefresh_interval = \"0s\""), "identity.refresh_interval");
    assert_eq!(err_key("[identity]\nfetch_timeout = \"1ms\""), "identity.fetch_timeout");
    assert_eq!(err_key("[identity]\nfetch_connect_timeout = \"x\""), "identity.fetch_connect_timeout");
    assert_eq!(err_key("[identity]\nmax_document_bytes = 10"), "identity.max_document_bytes");
    assert_eq!(err_key("[identity]\ntoken_cache_size = -1"), "identity.token_cache_size");
    assert_eq!(err_key("[identity]\njwks_uri = \"http://example.com/keys\""), "identity.jwks_uri");
}

#[test]
fn sources_can_be_set_from_the_environment() {
    let env = [
        ("MFAGATE__IDENTITY__SOURCES__0__NAME", "entra"),
        ("MFAGATE__IDENTITY__SOURCES__0__JWKS_URI", "https://login.microsoftonline.com/common/discovery/keys"),
        ("MFAGATE__IDENTITY__TOKEN_CACHE_SIZE", "0"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let id = Config::from_toml_with_env(ROUTE, env).unwrap().identity;
    assert_eq!(id.sources[0].name, "entra");
    assert_eq!(id.token_cache_size, 0);
}

fn warnings(text: &str) -> Vec<String> {
    Config::from_toml(&format!("{text}\n{ROUTE}")).unwrap().warnings()
}

#[test]
fn a_source_that_serves_every_issuer_is_warned_about() {
    let src = |body: &str| format!("[[identity.sources]]\nname = \"lab\"\n{body}\n");
    for body in [
        "jwks_uri = \"https://keys.example.net/keys\"",
        "jwks_uri = \"http://127.0.0.1:8080/keys\"",
        "jwks_uri = \"file:/etc/mfagate/keys.json\"",
        "metadata_uri = \"https://idp.example.net/.well-known/openid-configuration\"",
        // A look-alike of a Microsoft host is not one.
        "jwks_uri = \"https://login.microsoftonline.com.example.net/keys\"",
        "jwks_uri = \"https://evil-login.microsoftonline.com.example/keys\"",
    ] {
        let w = warnings(&src(body));
        assert_eq!(w.len(), 1, "{body}: {w:?}");
        assert!(w[0].starts_with(r#"identity.sources[0] ("lab"): "#), "{body}: {w:?}");
        assert!(w[0].contains("issuers"), "says what to set: {w:?}");
    }
    let shorthand = warnings("[identity]\njwks_uri = \"https://keys.example.net/keys\"");
    assert_eq!(shorthand.len(), 1);
    assert!(shorthand[0].starts_with(r#"identity.jwks_uri ("default"): "#), "{shorthand:?}");
    // The second of two, by its index.
    let two = warnings(&format!(
        "{}{}",
        src("jwks_uri = \"https://login.windows.net/common/discovery/keys\""),
        src("jwks_uri = \"https://k.example/keys\"").replace("lab", "lab2")
    ));
    assert_eq!(two.len(), 1, "{two:?}");
    assert!(two[0].starts_with(r#"identity.sources[1] ("lab2"): "#), "{two:?}");
}

#[test]
fn entra_endpoints_and_sources_with_issuers_are_not_warned_about() {
    assert_eq!(warnings(""), Vec::<String>::new(), "the default key set");
    let src = |body: &str| format!("[[identity.sources]]\nname = \"a\"\n{body}\n");
    for host in [
        "login.microsoftonline.com",
        "LOGIN.MicrosoftOnline.com.",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoft.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    ] {
        assert_eq!(
            warnings(&src(&format!("jwks_uri = \"https://{host}/common/discovery/keys\""))),
            Vec::<String>::new(),
            "{host}"
        );
        let metadata = format!("metadata_uri = \"https://{host}/common/.well-known/openid-configuration\"");
        assert_eq!(warnings(&src(&metadata)), Vec::<String>::new(), "{host}");
    }
    let pinned =
        src("jwks_uri = \"https://keys.example.net/keys\"\nissuers = [\"https://sts.windows.net/{tenantid}/\"]");
    assert_eq!(warnings(&pinned), Vec::<String>::new());
}
