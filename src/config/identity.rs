//! `[identity]`: who may issue tokens, and where their signing keys come from
//! (`[[identity.sources]]`, or the one-source shorthand `jwks_uri`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

use super::error::ConfigError;
use super::raw;
use super::values::{guids, is_loopback, min_duration};
use crate::auth::issuer::IssuerTemplate;

/// The shorthand source's name (its `source` metrics label).
pub const SHORTHAND_SOURCE: &str = "default";
/// Entra's v1 common key set: the key source when none is configured.
pub const DEFAULT_JWKS_URI: &str = "https://login.microsoftonline.com/common/discovery/keys";

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub sources: Vec<KeySourceConfig>,
    pub jwks_ca: Option<PathBuf>,
    pub issuers: Vec<IssuerTemplate>,
    pub clock_skew_secs: u64,
    /// Lower-case tenant GUIDs; empty means any tenant.
    pub tenants: HashSet<String>,
    pub max_token_bytes: usize,
    pub fetch: FetchLimits,
    /// Where the last good key set of each source is saved; `None` disables it.
    pub state_dir: Option<PathBuf>,
    /// Verified tokens kept; 0 disables the cache.
    pub token_cache_size: u64,
}

/// Bounds on every fetch from an identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    Url(Uri),
    File(PathBuf),
}

impl std::fmt::Display for JwksLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(uri) => write!(f, "{uri}"),
            Self::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

/// How a source finds its key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOrigin {
    /// The key set itself.
    Jwks(JwksLocation),
    /// An OpenID Provider Configuration document naming `jwks_uri` and `issuer`.
    Discovery(JwksLocation),
}

impl SourceOrigin {
    pub fn location(&self) -> &JwksLocation {
        match self {
            Self::Jwks(l) | Self::Discovery(l) => l,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySourceConfig {
    pub name: String,
    pub origin: SourceOrigin,
    /// Token issuers whose keys this source holds; empty means the discovered
    /// issuer, or any issuer for a plain key set.
    pub issuers: Vec<IssuerTemplate>,
    /// When set, only tokens with this `ver` use this source.
    pub token_version: Option<String>,
    /// `/readyz` is not ready while a required source has no usable keys.
    pub required: bool,
    pub timing: SourceTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceTiming {
    pub refresh_interval: Duration,
    pub unknown_kid_refetch_interval: Duration,
    pub key_ttl: Duration,
    pub max_stale: Duration,
    pub metadata_refresh_interval: Duration,
}

pub(super) fn from_raw(raw: &raw::Identity) -> Result<IdentityConfig, ConfigError> {
    if raw.issuers.is_empty() {
        return Err(ConfigError::invalid("identity.issuers", "at least one issuer is required"));
    }
    let issuers = issuer_templates("identity.issuers", &raw.issuers)?;
    if raw.clock_skew_secs > 600 {
        return Err(ConfigError::invalid("identity.clock_skew_secs", "at most 600 seconds"));
    }
    let tenants = guids("identity.tenants", &raw.tenants)?;
    if !(1024..=1024 * 1024).contains(&raw.max_token_bytes) {
        return Err(ConfigError::invalid("identity.max_token_bytes", "between 1024 and 1048576"));
    }
    if !(1024..=64 * 1024 * 1024).contains(&raw.max_document_bytes) {
        return Err(ConfigError::invalid("identity.max_document_bytes", "between 1024 and 67108864"));
    }
    if raw.token_cache_size > 10_000_000 {
        return Err(ConfigError::invalid("identity.token_cache_size", "at most 10000000 (0 disables the cache)"));
    }
    let fetch = FetchLimits {
        connect_timeout: min_duration(
            "identity.fetch_connect_timeout",
            &raw.fetch_connect_timeout,
            Duration::from_millis(10),
        )?,
        timeout: min_duration("identity.fetch_timeout", &raw.fetch_timeout, Duration::from_millis(100))?,
        max_bytes: raw.max_document_bytes,
    };
    let defaults = Timing::of(raw);
    let sources = sources(raw, &defaults)?;
    Ok(IdentityConfig {
        sources,
        jwks_ca: raw.jwks_ca.as_ref().map(PathBuf::from),
        issuers,
        clock_skew_secs: raw.clock_skew_secs,
        tenants: tenants.into_iter().collect(),
        max_token_bytes: raw.max_token_bytes,
        fetch,
        state_dir: (!raw.state_dir.is_empty()).then(|| PathBuf::from(&raw.state_dir)),
        token_cache_size: raw.token_cache_size,
    })
}

fn sources(raw: &raw::Identity, defaults: &Timing<'_>) -> Result<Vec<KeySourceConfig>, ConfigError> {
    if raw.sources.is_empty() {
        let uri = raw.jwks_uri.as_deref().unwrap_or(DEFAULT_JWKS_URI);
        return Ok(vec![KeySourceConfig {
            name: SHORTHAND_SOURCE.into(),
            origin: SourceOrigin::Jwks(location("identity.jwks_uri", uri)?),
            issuers: Vec::new(),
            token_version: None,
            required: true,
            timing: defaults.resolve("identity", &Timing::default())?,
        }]);
    }
    if raw.jwks_uri.is_some() {
        return Err(ConfigError::invalid("identity.jwks_uri", "use either jwks_uri or [[identity.sources]], not both"));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.sources.len());
    for (i, s) in raw.sources.iter().enumerate() {
        let key = |field: &str| format!("identity.sources[{i}].{field}");
        if !is_label(&s.name) {
            return Err(ConfigError::invalid(key("name"), "1-64 characters from a-z, 0-9, '-' and '_'"));
        }
        if !names.insert(s.name.as_str()) {
            return Err(ConfigError::invalid(key("name"), "duplicate source name"));
        }
        let origin = match (&s.jwks_uri, &s.metadata_uri) {
            (Some(uri), None) => SourceOrigin::Jwks(location(&key("jwks_uri"), uri)?),
            (None, Some(uri)) => SourceOrigin::Discovery(location(&key("metadata_uri"), uri)?),
            _ => return Err(ConfigError::invalid(key("jwks_uri"), "set exactly one of jwks_uri and metadata_uri")),
        };
        let token_version = match s.token_version.as_deref() {
            None => None,
            Some(v @ ("1.0" | "2.0")) => Some(v.to_string()),
            Some(_) => return Err(ConfigError::invalid(key("token_version"), "expected \"1.0\" or \"2.0\"")),
        };
        let overrides = Timing {
            refresh_interval: s.refresh_interval.as_deref(),
            unknown_kid_refetch_interval: s.unknown_kid_refetch_interval.as_deref(),
            key_ttl: s.key_ttl.as_deref(),
            max_stale: s.max_stale.as_deref(),
            metadata_refresh_interval: s.metadata_refresh_interval.as_deref(),
        };
        out.push(KeySourceConfig {
            name: s.name.clone(),
            origin,
            issuers: issuer_templates(&key("issuers"), &s.issuers)?,
            token_version,
            required: s.required,
            timing: defaults.resolve(&format!("identity.sources[{i}]"), &overrides)?,
        });
    }
    Ok(out)
}

/// Microsoft Entra's sign-in hosts (public cloud, US Government, China): a
/// key set there signs only for Entra's own issuers.
const ENTRA_HOSTS: [&str; 7] = [
    "login.microsoftonline.com",
    "login.windows.net",
    "sts.windows.net",
    "login.microsoft.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// See `Config::warnings`: a source with no `issuers` that is not an Entra
/// endpoint serves every issuer (`Source::serves`: any issuer for a key
/// set, the one its discovery document names for a discovery source), so
/// its keys can vouch for tokens in Entra's issuers' name.
pub(super) fn warnings(identity: &IdentityConfig, raw: &raw::Identity) -> Vec<String> {
    identity
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.issuers.is_empty() && !is_entra(s.origin.location()))
        .map(|(i, s)| {
            let key = if raw.sources.is_empty() { "identity.jwks_uri".to_string() } else { format!("identity.sources[{i}]") };
            let trusted = match s.origin {
                SourceOrigin::Jwks(_) => "for tokens of every accepted issuer",
                SourceOrigin::Discovery(_) => "for whatever issuer its discovery document names",
            };
            format!(
                "{key} ({:?}): no issuers and not a Microsoft Entra endpoint, so its keys are trusted {trusted}; set issuers to the issuers it signs for",
                s.name
            )
        })
        .collect()
}

fn is_entra(location: &JwksLocation) -> bool {
    let JwksLocation::Url(uri) = location else { return false };
    let host = uri.host().unwrap_or_default();
    let host = host.strip_suffix('.').unwrap_or(host);
    ENTRA_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// Timing settings as written: `[identity]`'s, or a source's overrides.
#[derive(Default)]
struct Timing<'a> {
    refresh_interval: Option<&'a str>,
    unknown_kid_refetch_interval: Option<&'a str>,
    key_ttl: Option<&'a str>,
    max_stale: Option<&'a str>,
    metadata_refresh_interval: Option<&'a str>,
}

impl<'a> Timing<'a> {
    fn of(raw: &'a raw::Identity) -> Self {
        Self {
            refresh_interval: Some(&raw.refresh_interval),
            unknown_kid_refetch_interval: Some(&raw.unknown_kid_refetch_interval),
            key_ttl: Some(&raw.key_ttl),
            max_stale: Some(&raw.max_stale),
            metadata_refresh_interval: Some(&raw.metadata_refresh_interval),
        }
    }

    /// The overrides over `self`, checked; errors name the key that was written.
    fn resolve(&self, section: &str, overrides: &Timing<'_>) -> Result<SourceTiming, ConfigError> {
        let pick = |name: &str, own: Option<&str>, base: Option<&str>, min: Duration| {
            let (value, key) = match own {
                Some(v) => (v, format!("{section}.{name}")),
                None => (base.unwrap_or_default(), format!("identity.{name}")),
            };
            min_duration(&key, value, min).map(|d| (d, key))
        };
        let second = Duration::from_secs(1);
        let (refresh_interval, _) =
            pick("refresh_interval", overrides.refresh_interval, self.refresh_interval, second)?;
        let (unknown_kid_refetch_interval, _) = pick(
            "unknown_kid_refetch_interval",
            overrides.unknown_kid_refetch_interval,
            self.unknown_kid_refetch_interval,
            Duration::from_millis(1),
        )?;
        let (key_ttl, _) = pick("key_ttl", overrides.key_ttl, self.key_ttl, second)?;
        let (max_stale, stale_key) = pick("max_stale", overrides.max_stale, self.max_stale, second)?;
        let (metadata_refresh_interval, _) = pick(
            "metadata_refresh_interval",
            overrides.metadata_refresh_interval,
            self.metadata_refresh_interval,
            second,
        )?;
        // Otherwise keys would expire between two healthy refreshes.
        if max_stale < refresh_interval {
            return Err(ConfigError::invalid(stale_key, "must be at least refresh_interval"));
        }
        Ok(SourceTiming {
            refresh_interval,
            unknown_kid_refetch_interval,
            key_ttl,
            max_stale,
            metadata_refresh_interval,
        })
    }
}

/// A key set or metadata location: `https://`, `http://` to a loopback
/// address only (keys fetched in clear text could be replaced on the way),
/// `file://PATH`, `file:PATH` or a plain path.
fn location(key: &str, s: &str) -> Result<JwksLocation, ConfigError> {
    if s.is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    if let Some(path) = s.strip_prefix("file://").or_else(|| s.strip_prefix("file:")) {
        if path.is_empty() {
            return Err(ConfigError::invalid(key, "file: needs a path"));
        }
        return Ok(JwksLocation::File(PathBuf::from(path)));
    }
    if s.starts_with("https://") || s.starts_with("http://") {
        return url_location(s).map_err(|reason| ConfigError::invalid(key, reason));
    }
    if s.contains("://") {
        return Err(ConfigError::invalid(key, "use https://, http:// (loopback only), file:// or a file path"));
    }
    Ok(JwksLocation::File(PathBuf::from(s)))
}

/// An `https://` URL, or `http://` to a loopback address. Also applied to
/// the `jwks_uri` a discovery document names.
pub fn url_location(s: &str) -> Result<JwksLocation, &'static str> {
    let uri: Uri = s.parse().map_err(|_| "not a valid URL")?;
    let Some(host) = uri.host() else { return Err("URL has no host") };
    match uri.scheme_str() {
        Some("https") => Ok(JwksLocation::Url(uri)),
        Some("http") if is_loopback(host) => Ok(JwksLocation::Url(uri)),
        Some("http") => Err("plain http:// is only allowed to a loopback address"),
        _ => Err("use https://"),
    }
}

fn issuer_templates(key: &str, values: &[String]) -> Result<Vec<IssuerTemplate>, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = format!("{key}[{i}]");
            if !s.starts_with("https://") {
                return Err(ConfigError::invalid(key, "an issuer is an https:// URL"));
            }
            IssuerTemplate::parse(s).ok_or_else(|| ConfigError::invalid(key, "{tenantid} may appear once"))
        })
        .collect()
}

/// Names used as metrics labels and file names.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
