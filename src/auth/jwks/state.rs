//! The last good key set of each source, saved in `identity.state_dir` so
//! that a gateway started while its identity provider is unreachable can
//! serve on keys it already trusted. Written atomically (temporary file,
//! fsync, rename); only the public key members are kept.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Bumped when the layout changes; other versions are ignored.
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    pub format: u32,
    pub source: String,
    /// The configured `jwks_uri` or `metadata_uri`: a file saved for another
    /// location is not used.
    pub origin: String,
    /// The key set's location (discovered, for a metadata source).
    pub jwks_uri: String,
    /// The discovered issuer, for a metadata source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Unix time of the last successful fetch.
    pub fetched_at: u64,
    pub keys: Vec<SavedKey>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedKey {
    /// Unix time of the last fetch that listed the key.
    pub seen: u64,
    pub jwk: serde_json::Value,
}

impl Saved {
    pub fn new(source: &str, origin: String, jwks_uri: String, issuer: Option<String>, fetched_at: u64) -> Self {
        Self { format: FORMAT, source: source.into(), origin, jwks_uri, issuer, fetched_at, keys: Vec::new() }
    }
}

/// `{state_dir}/{source}.json`.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(dir: &Path, source: &str) -> Self {
        Self { path: dir.join(format!("{source}.json")) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `saved`; readers see the old or the new file, never a part.
    pub fn save(&self, saved: &Saved) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let json = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = private_file(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The saved set for `source` at `origin`, if there is one in this format.
    pub fn load(&self, source: &str, origin: &str) -> std::io::Result<Option<Saved>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let saved: Saved = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        Ok((saved.format == FORMAT && saved.source == source && saved.origin == origin).then_some(saved))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// How long ago unix time `t` was (zero for a time in the future).
pub fn age_of(t: u64) -> Duration {
    Duration::from_secs(unix_now().saturating_sub(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_loads_only_its_own_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(&dir.path().join("state"), "entra");
        let mut saved = Saved::new("entra", "https://x/keys".into(), "https://x/keys".into(), None, 1_700_000_000);
        saved.keys.push(SavedKey { seen: 1_700_000_000, jwk: serde_json::json!({"kty":"RSA","kid":"k"}) });
        file.save(&saved).unwrap();
        assert!(!file.path().with_extension("json.tmp").exists());
        let back = file.load("entra", "https://x/keys").unwrap().unwrap();
        assert_eq!(back.fetched_at, 1_700_000_000);
        assert_eq!(back.keys[0].jwk["kid"], "k");
        assert!(file.load("entra", "https://y/keys").unwrap().is_none());
        assert!(file.load("other", "https://x/keys").unwrap().is_none());
        assert!(StateFile::new(dir.path(), "missing").load("missing", "x").unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::write(file.path(), b"{not json").unwrap();
        assert!(file.load("entra", "https://x/keys").is_err());
    }
}
