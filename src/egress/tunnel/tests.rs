use super::super::hosts::pattern_matches;
use super::*;

fn client_hello(server_name: &str) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// `flight` (one ClientHello record) with an extension of type `ty` added.
fn with_extension(flight: &[u8], ty: u16) -> Vec<u8> {
    let mut message = flight[5..].to_vec();
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(message[at]);
    at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    at += 1 + usize::from(message[at]);
    let extensions = usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    // For ECH, an outer ECHClientHello: HPKE suite, config id, `enc`, payload.
    let mut data = vec![0x00, 0x00, 0x01, 0x00, 0x01, 0x2a, 0x00, 0x20];
    data.extend_from_slice(&[0x11; 32]);
    data.extend_from_slice(&[0x00, 0x40]);
    data.extend_from_slice(&[0x22; 64]);
    let mut ext = ty.to_be_bytes().to_vec();
    ext.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    ext.extend_from_slice(&data);
    message[at..at + 2].copy_from_slice(&u16::try_from(extensions + ext.len()).unwrap().to_be_bytes());
    message.extend_from_slice(&ext);
    let body = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
    message[1..4].copy_from_slice(&body[1..]);
    let mut out = vec![0x16, 0x03, 0x01];
    out.extend_from_slice(&u16::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&message);
    out
}

#[tokio::test]
async fn a_hello_that_seals_its_server_name_is_not_admitted() {
    let hello = client_hello("files.example.net");
    let types = hello_extensions(&hello).unwrap();
    assert!(types.contains(&0) && !types.contains(&0xfe0d), "{types:?}");
    assert_eq!(hello_extensions(&reframe(&hello, 100)), Some(types), "split over records");
    for ty in SEALING_EXTENSIONS {
        let sealed = with_extension(&hello, ty);
        assert!(hello_extensions(&sealed).unwrap().contains(&ty));
        let first = flight(&sealed).await.0.unwrap();
        assert_eq!(first, FirstFlight::Sealed);
        let target = Target { host: "files.example.net".into(), port: 443 };
        assert_eq!(admit(&first, &target, |_| false), Err(Reason::EgressDenied));
    }
    let unknown = with_extension(&hello, 0x7777);
    assert_eq!(flight(&unknown).await.0.unwrap(), FirstFlight::Hello(Some("files.example.net".into())));
    assert_eq!(hello_extensions(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01"), None, "truncated");
}

/// The handshake messages of `flight` (one or more TLS records) framed
/// anew in records of at most `size` bytes of payload each.
fn reframe(flight: &[u8], size: usize) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut rest = flight;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        payload.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    let mut out = Vec::new();
    for piece in payload.chunks(size) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
        out.extend_from_slice(piece);
    }
    out
}

/// What `first_flight` makes of `bytes`, written in small pieces (so
/// that they arrive over several reads), the writer then staying open.
async fn flight(bytes: &[u8]) -> (std::io::Result<FirstFlight>, Vec<u8>) {
    let (mut tx, mut rx) = tokio::io::duplex(64);
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        for piece in bytes.chunks(50) {
            if tx.write_all(piece).await.is_err() {
                break;
            }
        }
        tx
    });
    let mut buffered = Vec::new();
    let first = first_flight(&mut rx, &mut buffered, Duration::from_millis(300)).await;
    writer.abort();
    (first, buffered)
}

fn target() -> Target {
    Target { host: "files.example.net".into(), port: 443 }
}

fn guarded(name: &str) -> bool {
    name == "api.partnercenter.microsoft.com" || pattern_matches("*.graph.example", name)
}

fn admitted(first: FirstFlight) -> Result<(), &'static str> {
    admit(&first, &target(), guarded).map_err(Reason::as_str)
}

fn hello(name: &str) -> FirstFlight {
    FirstFlight::Hello(Some(name.into()))
}

#[test]
fn only_a_hello_naming_no_server_or_the_target_is_admitted() {
    assert_eq!(admitted(FirstFlight::Hello(None)), Ok(()));
    for own in ["files.example.net", "FILES.Example.NET", "files.example.net."] {
        assert_eq!(admitted(hello(own)), Ok(()), "{own}");
    }
    for name in ["api.partnercenter.microsoft.com", "API.PartnerCenter.microsoft.com.", "v1.graph.example"] {
        assert_eq!(admitted(hello(name)), Err("egress_denied"), "guarded {name}");
    }
    for name in ["other.example.net", "sub.files.example.net", "files.example.net.evil", "xfiles.example.net", ""] {
        assert_eq!(admitted(hello(name)), Err("misdirected_request"), "another host {name:?}");
    }
    for first in [FirstFlight::NotTls, FirstFlight::TooLong, FirstFlight::Timeout] {
        assert_eq!(admitted(first), Err("egress_denied"));
    }
}

#[test]
fn a_guarded_target_is_refused_even_by_its_own_name() {
    let target = Target { host: "api.partnercenter.microsoft.com".into(), port: 443 };
    let first = hello("api.partnercenter.microsoft.com");
    assert_eq!(admit(&first, &target, guarded), Err(Reason::EgressDenied));
}

#[tokio::test]
async fn reads_the_server_name_and_keeps_every_byte() {
    let hello = client_hello("API.PartnerCenter.microsoft.com");
    let (first, buffered) = flight(&hello).await;
    assert_eq!(first.unwrap(), FirstFlight::Hello(Some("api.partnercenter.microsoft.com".into())));
    assert_eq!(buffered, hello);
    let (first, _) = flight(&client_hello("127.0.0.1")).await;
    assert_eq!(first.unwrap(), FirstFlight::Hello(None), "an address is not sent as a server name");
}

#[tokio::test]
async fn a_hello_split_over_many_records_is_read_whole() {
    let hello = client_hello("files.example.net");
    for size in [1, 7, 100, 512] {
        let split = reframe(&hello, size);
        let (first, buffered) = flight(&split).await;
        assert_eq!(first.unwrap(), FirstFlight::Hello(Some("files.example.net".into())), "records of {size}");
        assert_eq!(buffered, split);
    }
}

#[tokio::test]
async fn a_hello_larger_than_one_record_is_read_whole() {
    // A hello with a 20 000-byte extension (as a large PSK identity or
    // several post-quantum key shares make it), in full-size records.
    let hello = client_hello("files.example.net");
    let mut message = reframe(&hello, usize::MAX >> 1)[5..].to_vec();
    let filler = 20_000usize;
    grow_client_hello(&mut message, filler);
    let mut flight_bytes = Vec::new();
    for piece in message.chunks(16 * 1024) {
        flight_bytes.extend_from_slice(&[0x16, 0x03, 0x01]);
        flight_bytes.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
        flight_bytes.extend_from_slice(piece);
    }
    assert!(flight_bytes.len() > 16 * 1024 + 5);
    let (first, _) = flight(&flight_bytes).await;
    assert_eq!(first.unwrap(), FirstFlight::Hello(Some("files.example.net".into())));
}

/// Adds an unknown extension of `n` bytes of zeros to the ClientHello
/// handshake `message` (header included), fixing up the lengths.
fn grow_client_hello(message: &mut Vec<u8>, n: usize) {
    // Handshake header (4), version (2), random (32), session id, cipher
    // suites, compression methods, then the extensions' length.
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(message[at]);
    at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    at += 1 + usize::from(message[at]);
    let extensions = usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    let added = 4 + n;
    let new_extensions = u16::try_from(extensions + added).unwrap();
    message[at..at + 2].copy_from_slice(&new_extensions.to_be_bytes());
    // An unassigned extension type; servers ignore those (RFC 8446 §4.2).
    message.extend_from_slice(&0xfe77u16.to_be_bytes());
    message.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
    message.resize(message.len() + n, 0);
    let body = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
    message[1..4].copy_from_slice(&body[1..]);
}

#[tokio::test]
async fn bytes_that_are_not_a_tls_handshake_are_not_tls() {
    let server_hello = {
        let mut h = reframe(&client_hello("files.example.net"), 16 * 1024);
        h[5] = 2; // handshake type: ServerHello
        h
    };
    let cases: [(&str, &[u8]); 6] = [
        ("plain HTTP", b"GET / HTTP/1.1\r\nHost: files.example.net\r\n\r\n"),
        ("SSH", b"SSH-2.0-OpenSSH_9.6\r\n"),
        ("application data", &[0x17, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00]),
        ("an oversized record", &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]),
        ("SSLv2 framing", &[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]),
        ("another handshake message", &server_hello),
    ];
    for (what, bytes) in cases {
        let (first, _) = flight(bytes).await;
        assert_eq!(first.unwrap(), FirstFlight::NotTls, "{what}");
    }
}

#[tokio::test]
async fn silence_or_half_a_hello_times_out() {
    let (first, buffered) = flight(b"").await;
    assert_eq!(first.unwrap(), FirstFlight::Timeout, "nothing sent");
    assert!(buffered.is_empty());
    let hello = client_hello("files.example.net");
    let (first, buffered) = flight(&hello[..hello.len() / 2]).await;
    assert_eq!(first.unwrap(), FirstFlight::Timeout, "half a hello");
    assert_eq!(buffered.len(), hello.len() / 2);
    let (first, _) = flight(&hello[..3]).await;
    assert_eq!(first.unwrap(), FirstFlight::Timeout, "part of a record header");
}

#[tokio::test]
async fn a_hello_that_never_ends_is_refused_in_bounded_memory() {
    // ClientHello headers announcing 0xffff and 0xffffff bytes, then
    // filler, one byte or a full record at a time.
    for (length, record) in [([0x00, 0xff, 0xff], 1), ([0x00, 0xff, 0xff], 16 * 1024), ([0xff, 0xff, 0xff], 1)] {
        let mut message = [&[0x01][..], &length[..]].concat();
        message.resize(4 + 0xffff, 0x00);
        let bytes = reframe_raw(&message[..message.len() - 1], record);
        let (first, buffered) = flight(&bytes).await;
        let first = first.unwrap();
        assert!(matches!(first, FirstFlight::NotTls | FirstFlight::TooLong), "{length:?} in {record}: {first:?}");
        assert!(buffered.len() <= MAX_FIRST_FLIGHT, "{} bytes read", buffered.len());
    }
}

/// `payload` as handshake records of `size` bytes each.
fn reframe_raw(payload: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in payload.chunks(size) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
        out.extend_from_slice(piece);
    }
    out
}

#[tokio::test]
async fn a_closed_connection_before_a_hello_is_an_error() {
    let hello = client_hello("files.example.net");
    let (mut tx, mut rx) = tokio::io::duplex(64 * 1024);
    tx.write_all(&hello[..100]).await.unwrap();
    drop(tx);
    let mut buffered = Vec::new();
    let first = first_flight(&mut rx, &mut buffered, Duration::from_secs(5)).await;
    assert_eq!(first.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
}
