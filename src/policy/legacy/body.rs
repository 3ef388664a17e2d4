//! The parameters of a token request, read every way a lenient server could
//! read them: the query; the body as a form (whatever its declared type,
//! unless multipart), as multipart (declared, or starting with a delimiter
//! line), as a JSON object; and the body again without its NUL bytes (UTF-16
//! text in disguise). Forms are read once more with System.Web's `%uXXXX`
//! escapes decoded. What cannot be read unambiguously is refused: a charset
//! other than UTF-8, US-ASCII or ISO-8859-1, multipart that does not parse,
//! a transfer-encoded part, a body declared or shaped as JSON that is not
//! one JSON object, a part name shaped as an encoded word that does not
//! decode.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::reason::RequestRule;

const MALFORMED_TYPE: RequestRule = RequestRule::TokenRequestContentType;
const CHARSET: RequestRule = RequestRule::TokenRequestCharset;
const NO_BOUNDARY: RequestRule = RequestRule::TokenRequestMultipart;
const BAD_MULTIPART: RequestRule = RequestRule::TokenRequestMultipart;
const TRANSFER_ENCODED: RequestRule = RequestRule::TokenRequestTransferEncoding;
/// A multipart part holding multipart.
const NESTED: RequestRule = RequestRule::TokenRequestMultipart;
/// A part name in a charset other than the accepted ones.
const NAME_CHARSET: RequestRule = RequestRule::TokenRequestCharset;
/// A body declared or shaped as JSON that is not one JSON object.
const BAD_JSON: RequestRule = RequestRule::TokenRequestJson;

/// Longest boundary RFC 2046 §5.1.1 allows.
const MAX_BOUNDARY: usize = 70;

/// One parameter as found: a form pair or JSON member has one name; a
/// multipart part has each name its headers give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub names: Vec<String>,
    pub value: String,
}

/// Every parameter of the request, in the order found: query, body readings,
/// then the readings of the body without its NUL bytes (when it has some).
pub fn params(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<Vec<Param>, RequestRule> {
    let boundary = declared_boundary(content_type)?;
    let declared_json = declared_json(content_type);
    let mut out = Vec::new();
    form(query.unwrap_or_default().as_bytes(), &mut out);
    read(body, boundary.as_deref(), declared_json, &mut out)?;
    if body.contains(&0) {
        let stripped: Vec<u8> = body.iter().copied().filter(|&b| b != 0).collect();
        read(&stripped, boundary.as_deref(), declared_json, &mut out)?;
    }
    Ok(out)
}

fn read(body: &[u8], boundary: Option<&[u8]>, declared_json: bool, out: &mut Vec<Param>) -> Result<(), RequestRule> {
    let body = without_bom(body);
    match boundary {
        Some(boundary) => multipart(body, boundary, out)?,
        None => {
            form(body, out);
            if let Some(boundary) = sniffed_boundary(body) {
                multipart(body.trim_ascii_start(), boundary, out)?;
            }
        }
    }
    // A declared multipart body may open with any preamble (RFC 2046 §5.1.1):
    // there only a JSON document's own opening makes it shaped as JSON.
    json(body, declared_json, boundary.is_none(), out)
}

/// A JSON media type, in any case: `application/json`, `text/json`, any
/// `…/json`, `…/x-json` or `…+json`.
fn declared_json(content_type: Option<&str>) -> bool {
    let Some((media, _)) = content_type.and_then(media_type) else { return false };
    let sub = media.split_once('/').map_or("", |(_, sub)| sub).to_ascii_lowercase();
    sub == "json" || sub == "x-json" || sub.ends_with("+json")
}

fn without_bom(body: &[u8]) -> &[u8] {
    [&b"\xef\xbb\xbf"[..], b"\xff\xfe", b"\xfe\xff"].iter().find_map(|bom| body.strip_prefix(*bom)).unwrap_or(body)
}

/// `bytes` as `application/x-www-form-urlencoded`; a second time when it
/// has `%uXXXX` escapes, which System.Web's `UrlDecode` also reads.
fn form(bytes: &[u8], out: &mut Vec<Param>) {
    let pairs = |bytes: &[u8]| {
        form_urlencoded::parse(bytes)
            .map(|(k, v)| Param { names: vec![k.into_owned()], value: v.into_owned() })
            .collect::<Vec<_>>()
    };
    out.extend(pairs(bytes));
    if let Some(recoded) = percent_u(bytes) {
        out.extend(pairs(&recoded));
    }
}

/// `bytes` with each `%uXXXX` (a UTF-16 code unit) rewritten as the
/// percent-encoded UTF-8 of its character, or `None` when it has none.
fn percent_u(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut found = false;
    let mut i = 0;
    while i < bytes.len() {
        let unit = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2..i + 6)) {
            (b'%', Some(b'u' | b'U'), Some(hex)) if hex.iter().all(u8::is_ascii_hexdigit) => {
                std::str::from_utf8(hex).ok().and_then(|h| u32::from_str_radix(h, 16).ok())
            }
            _ => None,
        };
        match unit {
            Some(unit) => {
                let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    out.extend_from_slice(format!("%{b:02X}").as_bytes());
                }
                found = true;
                i += 6;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    found.then_some(out)
}

/// The multipart boundary the `Content-Type` declares, if it is multipart;
/// refuses a charset the body could be read in differently, and anything
/// that is not a media type with parameters.
fn declared_boundary(content_type: Option<&str>) -> Result<Option<Vec<u8>>, RequestRule> {
    let Some(value) = content_type.filter(|v| !v.trim().is_empty()) else { return Ok(None) };
    let (media, params) = media_type(value).ok_or(MALFORMED_TYPE)?;
    if !params.iter().all(readable) {
        return Err(CHARSET);
    }
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return Ok(None);
    }
    let mut boundaries = params.iter().filter(|(k, _)| k.eq_ignore_ascii_case("boundary")).map(|(_, b)| b);
    match (boundaries.next(), boundaries.next()) {
        (Some(b), None) if !b.is_empty() && b.len() <= MAX_BOUNDARY => Ok(Some(b.clone().into_bytes())),
        _ => Err(NO_BOUNDARY),
    }
}

/// `type/subtype` and its parameters (RFC 9110 §8.3.1), or `None`.
fn media_type(value: &str) -> Option<(&str, Vec<(String, String)>)> {
    let (media, rest) = value.split_once(';').unwrap_or((value, ""));
    let media = media.trim();
    let (kind, sub) = media.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(is_tchar);
    if !(token(kind) && token(sub)) {
        return None;
    }
    Some((media, parameters(rest)?))
}

/// A `charset` parameter must name an encoding that reads ASCII as ASCII.
fn readable((name, value): &(String, String)) -> bool {
    !name.eq_ignore_ascii_case("charset")
        || ["utf-8", "us-ascii", "iso-8859-1"].iter().any(|c| value.trim().eq_ignore_ascii_case(c))
}

/// `; name=value` parameters (values unquoted); `None` when malformed.
fn parameters(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return None;
        }
        let after = after.trim_start_matches([' ', '\t']);
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = after.find(';').unwrap_or(after.len());
                let value = after[..end].trim_end_matches([' ', '\t']);
                if value.is_empty() || value.contains(|c: char| c.is_ascii_whitespace() || c == '"') {
                    return None;
                }
                (value.to_string(), &after[end..])
            }
        };
        rest = tail.trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(';') {
            return None;
        }
        out.push((name.to_string(), value));
    }
}

/// The rest of a quoted string (RFC 9110 §5.6.4) after its opening quote:
/// its value and what follows the closing quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The boundary of a body that starts (after whitespace) with `--` and a
/// line: a server that guesses the type from the body would read it so.
fn sniffed_boundary(body: &[u8]) -> Option<&[u8]> {
    let rest = body.trim_ascii_start().strip_prefix(b"--")?;
    let line = &rest[..memchr::memchr(b'\n', rest)?];
    Some(line.trim_ascii_end())
}

/// Lines of `bytes` with their start offsets, without their CR LF or LF.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8], bool)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos > bytes.len() {
            return None;
        }
        let start = pos;
        let (end, ended) = match memchr::memchr(b'\n', &bytes[start..]) {
            Some(i) => (start + i, true),
            None => (bytes.len(), false),
        };
        pos = end + 1;
        let line = &bytes[start..end];
        Some((start, line.strip_suffix(b"\r").unwrap_or(line), ended))
    })
}

/// The parts of a multipart body (RFC 2046 §5.1.1), read leniently where
/// a lenient server is (LF line ends, a preamble, padding after a delimiter)
/// and refused where one could read it otherwise (a delimiter line with
/// more after it, no closing delimiter).
fn multipart(body: &[u8], boundary: &[u8], out: &mut Vec<Param>) -> Result<(), RequestRule> {
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(BAD_MULTIPART);
    }
    let delimiter = [b"--", boundary].concat();
    // The first delimiter counts wherever it is, even inside a line of the
    // preamble, as ASP.NET Core's `MultipartReader` finds it.
    let first = memchr::memmem::find(body, &delimiter).ok_or(BAD_MULTIPART)?;
    let body = &body[first..];
    let mut part_start = None;
    for (start, line, ended) in lines(body) {
        let Some(rest) = line.strip_prefix(delimiter.as_slice()) else { continue };
        let close = rest.starts_with(b"--");
        let padding = if close { &rest[2..] } else { rest };
        if !padding.iter().all(|b| *b == b' ' || *b == b'\t') {
            return Err(BAD_MULTIPART);
        }
        if let Some(from) = part_start {
            // The line break before a delimiter belongs to the delimiter.
            let to = start.saturating_sub(1);
            let to = if to > 0 && body[to - 1] == b'\r' { to - 1 } else { to };
            part(body.get(from..to).unwrap_or_default(), out)?;
        }
        if close {
            return Ok(());
        }
        if !ended {
            return Err(BAD_MULTIPART);
        }
        part_start = Some(start + line.len() + if body[start + line.len()] == b'\r' { 2 } else { 1 });
    }
    Err(BAD_MULTIPART)
}

/// One part: its headers, up to an empty line, then its value.
fn part(bytes: &[u8], out: &mut Vec<Param>) -> Result<(), RequestRule> {
    let mut names = Vec::new();
    for (start, line, ended) in lines(bytes) {
        if !ended {
            return Err(BAD_MULTIPART);
        }
        if line.is_empty() {
            let value = &bytes[start + if bytes[start] == b'\r' { 2 } else { 1 }..];
            if !names.is_empty() {
                out.push(Param { names, value: String::from_utf8_lossy(value).into_owned() });
            }
            return Ok(());
        }
        header(&String::from_utf8_lossy(line), &mut names)?;
    }
    Err(BAD_MULTIPART)
}

fn header(line: &str, names: &mut Vec<String>) -> Result<(), RequestRule> {
    let (name, value) = line.split_once(':').ok_or(BAD_MULTIPART)?;
    // A folded line (RFC 5322 §3.2.2) begins with whitespace and has no name.
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(BAD_MULTIPART);
    }
    match name.to_ascii_lowercase().as_str() {
        "content-disposition" => disposition(value, names),
        "content-transfer-encoding" => match value.trim().to_ascii_lowercase().as_str() {
            "7bit" | "8bit" | "binary" => Ok(()),
            _ => Err(TRANSFER_ENCODED),
        },
        "content-type" => {
            let (media, params) = media_type(value).ok_or(BAD_MULTIPART)?;
            if media.to_ascii_lowercase().starts_with("multipart/") {
                return Err(NESTED);
            }
            if params.iter().all(readable) { Ok(()) } else { Err(CHARSET) }
        }
        _ => Ok(()),
    }
}

/// Every name a `Content-Disposition` gives its part, whatever its type:
/// `name`, as written and as a MIME encoded word decoded, and `name*`
/// (RFC 5987). Continuations (`name*0`, RFC 2231) are refused.
fn disposition(value: &str, names: &mut Vec<String>) -> Result<(), RequestRule> {
    let (kind, params) = value.split_once(';').unwrap_or((value, ""));
    let kind = kind.trim();
    if kind.is_empty() || !kind.bytes().all(is_tchar) {
        return Err(BAD_MULTIPART);
    }
    for (key, value) in parameters(params).ok_or(BAD_MULTIPART)? {
        let key = key.to_ascii_lowercase();
        match key.strip_prefix("name") {
            Some("") => {
                if let Some(decoded) = encoded_word(&value)? {
                    names.push(decoded);
                }
                names.push(value);
            }
            Some("*") => names.push(ext_value(&value)?),
            Some(rest) if rest.starts_with('*') => return Err(BAD_MULTIPART),
            _ => {}
        }
    }
    Ok(())
}

/// `text` in `charset`, which must read ASCII as ASCII.
fn decode(charset: &str, bytes: &[u8]) -> Result<String, RequestRule> {
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "us-ascii" => Ok(String::from_utf8_lossy(bytes).into_owned()),
        "iso-8859-1" => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => Err(NAME_CHARSET),
    }
}

/// An RFC 5987 `charset'language'percent-encoded` value.
fn ext_value(value: &str) -> Result<String, RequestRule> {
    let mut fields = value.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(encoded)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(BAD_MULTIPART);
    };
    decode(charset, &Cow::from(percent_encoding::percent_decode_str(encoded)))
}

/// An RFC 2047 encoded word (`=?charset?B|Q?text?=`), decoded; `None` when
/// `value` is not one.
fn encoded_word(value: &str) -> Result<Option<String>, RequestRule> {
    let Some(word) = value.trim().strip_prefix("=?").and_then(|w| w.strip_suffix("?=")) else { return Ok(None) };
    let mut fields = word.splitn(3, '?');
    let (Some(charset), Some(encoding), Some(text)) = (fields.next(), fields.next(), fields.next()) else {
        return Ok(None);
    };
    let bytes = match encoding {
        "B" | "b" => {
            let engines = [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::STANDARD_NO_PAD];
            // A name shaped as an encoded word that does not decode could
            // be decoded otherwise by a lenient reader.
            engines.iter().find_map(|e| e.decode(text).ok()).ok_or(BAD_MULTIPART)?
        }
        "Q" | "q" => q_decode(text),
        _ => return Ok(None),
    };
    decode(charset, &bytes).map(Some)
}

/// RFC 2047 §4.2: `_` is a space, `=XX` a byte.
fn q_decode(text: &str) -> Vec<u8> {
    let text = text.replace('_', " ").replace('=', "%");
    percent_encoding::percent_decode_str(&text).collect()
}

/// The members of a top-level JSON object, duplicate keys kept (a map would
/// keep only one): a string as it is, each element of an array, any other
/// value as its JSON text (`null` as empty). A member is there whatever its
/// type: a `client_secret` of `12345`, `true` or `{}` is a secret sent.
/// A body declared JSON (and not empty) or shaped as JSON (`json_shaped`:
/// it starts, past white space and byte-order marks, as a JSON document or
/// a lenient one does) must be one JSON object, or it is refused:
/// what a strict parser rejects a lenient one may still read (`1e99999` as
/// infinity, single quotes, comments, a trailing comma, deep nesting).
/// A body with NUL bytes is judged so once they are removed (`params` reads
/// it again without them): UTF-16 JSON is read, not refused.
fn json(body: &[u8], declared: bool, lenient_shapes: bool, out: &mut Vec<Param>) -> Result<(), RequestRule> {
    let start = body.trim_ascii_start();
    let shaped = if lenient_shapes { json_shaped(body) } else { matches!(start.first(), Some(b'{' | b'[')) };
    match serde_json::from_slice::<Members>(body) {
        Ok(Members(members)) => {
            out.extend(members);
            Ok(())
        }
        Err(_) if (shaped || (declared && !start.is_empty())) && !body.contains(&0) => Err(BAD_JSON),
        Err(_) => Ok(()),
    }
}

/// True when the body's first character past any byte-order marks and
/// any Unicode white space (vertical tab, no-break space, …) is not one a
/// form's parameter name starts with but one a JSON reader, or a lenient
/// one, starts a document with: `{`, `[`, a comment's `/`, or a quote.
fn json_shaped(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let first = text.chars().find(|&c| !c.is_whitespace() && c != '\u{feff}');
    matches!(first, Some('{' | '[' | '/' | '\'' | '"'))
}

struct Members(Vec<Param>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut out = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            let strings = match value {
                serde_json::Value::Array(items) if !items.is_empty() => items.into_iter().map(text).collect(),
                serde_json::Value::Array(_) => vec![String::new()],
                value => vec![text(value)],
            };
            out.extend(strings.into_iter().map(|value| Param { names: vec![key.clone()], value }));
        }
        Ok(Members(out))
    }
}

/// A JSON value as a lenient server would read it into a string parameter.
fn text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
