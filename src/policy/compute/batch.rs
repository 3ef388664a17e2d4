//! ARM's batch endpoint (`POST /batch`): its body wraps several requests,
//! `{"requests": [{"httpMethod", "url", "content"}]}`; each is read as if
//! it had been sent alone.

use serde_json::Value;

use super::json::get;

/// One wrapped request: its method, path (no scheme, host or query) and body.
pub struct Wrapped<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content: Option<&'a Value>,
}

/// The wrapped requests; `None` when the body is not a batch.
pub fn requests(body: &Value) -> Option<Vec<Wrapped<'_>>> {
    let list = get(body, "requests")?.as_array()?;
    list.iter()
        .map(|r| {
            let method = get(r, "httpMethod")?.as_str()?;
            let url = get(r, "url")?.as_str()?;
            Some(Wrapped { method, path: path_of(url), content: get(r, "content") })
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
        assert_eq!((got[0].method, got[0].path), ("PUT", "/subscriptions/s/x"));
        assert_eq!((got[1].method, got[1].path, got[1].content.is_none()), ("GET", "/subscriptions/s/y", true));
        assert!(requests(&serde_json::json!({"requests": [{"url": "/x"}]})).is_none());
        assert!(requests(&serde_json::json!([])).is_none());
    }
}
