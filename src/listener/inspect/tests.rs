use super::*;

/// Feeds `input` in pieces of every size from 1 to 7 bytes and returns the fault.
fn fault(input: &[u8]) -> Option<RequestRule> {
    let mut results = Vec::new();
    for step in 1..=7 {
        let f = Fault::default();
        let mut i = Inspector::new(8192, f.clone());
        for piece in input.chunks(step) {
            i.feed(piece);
        }
        results.push(f.get());
    }
    let whole = Fault::default();
    Inspector::new(8192, whole.clone()).feed(input);
    assert!(results.iter().all(|r| *r == whole.get()), "{results:?} vs {:?}", whole.get());
    whole.get()
}

#[test]
fn clean_pipelined_requests_pass() {
    let input = b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\n\n\n\na\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n\n\na\r\n0\r\nT: 1\r\n\r\n\
GET /d HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(fault(input), None);
}

#[test]
fn bare_lf_and_folding_are_faults() {
    assert_eq!(fault(b"GET / HTTP/1.1\nHost: x\n\n"), Some(RequestRule::BareLf));
    assert_eq!(fault(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), Some(RequestRule::BareLf));
    assert_eq!(fault(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"), Some(RequestRule::FoldedHeader));
    assert_eq!(fault(b"GET / HTTP/1.1\r\nHost: x\rY: 1\r\n\r\n"), Some(RequestRule::BareCr));
    // After a clean request, in the second one.
    assert_eq!(fault(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\nHost: x\n\n"), Some(RequestRule::BareLf));
}

#[test]
fn body_bytes_are_not_read_as_heads() {
    assert_eq!(fault(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\n \n\nGET / HTTP/1.1\r\n\r\n"), None);
}

#[test]
fn chunk_extension_limits() {
    let big =
        format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\na\r\n0\r\n\r\n", "x".repeat(20_000));
    assert_eq!(fault(big.as_bytes()), Some(RequestRule::ChunkLineTooLong));
    let mut many = String::from("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..20 {
        many.push_str(&format!("1;{}\r\na\r\n", "e".repeat(100)));
    }
    many.push_str("0\r\n\r\n");
    assert_eq!(fault(many.as_bytes()), Some(RequestRule::ChunkExtensionsTooLong));
    assert_eq!(
        fault(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n"),
        Some(RequestRule::BareLf)
    );
    assert_eq!(fault(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), Some(RequestRule::BadChunkSize));
    for bad in [&b" 5"[..], b"\t5", b"+5", b"-5", b"5 x", b"0x5", b"", b" "] {
        let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(fault(&input), Some(RequestRule::BadChunkSize), "{}", String::from_utf8_lossy(bad));
    }
    for good in [&b"5"[..], b"5 ", b"5\t;x=y", b"5 ; x", b"005"] {
        let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(good);
        input.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(fault(&input), None, "{}", String::from_utf8_lossy(good));
    }
    assert_eq!(
        fault(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"),
        Some(RequestRule::BadChunkEnd)
    );
}

#[test]
fn ambiguous_framing_is_a_fault() {
    let post = |h: &str| format!("POST / HTTP/1.1\r\n{h}\r\n\r\n0\r\n\r\n");
    let cases = [
        ("Content-Length: 6\r\nTransfer-Encoding: chunked", RequestRule::TeAndContentLength),
        ("Transfer-Encoding: chunked\r\nContent-Length: 6", RequestRule::TeAndContentLength),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", RequestRule::TeNotChunked),
        ("Content-Length: 5\r\nContent-Length: 5", RequestRule::RepeatedContentLength),
        ("Content-Length: 5, 5", RequestRule::BadContentLength),
        ("Transfer-Encoding: gzip, chunked", RequestRule::TeNotChunked),
        ("Transfer-Encoding : chunked", RequestRule::SpaceBeforeColon),
    ];
    for (headers, want) in cases {
        assert_eq!(fault(post(headers).as_bytes()), Some(want), "{headers}");
    }
    let h10 = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(fault(h10), Some(RequestRule::TeOutsideHttp11));
}

#[test]
fn oversized_heads_are_left_to_hyper() {
    let f = Fault::default();
    let mut i = Inspector::new(100, f.clone());
    i.feed(format!("GET / HTTP/1.1\r\nX: {}\n\n", "a".repeat(200)).as_bytes());
    assert_eq!(f.get(), None);
    assert!(matches!(i.state, State::Done));
}

/// A stream that hands out one byte a read.
struct Bytewise(&'static [u8]);

impl AsyncRead for Bytewise {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some((first, rest)) = self.0.split_first() {
            buf.put_slice(&[*first]);
            self.0 = rest;
        }
        Poll::Ready(Ok(()))
    }
}

/// What a reader gets from `Inspected` over `input`, whole and a byte a read.
fn read_through(input: &'static [u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let inspected = || Some(Inspector::new(8192, Fault::default()));
    let mut whole = Vec::new();
    runtime.block_on(Inspected::new(input, inspected()).read_to_end(&mut whole)).unwrap();
    let mut bytewise = Vec::new();
    runtime.block_on(Inspected::new(Bytewise(input), inspected()).read_to_end(&mut bytewise)).unwrap();
    assert_eq!(whole, bytewise);
    whole
}

#[test]
fn empty_lines_between_requests_are_dropped_and_nothing_else() {
    // Before a request, and a read of nothing but empty lines is not the end.
    assert_eq!(read_through(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(read_through(b"\r\n"), b"");
    // Inside a body they are body bytes.
    let body = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\r\n";
    assert_eq!(read_through(body), body);
}
