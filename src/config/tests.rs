use super::*;
use crate::policy::{Mode, RouteKind};
use std::time::Duration;

use crate::config::TEST_ROUTE as MINIMAL;

mod policy;

fn err(text: &str) -> ConfigError {
    match Config::from_toml(text) {
        Ok(_) => panic!("config should be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn err_key(text: &str) -> String {
    err(text).key().unwrap_or("").to_string()
}

#[test]
fn built_in_default_is_valid_and_is_the_shipped_file() {
    let config = Config::from_toml(BUILT_IN).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(config.server.admin_listen.to_string(), "127.0.0.1:9090");
    assert!(matches!(config.server.tls, TlsSource::SelfSigned));
    assert_eq!(config.routes.len(), 1);
    let route = &config.routes[0];
    assert_eq!(route.name, "partner-center");
    assert_eq!(route.upstream.authority.as_str(), "api.partnercenter.microsoft.com");
    assert_eq!(route.policy.schedule.mode, Mode::Enforce);
    assert!(route.policy.require_mfa && !route.policy.allow_app_only && !route.policy.allow_public_clients);
    assert!(
        matches!(config.identity.sources[0].origin.location(), JwksLocation::Url(u) if u == "https://login.microsoftonline.com/common/discovery/keys")
    );
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/mfagate.toml")).unwrap();
    assert_eq!(shipped, BUILT_IN);
}

#[test]
fn example_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn defaults_fill_what_is_not_written() {
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(config.identity.clock_skew_secs, 60);
    assert_eq!(config.identity.issuers.len(), 2);
    assert_eq!(config.routes[0].path_prefix, "/");
    assert_eq!(config.routes[0].policy.accepted_amr, ["mfa", "ngcmfa"]);
    assert_eq!(config.server.upstream.timeout, Duration::from_secs(120));
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let e = err(&format!("[server]\nlisten_port = 1\n{MINIMAL}"));
    assert!(e.to_string().contains("listen_port"), "{e}");
    assert_eq!(e.key(), Some("server.listen_port"));
    let e = err(&format!("{MINIMAL}requre_mfa = false\n"));
    assert!(e.to_string().contains("requre_mfa"), "{e}");
    assert_eq!(e.key(), Some("routes[0].requre_mfa"));
    let e = err(&format!("[telemetry]\nx = 1\n{MINIMAL}"));
    assert!(e.to_string().contains("telemetry"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    assert_eq!(err_key(&format!("[server]\nlisten = \"localhost\"\n{MINIMAL}")), "server.listen");
    assert_eq!(err_key(&format!("[server]\nupstream_timeout = \"5 parsecs\"\n{MINIMAL}")), "server.upstream_timeout");
    assert_eq!(err_key(&format!("[server]\ntls_cert = \"a.pem\"\n{MINIMAL}")), "server.tls_key");
    assert_eq!(err_key(&format!("[identity]\nclock_skew_secs = \"abc\"\n{MINIMAL}")), "identity.clock_skew_secs");
    assert_eq!(err_key(&format!("[identity]\nclock_skew_secs = 3600\n{MINIMAL}")), "identity.clock_skew_secs");
    assert_eq!(err_key(&format!("[identity]\ntenants = [\"contoso\"]\n{MINIMAL}")), "identity.tenants[0]");
    assert_eq!(
        err_key(&format!("[identity]\nissuers = [\"http://sts.windows.net/{{tenantid}}/\"]\n{MINIMAL}")),
        "identity.issuers[0]"
    );
    assert_eq!(err_key(&format!("[identity]\njwks_uri = \"ftp://x/keys\"\n{MINIMAL}")), "identity.jwks_uri");
    assert_eq!(err_key(&format!("[log]\nformat = \"xml\"\n{MINIMAL}")), "log.format");
    assert_eq!(err_key(&format!("{MINIMAL}mode = \"audit\"\n")), "routes[0].mode");
    assert_eq!(err_key(&format!("{MINIMAL}allowed_apps = [\"az-cli\"]\n")), "routes[0].allowed_apps[0]");
    assert_eq!(err_key(&format!("{MINIMAL}path_prefix = \"v1\"\n")), "routes[0].path_prefix");
    assert_eq!(err_key(&format!("{MINIMAL}accepted_amr = []\n")), "routes[0].accepted_amr");
    assert_eq!(err_key(&format!("{MINIMAL}require_mfa = \"maybe\"\n")), "routes[0].require_mfa");
    assert_eq!(err_key("[[routes]]\nname = \"pc\"\nupstream = \"https://x\"\naudiences = []\n"), "routes[0].audiences");
    assert_eq!(
        err_key(
            "[[routes]]\nname = \"pc\"\nupstream = \"http://api.partnercenter.microsoft.com\"\naudiences = [\"a\"]\n"
        ),
        "routes[0].upstream"
    );
    assert_eq!(
        err_key("[[routes]]\nname = \"Partner Center\"\nupstream = \"https://x\"\naudiences = [\"a\"]\n"),
        "routes[0].name"
    );
    assert_eq!(
        err_key("[[routes]]\nname = \"unmatched\"\nupstream = \"https://x\"\naudiences = [\"a\"]\n"),
        "routes[0].name"
    );
    assert_eq!(err_key(&format!("{MINIMAL}{}", MINIMAL)), "routes[1].name");
    assert_eq!(err_key("[server]\n"), "routes");
    assert_eq!(err_key("[[routes]]\nname = \"pc\"\naudiences = [\"a\"]\n"), "routes[0]");
}

#[test]
fn http_upstream_only_to_loopback() {
    for upstream in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
        let text = format!("[[routes]]\nname = \"pc\"\nupstream = \"{upstream}\"\naudiences = [\"a\"]\n");
        Config::from_toml(&text).unwrap_or_else(|e| panic!("{upstream}: {e}"));
    }
}

#[test]
fn environment_overrides_any_key() {
    let env = [
        ("MFAGATE__SERVER__LISTEN", "0.0.0.0:9443"),
        ("MFAGATE__ROUTES__0__MODE", "report-only"),
        ("MFAGATE__ROUTES__0__ALLOW_APP_ONLY", "true"),
        ("MFAGATE__IDENTITY__TENANTS", r#"["DF845F1A-1111-2222-3333-444455556666"]"#),
        ("MFAGATE__IDENTITY__CLOCK_SKEW_SECS", "30"),
        ("MFAGATE_CONFIG", "ignored.toml"),
        ("PATH", "/usr/bin"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(config.routes[0].policy.schedule.mode, Mode::ReportOnly);
    assert!(config.routes[0].policy.allow_app_only);
    assert!(config.identity.tenants.contains("df845f1a-1111-2222-3333-444455556666"));
    assert_eq!(config.identity.clock_skew_secs, 30);
}

#[test]
fn bad_environment_overrides_name_the_key() {
    let one = |k: &str, v: &str| Config::from_toml_with_env(MINIMAL, [(k.to_string(), v.to_string())]).unwrap_err();
    assert_eq!(one("MFAGATE__ROUTES__0__MODE", "audit").key(), Some("routes[0].mode"));
    let e = one("MFAGATE__SERVER__LISTN", "1");
    assert!(e.to_string().contains("listn"), "{e}");
    assert_eq!(one("MFAGATE__SERVER__LISTEN", "nope").key(), Some("server.listen"));
}

#[test]
fn issuer_templates() {
    let t = IssuerTemplate::parse("https://sts.windows.net/{tenantid}/").unwrap();
    let tid = "df845f1a-1111-2222-3333-444455556666";
    assert!(t.matches(&format!("https://sts.windows.net/{tid}/"), Some(tid)));
    assert!(!t.matches(&format!("https://sts.windows.net/{tid}"), Some(tid)));
    assert!(!t.matches("https://sts.windows.net/{tenantid}/", Some(tid)));
    assert!(!t.matches(&format!("https://sts.windows.net/{tid}/"), None));
    let exact =
        IssuerTemplate::parse("https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0").unwrap();
    assert!(exact.matches("https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", None));
    assert!(IssuerTemplate::parse("https://x/{tenantid}/{tenantid}").is_none());
}

#[test]
fn upstream_base_path_is_kept() {
    let text = "[[routes]]\nname = \"graph\"\nupstream = \"https://graph.microsoft.com/v1.0/\"\naudiences = [\"a\"]\n";
    let config = Config::from_toml(text).unwrap();
    assert_eq!(config.routes[0].upstream.base_path, "/v1.0");
}

#[test]
fn limits_and_timeouts_have_safe_defaults() {
    let config = Config::from_toml(MINIMAL).unwrap();
    let s = &config.server;
    assert_eq!(s.http.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(s.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.http.keep_alive_timeout, Duration::from_secs(60));
    assert_eq!((s.http.max_header_bytes, s.http.max_headers, s.http.http2_max_concurrent_streams), (65536, 100, 100));
    assert_eq!((s.load.max_connections, s.load.max_in_flight), (4096, 1024));
    assert_eq!(s.upstream.idle_timeout, Duration::from_secs(60));
    assert_eq!((s.drain.delay, s.drain.grace), (Duration::from_secs(5), Duration::from_secs(30)));
    assert_eq!(s.watch_interval, None);
    assert_eq!((s.discard.limit, s.discard.timeout), (64 << 20, Duration::from_secs(30)));
    let denied = config.limits.denied_per_ip.unwrap();
    assert_eq!((denied.requests.get(), denied.per, denied.burst.get()), (100, Duration::from_secs(10), 100));
    assert!(config.routes[0].rate_limits.is_empty());
}

#[test]
fn limits_are_checked_and_name_the_key() {
    let server = |line: &str| err_key(&format!("[server]\n{line}\n{MINIMAL}"));
    assert_eq!(server("max_header_bytes = 1024"), "server.max_header_bytes");
    assert_eq!(server("max_headers = 0"), "server.max_headers");
    assert_eq!(server("http2_max_concurrent_streams = 0"), "server.http2_max_concurrent_streams");
    assert_eq!(server("max_connections = 0"), "server.max_connections");
    assert_eq!(server("max_in_flight = 0"), "server.max_in_flight");
    assert_eq!(server("keep_alive_timeout = \"0s\""), "server.keep_alive_timeout");
    assert_eq!(server("watch_interval = \"10ms\""), "server.watch_interval");
    assert_eq!(server("drain_delay = \"soon\""), "server.drain_delay");
    assert_eq!(server("discard_body_limit = \"lots\""), "server.discard_body_limit");
    assert_eq!(server("discard_body_limit = \"2GiB\""), "server.discard_body_limit");
    assert_eq!(server("discard_body_limit = \"-1MiB\""), "server.discard_body_limit");
    assert_eq!(server("discard_body_timeout = \"a while\""), "server.discard_body_timeout");
    assert_eq!(
        err_key(&format!("[server]\nmax_header_bytes = 16384\n[identity]\nmax_token_bytes = 16384\n{MINIMAL}")),
        "server.max_header_bytes"
    );
    let limits = |line: &str| err_key(&format!("[limits]\n{line}\n{MINIMAL}"));
    assert_eq!(limits(r#"denied_per_ip = { requests = 5, per = "0s" }"#), "limits.denied_per_ip.per");
    assert_eq!(limits(r#"denied_per_ip = { requests = 5, per = "1s", burst = 0 }"#), "limits.denied_per_ip.burst");
    assert_eq!(limits(r#"denied_per_ip = { requests = 5 }"#), "limits.denied_per_ip");
    let route = |line: &str| err_key(&format!("{MINIMAL}{line}\n"));
    assert_eq!(route(r#"rate_limits = [{ key = "upn", requests = 1, per = "1s" }]"#), "routes[0].rate_limits[0].key");
    assert_eq!(
        route(r#"rate_limits = [{ key = "oid", requests = 0, per = "1s" }]"#),
        "routes[0].rate_limits[0].requests"
    );
    assert_eq!(
        route(
            r#"rate_limits = [{ key = "oid", requests = 1, per = "1s" }, { key = "oid", requests = 2, per = "1s" }]"#
        ),
        "routes[0].rate_limits[1].key"
    );
    let off =
        Config::from_toml(&format!("[limits]\ndenied_per_ip = {{ requests = 0, per = \"1s\" }}\n{MINIMAL}")).unwrap();
    assert!(off.limits.denied_per_ip.is_none());
    let text = format!("{MINIMAL}rate_limits = [{{ key = \"tenant\", requests = 600, per = \"1m\", burst = 50 }}]\n");
    let limit = Config::from_toml(&text).unwrap().routes[0].rate_limits[0];
    assert_eq!(
        (limit.key, limit.rate.interval(), limit.rate.burst.get()),
        (RateKey::Tenant, Duration::from_millis(100), 50)
    );
}

#[test]
fn audiences_are_stored_in_the_form_tokens_are_compared_in() {
    let text = r#"
[[routes]]
name = "pc"
upstream = "https://api.partnercenter.microsoft.com"
audiences = ["HTTPS://API.PartnerCenter.microsoft.com/", "FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD", "api://Contoso/Read/"]
"#;
    let route = &Config::from_toml(text).unwrap().routes[0];
    assert_eq!(
        route.audiences,
        ["https://api.partnercenter.microsoft.com", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd", "api://contoso/Read"]
    );
    // Partner Center's audience in any case still makes a Partner Center route.
    assert_eq!(route.policy.kind, RouteKind::PartnerCenter);
    assert!(route.policy.deny_roles.is_empty());
    let by_id = text.replace(r#""HTTPS://API.PartnerCenter.microsoft.com/", "#, "");
    assert_eq!(Config::from_toml(&by_id).unwrap().routes[0].policy.kind, RouteKind::PartnerCenter);
}

fn route_host(host: &str) -> Result<Option<String>, String> {
    match Config::from_toml(&format!("{MINIMAL}host = {host:?}\n")) {
        Ok(config) => Ok(config.routes[0].host.clone()),
        Err(e) => Err(e.key().unwrap_or("").to_string()),
    }
}

#[test]
fn route_hosts_are_normalised_as_the_egress_proxy_normalises_names() {
    for (written, stored) in [
        ("api.partnercenter.microsoft.com.", "api.partnercenter.microsoft.com"),
        ("API.PartnerCenter.Microsoft.COM", "api.partnercenter.microsoft.com"),
        ("*.PartnerCenter.microsoft.com.", "*.partnercenter.microsoft.com"),
        ("localhost", "localhost"),
        ("_dmarc.example.net", "_dmarc.example.net"),
        // An address, for reverse mode, as a request's Host names it.
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("::1", "[::1]"),
    ] {
        assert_eq!(route_host(written), Ok(Some(stored.to_string())), "{written}");
    }
    let config = Config::from_toml(&format!("{MINIMAL}host = \"API.partnercenter.microsoft.com.\"\n")).unwrap();
    assert_eq!(
        config.effective.routes[0].host.as_deref(),
        Some("api.partnercenter.microsoft.com"),
        "check-config prints what runs"
    );
    let egress = crate::egress::hosts::HostRules::new(
        &Config::from_toml(&format!("{MINIMAL}[egress]\nlisten = \"127.0.0.1:0\"\nca_cert = \"c\"\nca_key = \"k\"\n"))
            .unwrap()
            .egress
            .unwrap(),
        &config.routes,
    );
    assert!(
        egress.is_guarded("api.partnercenter.microsoft.com"),
        "the egress proxy guards the name written with a dot"
    );
}

#[test]
fn a_route_host_that_is_not_a_dns_name_names_the_key() {
    for bad in [
        "",
        ".",
        "api..example",
        "a_b c",
        "api.example:443",
        "https://api.example",
        "api.example/v1",
        "a.*.example",
        "*",
        "*.",
        "**.example",
        "*.127.0.0.1",
        "127.1",
        "0x7f.1",
        "2130706433",
        "ex\u{e4}mple.com",
        &format!("{}.com", "x".repeat(64)),
    ] {
        assert_eq!(route_host(bad), Err("routes[0].host".to_string()), "{bad:?}");
    }
}

#[test]
fn a_syntax_error_is_one_line_that_says_where() {
    let err = Config::from_toml("[server]\nlisten = \"127.0.0.1:0\n").unwrap_err();
    assert_eq!(err.key(), Some("(file)"));
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.starts_with("(file): TOML syntax error at line 2, column 22: "), "{text}");
    let dup = Config::from_toml("[server]\n[server]\n").unwrap_err().to_string();
    assert!(dup.contains("line 2") && !dup.contains('\n'), "{dup}");
}

#[test]
fn log_settings_are_read_from_a_file_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[log]\nformat = \"json\"   # for the pipeline\nlevel = 'warn'\n[server]\nlisten = \"x\n")
        .unwrap();
    let source = Source::File(path);
    let log = LogConfig::of_unloadable(&source, std::iter::empty());
    assert_eq!(log, LogConfig { json: true, level: "warn".into() });
    let env = [("MFAGATE__LOG__FORMAT".to_string(), "text".to_string())];
    assert!(!LogConfig::of_unloadable(&source, env).json, "the environment wins, as it does over a file");
    let unreadable = Source::File(dir.path().join("missing.toml"));
    assert_eq!(
        LogConfig::of_unloadable(&unreadable, std::iter::empty()),
        LogConfig { json: false, level: "info".into() }
    );
}

#[test]
fn discard_body_limit_reads_sizes() {
    let limit = |value: &str| {
        Config::from_toml(&format!("[server]\ndiscard_body_limit = {value}\n{MINIMAL}")).unwrap().server.discard.limit
    };
    assert_eq!(limit("1048576"), 1 << 20);
    assert_eq!(limit("\"512KiB\""), 512 << 10);
    assert_eq!(limit("\"16 MiB\""), 16 << 20);
    assert_eq!(limit("\"1gib\""), 1 << 30);
    assert_eq!(limit("\"10MB\""), 10_000_000);
    assert_eq!(limit("\"100\""), 100);
    assert_eq!(limit("0"), 0);
    let env = [("MFAGATE__SERVER__DISCARD_BODY_LIMIT".to_string(), "8MiB".to_string())];
    let config = Config::from_toml_with_env(MINIMAL, env).unwrap();
    assert_eq!(config.server.discard.limit, 8 << 20);
}

/// A route that forwards to a sign-in host, however its upstream spells it
/// and whatever its `host`, is a login route; with or without
/// `[egress.tenant_restrictions]`.
#[test]
fn an_upstream_that_is_not_a_host_name_is_refused() {
    let text = format!(
        "{MINIMAL}[[routes]]\nname = \"s\"\nkind = \"aobo\"\npath_prefix = \"/s\"\nupstream = \"https://login.microsoftonline.com..\"\naudiences = [\"https://graph.microsoft.com\"]\n"
    );
    assert_eq!(err_key(&text), "routes[1].upstream");
}

#[test]
fn a_route_to_a_sign_in_host_is_a_login_route() {
    let route = |kind: &str, host: &str, upstream: &str| {
        format!(
            "{MINIMAL}[[routes]]\nname = \"s\"\n{kind}{host}path_prefix = \"/s\"\nupstream = \"{upstream}\"\naudiences = [\"https://graph.microsoft.com\"]\n"
        )
    };
    for upstream in [
        "https://login.microsoftonline.com",
        "https://LOGIN.MicrosoftOnline.COM.",
        "https://login.microsoftonline.com:443/common",
        "https://login.microsoft.com",
        "https://login.windows.net",
        "https://login.live.com",
        "https://login.microsoftonline.us",
        "https://login.chinacloudapi.cn:8443",
        "https://login-us.microsoftonline.com",
    ] {
        for host in ["", "host = \"api.example.com\"\n", "host = \"*.example.com\"\n"] {
            for kind in ["kind = \"aobo\"\n", "kind = \"partner-center\"\n"] {
                let text = route(kind, host, upstream);
                assert_eq!(err_key(&text), "routes[1].kind", "{upstream} {host} {kind}");
                assert!(err(&text).to_string().contains("sign-in host"), "{upstream}");
            }
            // Left out, the kind is inferred: login.
            let config = Config::from_toml(&route("", host, upstream)).unwrap();
            assert_eq!(config.routes[1].policy.kind, RouteKind::Login, "{upstream} {host}");
        }
    }
    for upstream in [
        "https://device.login.microsoftonline.com",
        "https://Device.Login.MicrosoftOnline.com.:443",
        "https://enterpriseregistration.windows.net/EnrollmentServer",
    ] {
        for kind in ["", "kind = \"login\"\n", "kind = \"aobo\"\n"] {
            assert_eq!(err_key(&route(kind, "", upstream)), "routes[1].upstream", "{upstream} {kind}");
        }
    }
    // Other hosts that only look alike are not sign-in hosts.
    let text = route("kind = \"aobo\"\n", "", "https://login.microsoftonline.com.evil.example");
    assert!(Config::from_toml(&text).is_ok());
}
