//! Token requests in multipart bodies, and what cannot be read unambiguously.

use super::*;

/// Multipart bodies in every form a lenient server reads.
#[test]
fn multipart_token_requests() {
    let cases: Vec<Case> = vec![
        // Multipart.
        (
            "multipart quoted",
            None,
            Some("multipart/form-data; boundary=\"x\"".into()),
            grant("name=\"grant_type\"", "password"),
            Ok(PW),
        ),
        ("multipart unquoted", None, MPX.map(Into::into), grant("name=grant_type", "password"), Ok(PW)),
        (
            "multipart any case",
            None,
            Some("MULTIPART/FORM-DATA; BOUNDARY=x".into()),
            grant("NAME=\"GRANT_TYPE\"", "PassWord"),
            Ok(PW),
        ),
        ("multipart RFC 5987", None, MPX.map(Into::into), grant("name*=UTF-8''grant%5Ftype", "password"), Ok(PW)),
        (
            "multipart RFC 5987 latin-1",
            None,
            MPX.map(Into::into),
            grant("NAME*=iso-8859-1'en'grant_type", "password"),
            Ok(PW),
        ),
        (
            "multipart encoded word",
            None,
            MPX.map(Into::into),
            grant("name=\"=?utf-8?B?Z3JhbnRfdHlwZQ==?=\"", "password"),
            Ok(PW),
        ),
        ("multipart Q word", None, MPX.map(Into::into), grant("name==?UTF-8?Q?grant=5Ftype?=", "password"), Ok(PW)),
        (
            "multipart encoded word that does not decode",
            None,
            MPX.map(Into::into),
            grant("name=\"=?utf-8?B?Z3JhbnRfd*HlwZQ==?=\"", "password"),
            Err(()),
        ),
        (
            "multipart two names",
            None,
            MPX.map(Into::into),
            grant("name=a; name*=UTF-8''grant_type", "password"),
            Ok(PW),
        ),
        ("multipart declared a form", None, FORM.map(Into::into), grant("name=grant_type", "password"), Ok(PW)),
        ("multipart undeclared", None, None, grant("name=grant_type", "password"), Ok(PW)),
        (
            "multipart sniffed after a blank line",
            None,
            None,
            [b"\r\n".as_slice(), &grant("name=grant_type", "password")].concat(),
            Ok(PW),
        ),
        (
            "multipart delimiter inside the preamble",
            None,
            Some(mp("b")),
            b"junk--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b--".to_vec(),
            Ok(PW),
        ),
        (
            "multipart LF",
            None,
            Some(mp("b")),
            b"--b\nContent-Disposition: form-data; name=grant_type\n\npassword\n--b--".to_vec(),
            Ok(PW),
        ),
        (
            "multipart preamble and epilogue",
            None,
            Some(mp("b")),
            b"hello\r\n--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b--\r\ngrant_type=x"
                .to_vec(),
            Ok(PW),
        ),
        (
            "multipart preamble in quotes or slashes is a preamble",
            None,
            Some(mp("b")),
            b"\"preamble\" /x/\r\n--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n--b--"
                .to_vec(),
            Ok(PW),
        ),
        (
            "multipart padding",
            None,
            Some(mp("b")),
            b"--b \t\r\ncontent-disposition:form-data;name = grant_type\r\n\r\n\r\n password\t\r\n--b-- \r\n".to_vec(),
            Ok(PW),
        ),
        (
            "multipart file",
            None,
            MPX.map(Into::into),
            grant("name=\"grant_type\"; filename=\"g.txt\"", "password"),
            Ok(PW),
        ),
        (
            "multipart second disposition",
            None,
            MPX.map(Into::into),
            multipart("x", &[(&format!("{}\r\n{}", named("name=a"), named("name=grant_type")), "password")]),
            Ok(PW),
        ),
        (
            "multipart 7bit",
            None,
            MPX.map(Into::into),
            multipart(
                "x",
                &[(&format!("{}\r\nContent-Transfer-Encoding: 7BIT", named("name=grant_type")), "password")],
            ),
            Ok(PW),
        ),
        (
            "multipart among others",
            None,
            MPX.map(Into::into),
            multipart("x", &[(&named("name=grant_type"), "refresh_token"), (&named("name=grant_type"), "password")]),
            Ok(PW),
        ),
        (
            "multipart boundary with spaces",
            None,
            Some("multipart/form-data; boundary=\"a b\"".into()),
            multipart("a b", &[(&named("name=grant_type"), "password")]),
            Ok(PW),
        ),
    ];
    check(cases);
}

/// Refused: what cannot be read unambiguously.
#[test]
fn token_requests_that_cannot_be_read_unambiguously_are_refused() {
    let cases: Vec<Case> = vec![
        // Refused: what cannot be read unambiguously.
        (
            "UTF-16 charset",
            None,
            Some("application/x-www-form-urlencoded; charset=utf-16".into()),
            b"grant_type=refresh_token".to_vec(),
            Err(()),
        ),
        (
            "UTF-16LE charset quoted",
            None,
            Some("application/json; CHARSET=\"UTF-16LE\"".into()),
            b"{}".to_vec(),
            Err(()),
        ),
        ("a second charset", None, Some("text/plain; charset=utf-8; charset=utf-7".into()), Vec::new(), Err(())),
        (
            "unterminated quote",
            None,
            Some("application/x-www-form-urlencoded; charset=\"utf-8".into()),
            Vec::new(),
            Err(()),
        ),
        (
            "not a media type",
            None,
            Some("application/x-www-form-urlencoded, multipart/form-data".into()),
            Vec::new(),
            Err(()),
        ),
        (
            "multipart without boundary",
            None,
            Some("multipart/form-data".into()),
            grant("name=grant_type", "password"),
            Err(()),
        ),
        ("multipart empty boundary", None, Some("multipart/form-data; boundary=\"\"".into()), Vec::new(), Err(())),
        (
            "multipart two boundaries",
            None,
            Some("multipart/form-data; boundary=x; boundary=y".into()),
            grant("name=grant_type", "x"),
            Err(()),
        ),
        ("multipart long boundary", None, Some(mp(&"b".repeat(71))), multipart(&"b".repeat(71), &[]), Err(())),
        ("multipart body is a form", None, MPX.map(Into::into), b"grant_type=refresh_token".to_vec(), Err(())),
        (
            "multipart other boundary",
            None,
            MPX.map(Into::into),
            multipart("y", &[(&named("name=grant_type"), "x")]),
            Err(()),
        ),
        (
            "multipart unclosed",
            None,
            MPX.map(Into::into),
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb".to_vec(),
            Err(()),
        ),
        (
            "multipart delimiter only in the preamble, with junk",
            None,
            MPX.map(Into::into),
            b"a--xb\r\n".to_vec(),
            Err(()),
        ),
        (
            "multipart delimiter with junk",
            None,
            MPX.map(Into::into),
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--xjunk\r\n\r\nc\r\n--x--".to_vec(),
            Err(()),
        ),
        (
            "multipart part without header end",
            None,
            MPX.map(Into::into),
            b"--x\r\nContent-Disposition: form-data; name=a\r\n--x--".to_vec(),
            Err(()),
        ),
        (
            "multipart base64",
            None,
            MPX.map(Into::into),
            multipart(
                "x",
                &[(&format!("{}\r\nContent-Transfer-Encoding: base64", named("name=grant_type")), "cGFzc3dvcmQ=")],
            ),
            Err(()),
        ),
        (
            "multipart quoted-printable",
            None,
            MPX.map(Into::into),
            multipart("x", &[(&format!("content-transfer-encoding: Quoted-Printable\r\n{}", named("name=a")), "x")]),
            Err(()),
        ),
        (
            "multipart part charset",
            None,
            MPX.map(Into::into),
            multipart("x", &[(&format!("{}\r\nContent-Type: text/plain; charset=utf-16", named("name=a")), "x")]),
            Err(()),
        ),
        (
            "multipart nested",
            None,
            MPX.map(Into::into),
            multipart("x", &[(&format!("{}\r\nContent-Type: multipart/mixed; boundary=y", named("name=a")), "--y--")]),
            Err(()),
        ),
        (
            "multipart folded header",
            None,
            MPX.map(Into::into),
            multipart("x", &[("Content-Disposition: form-data;\r\n name=grant_type", "password")]),
            Err(()),
        ),
        (
            "multipart header without colon",
            None,
            MPX.map(Into::into),
            multipart("x", &[("Content-Disposition form-data; name=a", "x")]),
            Err(()),
        ),
        (
            "multipart continued name",
            None,
            MPX.map(Into::into),
            grant("name*0=grant_; name*1=type", "password"),
            Err(()),
        ),
        (
            "multipart RFC 5987 other charset",
            None,
            MPX.map(Into::into),
            grant("name*=UTF-16''%00g", "password"),
            Err(()),
        ),
        (
            "sniffed, does not parse",
            None,
            FORM.map(Into::into),
            b"--x\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword\r\n".to_vec(),
            Err(()),
        ),
    ];
    check(cases);
}
