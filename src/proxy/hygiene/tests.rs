use super::*;

fn norm(p: &str) -> Result<String, RequestRule> {
    normalize_path(p).map(|o| o.unwrap_or_else(|| p.to_string()))
}

#[test]
fn plain_paths_are_untouched() {
    for p in [
        "/",
        "/v1/customers",
        "/v1/customers/",
        "/v1/a%20b",
        "/v1/x%3Ay",
        "/v1/file.txt",
        "/a;b=c",
        "/..a/.b",
        "/v1.0/me",
        "/v1/a.b",
        "/v1/.well-known/x",
        "/v1/x%C2%A0",
    ] {
        assert_eq!(normalize_path(p), Ok(None), "{p}");
    }
}

#[test]
fn unreserved_characters_are_decoded_and_hex_upper_cased() {
    assert_eq!(norm("/%76%31/customers"), Ok("/v1/customers".into()));
    assert_eq!(norm("/v1/%7e%5F%2d"), Ok("/v1/~_-".into()));
    assert_eq!(norm("/v1/a%3ab"), Ok("/v1/a%3Ab".into()));
    assert_eq!(norm("/v1/%C3%A9"), Ok("/v1/%C3%A9".into()));
    assert_eq!(norm("/%76\u{e9}/%41\u{e9}"), Ok("/v\u{e9}/A\u{e9}".into()));
}

/// The Graph SDK's base URL ends with `/`, so it sends `/v1.0//me`.
#[test]
fn empty_segments_are_collapsed() {
    for (path, want) in [
        ("/v1.0//me", "/v1.0/me"),
        ("/v1.0///users", "/v1.0/users"),
        ("//v1/x", "/v1/x"),
        ("/v1/x//", "/v1/x/"),
        ("//", "/"),
        ("/%76%31//x", "/v1/x"),
        ("/v1//customers/", "/v1/customers/"),
    ] {
        assert_eq!(norm(path), Ok(want.to_string()), "{path}");
        assert_eq!(normalize_path(want), Ok(None), "{want} is normal");
    }
}

/// Every path of up to four pieces: what normalising accepts, it accepts
/// again unchanged (the forwarded path is a normal path).
#[test]
fn normalising_is_idempotent() {
    let pieces = ["/", "//", "a", ".", "%2E", "%2e%2E", "%25", "%2F", ";", "%41", " ", "%20", "%7e"];
    let mut paths = vec![String::new()];
    for _ in 0..4 {
        paths = paths.iter().flat_map(|p| pieces.iter().map(move |x| format!("{p}{x}"))).collect();
        for p in &paths {
            let path = format!("/{p}");
            if let Ok(normal) = normalize_path(&path) {
                let normal = normal.unwrap_or_else(|| path.clone());
                assert_eq!(normalize_path(&normal), Ok(None), "{path} -> {normal}");
                assert!(!normal.contains("//"), "{path} -> {normal}");
            }
        }
    }
}

/// `.` is unreserved (RFC 3986 §2.3): `%2E` inside a segment is a dot,
/// and the decoded segment is checked like any other.
#[test]
fn encoded_dots_are_decoded_then_checked() {
    assert_eq!(norm("/v1/a%2eb"), Ok("/v1/a.b".into()));
    assert_eq!(norm("/v1%2E0/me"), Ok("/v1.0/me".into()));
    for p in ["/v1/%2e%2e/admin", "/v1/.%2e/x", "/v1/%2e/x", "/v1/customers%2e/x"] {
        assert!(normalize_path(p).is_err(), "{p}");
    }
}

#[test]
fn ambiguous_paths_are_refused_naming_the_rule() {
    use RequestRule::*;
    for (p, rule) in [
        ("/v1/../admin", DotSegment),
        ("/v1/./x", DotSegment),
        ("/v1/..", DotSegment),
        ("/v1/..;/admin", DotSegment),
        ("/v1/.;x/admin", DotSegment),
        ("/v1/%2e%2e/admin", DotSegment),
        ("/v1/%2E%2e/admin", DotSegment),
        ("/v1/.%2e/admin", DotSegment),
        ("/v1//../admin", DotSegment),
        ("/v1/..%3B/admin", DotSegment),
        ("/v1/..%3bx/admin", DotSegment),
        ("/v1/%2e%2e%3b/admin", DotSegment),
        ("/v1/.%3B/admin", DotSegment),
        ("/v1/customers.%3Bx/admin", TrailingDotOrSpace),
        ("/v1/..%2fadmin", EncodedSlash),
        ("/v1%2F..%2Fadmin", EncodedSlash),
        ("/v1\\..\\admin", Backslash),
        ("/v1/%5c../admin", EncodedBackslash),
        ("/v1/%252e%252e/admin", DoubleEncoding),
        ("/%25%35%3AA/", DoubleEncoding),
        ("/v1/%25%36%31", DoubleEncoding),
        ("/v1/%00", EncodedControlCharacter),
        ("/v1/%0d%0a", EncodedControlCharacter),
        ("/v1/\u{7f}", ControlCharacter),
        ("/v1/%zz", BadPercentEncoding),
        ("/v1/%4", BadPercentEncoding),
        ("*", PathNotAbsolute),
        ("v1/x", PathNotAbsolute),
    ] {
        assert_eq!(normalize_path(p), Err(rule), "{p}");
    }
}

/// IIS strips a trailing dot or space from a segment: `/v1/customers./x`
/// is `/v1/customers/x` to it.
#[test]
fn segments_ending_with_a_dot_or_a_space_are_refused() {
    for p in [
        "/v1/customers./x",
        "/v1/customers%20/x",
        "/v1./customers",
        "/v1/x.",
        "/v1/x%20",
        "/v1/customers.../x",
        "/v1/customers.%20/x",
        "/v1/customers%20./x",
        "/v1/customers%20%20",
        "/v1/customers.;a=b/x",
        "/v1/customers;a=b./x",
        "/%76%31./x",
        "/v1/%43ustomers./x",
        "/v1/...",
    ] {
        assert_eq!(normalize_path(p), Err(RequestRule::TrailingDotOrSpace), "{p}");
    }
    assert_eq!(normalize_path("/v1/../x"), Err(RequestRule::DotSegment));
    assert_eq!(normalize_path("/v1/%2e/x"), Err(RequestRule::DotSegment));
}

fn parts(raw: http::request::Builder) -> Parts {
    raw.body(()).unwrap().into_parts().0
}

fn check(b: http::request::Builder) -> Result<(), RequestRule> {
    Hygiene::default().check(&mut parts(b))
}

fn h1() -> http::request::Builder {
    http::Request::builder().uri("/v1/x").version(Version::HTTP_11).header("host", "localhost:8443")
}

#[test]
fn framing_rules() {
    assert!(check(h1().header("content-length", "5")).is_ok());
    assert!(check(h1().header("transfer-encoding", "Chunked")).is_ok());
    assert_eq!(
        check(h1().header("transfer-encoding", "chunked").header("content-length", "5")),
        Err(RequestRule::TeAndContentLength)
    );
    assert_eq!(check(h1().header("transfer-encoding", "gzip, chunked")), Err(RequestRule::TeNotChunked));
    assert!(check(h1().header("transfer-encoding", "chunked").header("transfer-encoding", "chunked")).is_err());
    assert_eq!(
        check(h1().header("content-length", "5").header("content-length", "5")),
        Err(RequestRule::RepeatedContentLength)
    );
    assert!(check(h1().header("content-length", "5, 5")).is_err());
    assert_eq!(check(h1().header("content-length", "+5")), Err(RequestRule::BadContentLength));
    let h10 = http::Request::builder().uri("/x").version(Version::HTTP_10).header("transfer-encoding", "chunked");
    assert_eq!(check(h10), Err(RequestRule::TeOutsideHttp11));
}

#[test]
fn host_rules() {
    assert_eq!(check(http::Request::builder().uri("/x").version(Version::HTTP_11)), Err(RequestRule::MissingHost));
    assert!(check(http::Request::builder().uri("/x").version(Version::HTTP_10)).is_ok());
    assert_eq!(check(h1().header("host", "other")), Err(RequestRule::RepeatedHost));
    let userinfo = http::Request::builder().uri("/x").header("host", "evil@localhost");
    assert_eq!(check(userinfo), Err(RequestRule::Userinfo));
    let h2 = http::Request::builder().uri("https://localhost:8443/x").version(Version::HTTP_2);
    assert!(check(h2).is_ok());
    let h2 = http::Request::builder()
        .uri("https://LOCALHOST:8443/x")
        .version(Version::HTTP_2)
        .header("host", "localhost:8443");
    assert!(check(h2).is_ok());
    let h2 = http::Request::builder().uri("https://localhost:8443/x").version(Version::HTTP_2).header("host", "evil");
    assert_eq!(check(h2), Err(RequestRule::HostMismatch));
    let userinfo = http::Request::builder().uri("https://evil@localhost:8443/x").version(Version::HTTP_2);
    assert!(check(userinfo).is_err());
}

#[test]
fn the_normalised_path_keeps_the_query() {
    let mut p = parts(h1().uri("/%76%31/customers?size=10&x=%2F"));
    Hygiene::default().check(&mut p).unwrap();
    assert_eq!(p.uri.path_and_query().unwrap().as_str(), "/v1/customers?size=10&x=%2F");
}

#[test]
fn underscores_cannot_stand_for_a_checked_field() {
    for name in [
        "x_ms_authorization_auxiliary",
        "X_MS_Authorization_Auxiliary",
        "content_length",
        "transfer_encoding",
        "x_forwarded_for",
    ] {
        assert_eq!(check(h1().header(name, "x")), Err(RequestRule::UnderscoreHeader), "{name}");
    }
    assert!(check(h1().header("x_custom_thing", "x")).is_ok());
    assert!(check(h1().header("x-ms-client-request-id", "x")).is_ok());
}

#[test]
fn header_count_is_bounded() {
    let mut b = h1();
    for i in 0..100 {
        b = b.header(format!("x-{i}"), "1");
    }
    assert_eq!(check(b), Err(RequestRule::TooManyHeaders));
}
