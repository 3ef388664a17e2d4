//! ARM's batch endpoint (`POST /batch`): its body wraps several requests,
//! `{"requests": [{"httpMethod", "url", "content"}]}`; each is read as if
//! it had been sent alone.

use serde_json::Value;

use super::json::get;

/// One wrapped request: its method, path as written (no scheme, host or
/// query; a leading `/` added) and body.
pub struct Wrapped<'a> {
    pub method: &'a str,
    pub path: String,
    pub content: Option<&'a Value>,
}

/// Methods that change nothing; every other one (whatever its spelling) is
/// read as `PUT` would be.
pub fn reads_only(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS", "DELETE"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// The wrapped requests; `None` when the body is not a batch.
pub fn requests(body: &Value) -> Option<Vec<Wrapped<'_>>> {
    let list = get(body, "requests")?.as_array()?;
    list.iter()
        .map(|r| {
            let method = get(r, "httpMethod")?.as_str()?;
            let url = get(r, "url")?.as_str()?;
            let path = path_of(url);
            let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
            Some(Wrapped { method, path, content: get(r, "content") })
        })
        .collect()
}

/// The path of a relative or absolute URL.
fn path_of(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None => url,
    };
    rest.split(['?', '#']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_requests() {
        let body = serde_json::json!({"requests": [
            {"httpMethod": "PUT", "url": "https://management.azure.com/subscriptions/s/x?api-version=1", "content": {}},
            {"HTTPMETHOD": "GET", "URL": "/subscriptions/s/y?api-version=1"}]});
        let got = requests(&body).unwrap();
        assert_eq!((got[0].method, got[0].path.as_str()), ("PUT", "/subscriptions/s/x"));
        assert_eq!(
            (got[1].method, got[1].path.as_str(), got[1].content.is_none()),
            ("GET", "/subscriptions/s/y", true)
        );
        assert!(requests(&serde_json::json!({"requests": [{"url": "/x"}]})).is_none());
        assert!(requests(&serde_json::json!([])).is_none());
        let relative = serde_json::json!({"requests": [{"httpMethod": "PUT", "url": "subscriptions/s?x=1#f"}]});
        assert_eq!(requests(&relative).unwrap()[0].path, "/subscriptions/s");
        assert!(reads_only("get") && reads_only("DELETE") && !reads_only(" PUT") && !reads_only("MERGE"));
    }
}
