//! Fetching documents from an identity provider: key sets and OpenID
//! Provider Configuration documents, over HTTPS (public web roots plus an
//! optional extra CA) or from a file, each bounded by a connect timeout, a
//! total timeout and a size cap.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::auth::keys::KeySetError;
use crate::config::identity::{FetchLimits, url_location};
use crate::config::{IssuerTemplate, JwksLocation};
use crate::tls::{self, TlsError};

/// How a fetch ended: the `result` label of the fetch metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    Success,
    Timeout,
    Unreachable,
    HttpStatus,
    TooLarge,
    Invalid,
}

impl FetchResult {
    pub const ALL: [FetchResult; 6] =
        [Self::Success, Self::Timeout, Self::Unreachable, Self::HttpStatus, Self::TooLarge, Self::Invalid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::HttpStatus => "http_status",
            Self::TooLarge => "too_large",
            Self::Invalid => "invalid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    #[error("body unreadable: {0}")]
    Body(String),
    #[error("reading file: {0}")]
    File(#[from] std::io::Error),
    #[error(transparent)]
    KeySet(#[from] KeySetError),
    #[error("no usable signing key in the document ({0} skipped)")]
    NoUsableKey(usize),
    #[error("discovery document: {0}")]
    Metadata(&'static str),
}

impl FetchError {
    pub fn result(&self) -> FetchResult {
        match self {
            Self::Request(_) | Self::Body(_) | Self::File(_) => FetchResult::Unreachable,
            Self::Timeout(_) => FetchResult::Timeout,
            Self::Status(_) => FetchResult::HttpStatus,
            Self::TooLarge(_) => FetchResult::TooLarge,
            Self::KeySet(_) | Self::NoUsableKey(_) | Self::Metadata(_) => FetchResult::Invalid,
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One client for every source: connections to the identity provider are reused.
pub struct Fetcher {
    client: HttpClient,
    limits: FetchLimits,
}

impl Fetcher {
    pub fn new(extra_ca: Option<&Path>, limits: FetchLimits) -> Result<Self, TlsError> {
        let tls = tls::client(extra_ca)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(limits.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(https), limits })
    }

    pub fn timeout(&self) -> Duration {
        self.limits.timeout
    }

    /// The document at `location`, within the total timeout and size cap.
    pub async fn get(&self, location: &JwksLocation) -> Result<Bytes, FetchError> {
        let read = async {
            match location {
                JwksLocation::File(path) => self.read_file(path).await,
                JwksLocation::Url(uri) => self.get_url(uri).await,
            }
        };
        tokio::time::timeout(self.limits.timeout, read).await.map_err(|_| FetchError::Timeout(self.limits.timeout))?
    }

    async fn read_file(&self, path: &Path) -> Result<Bytes, FetchError> {
        let len = tokio::fs::metadata(path).await?.len();
        if len > self.limits.max_bytes as u64 {
            return Err(FetchError::TooLarge(self.limits.max_bytes));
        }
        Ok(Bytes::from(tokio::fs::read(path).await?))
    }

    async fn get_url(&self, uri: &http::Uri) -> Result<Bytes, FetchError> {
        let req = Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("mfagate/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let rsp = self.client.request(req).await.map_err(|e| FetchError::Request(error_chain(&e)))?;
        if rsp.status() != StatusCode::OK {
            return Err(FetchError::Status(rsp.status()));
        }
        let max = self.limits.max_bytes;
        let declared =
            rsp.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        match Limited::new(rsp.into_body(), max).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(FetchError::TooLarge(max)),
            Err(e) => Err(FetchError::Body(error_chain(&*e))),
        }
    }
}

/// What an OpenID Provider Configuration document tells us.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub jwks: JwksLocation,
    pub issuer: String,
    pub issuer_template: IssuerTemplate,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// Reads `issuer` and `jwks_uri` (OpenID Connect Discovery 1.0 §3); other
/// members are ignored. The key set must be `https://` (or `http://` to a
/// loopback address); a metadata document read from a file may also name a file.
pub fn parse_metadata(json: &[u8], from_file: bool) -> Result<Metadata, FetchError> {
    let raw: RawMetadata =
        serde_json::from_slice(json).map_err(|_| FetchError::Metadata("not a JSON object with issuer and jwks_uri"))?;
    let issuer = raw.issuer.filter(|i| i.starts_with("https://")).ok_or(FetchError::Metadata("no https issuer"))?;
    let issuer_template =
        IssuerTemplate::parse(&issuer).ok_or(FetchError::Metadata("issuer is not a valid template"))?;
    let jwks_uri = raw.jwks_uri.ok_or(FetchError::Metadata("no jwks_uri"))?;
    let jwks = match jwks_uri.strip_prefix("file://").or_else(|| jwks_uri.strip_prefix("file:")) {
        Some(path) if from_file && !path.is_empty() => JwksLocation::File(path.into()),
        Some(_) => return Err(FetchError::Metadata("jwks_uri names a file")),
        None => url_location(&jwks_uri).map_err(FetchError::Metadata)?,
    };
    Ok(Metadata { jwks, issuer, issuer_template })
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entra_v1_common_metadata() {
        // The members that matter of login.microsoftonline.com/common/.well-known/openid-configuration.
        let doc = br#"{"token_endpoint":"https://login.microsoftonline.com/common/oauth2/token",
            "jwks_uri":"https://login.microsoftonline.com/common/discovery/keys",
            "issuer":"https://sts.windows.net/{tenantid}/","tenant_region_scope":null,
            "cloud_instance_name":"microsoftonline.com","id_token_signing_alg_values_supported":["RS256"]}"#;
        let m = parse_metadata(doc, false).unwrap();
        assert_eq!(
            m.jwks,
            JwksLocation::Url("https://login.microsoftonline.com/common/discovery/keys".parse().unwrap())
        );
        assert_eq!(m.issuer, "https://sts.windows.net/{tenantid}/");
        let tid = "df845f1a-1111-2222-3333-444455556666";
        assert!(m.issuer_template.matches(&format!("https://sts.windows.net/{tid}/"), Some(tid)));
    }

    #[test]
    fn refuses_metadata_that_would_weaken_the_key_source() {
        let bad = [
            &br#"{"issuer":"https://sts.windows.net/{tenantid}/","jwks_uri":"http://evil.example/keys"}"#[..],
            br#"{"issuer":"https://sts.windows.net/{tenantid}/","jwks_uri":"file:/tmp/keys.json"}"#,
            br#"{"issuer":"http://sts.windows.net/x/","jwks_uri":"https://x/keys"}"#,
            br#"{"jwks_uri":"https://x/keys"}"#,
            br#"{"issuer":"https://sts.windows.net/x/"}"#,
            b"<html>",
        ];
        for doc in bad {
            let e = parse_metadata(doc, false).unwrap_err();
            assert_eq!(e.result(), FetchResult::Invalid, "{}", String::from_utf8_lossy(doc));
        }
        let local = br#"{"issuer":"https://sts.windows.net/x/","jwks_uri":"file:///etc/mfagate/keys.json"}"#;
        assert_eq!(parse_metadata(local, true).unwrap().jwks, JwksLocation::File("/etc/mfagate/keys.json".into()));
    }
}
