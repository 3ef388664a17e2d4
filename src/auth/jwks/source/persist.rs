//! The source's last good key set on disk: saved after each good fetch,
//! restored at start when the first fetch fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::{Discovered, KeySource, Slot, Snapshot, Stamp};
use crate::auth::jwks::state::{Saved, SavedKey, age_of, unix_now};
use crate::auth::keys::parse_jwk;
use crate::config::{IssuerTemplate, JwksLocation, SourceOrigin};

impl KeySource {
    pub(super) async fn save(&self, snapshot: &Snapshot, jwks: &JwksLocation) {
        let Some(file) = self.state_file.clone() else { return };
        let now = unix_now();
        let issuer = self.discovered.load().issuer.as_ref().map(|(text, _)| text.clone());
        let mut saved =
            Saved::new(&self.config.name, self.config.origin.location().to_string(), jwks.to_string(), issuer, now);
        for slot in snapshot.keys.values() {
            let Ok(jwk) = serde_json::from_str(slot.key.jwk()) else { continue };
            saved.keys.push(SavedKey { seen: now.saturating_sub(slot.seen.age().as_secs()), jwk });
        }
        match tokio::task::spawn_blocking(move || file.save(&saved).map(|()| file)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(source = %self.config.name, error = %e, "cannot save the key set to the state directory")
            }
            Err(e) => warn!(source = %self.config.name, error = %e, "saving the key set failed"),
        }
    }

    /// Loads the saved key set, when there is one for this source and nothing
    /// was fetched. Its age is the saved one: past `max_stale` it is not used.
    pub async fn restore(&self) {
        let Some(file) = self.state_file.clone() else { return };
        let (name, origin) = (self.config.name.clone(), self.config.origin.location().to_string());
        let loaded = match tokio::task::spawn_blocking(move || file.load(&name, &origin)).await {
            Ok(Ok(Some(saved))) => saved,
            Ok(Ok(None)) => {
                info!(source = %self.config.name, "no saved key set for this source");
                return;
            }
            Ok(Err(e)) => {
                warn!(source = %self.config.name, error = %e, "cannot read the saved key set");
                return;
            }
            Err(_) => return,
        };
        if self.successes.load(Ordering::Acquire) > 0 {
            return;
        }
        let mut keys = HashMap::new();
        for saved in loaded.keys {
            if let Some(key) = parse_jwk(saved.jwk) {
                keys.insert(key.kid.clone(), Slot { key: Arc::new(key), seen: Stamp::aged(age_of(saved.seen)) });
            }
        }
        if let SourceOrigin::Discovery(_) = self.config.origin {
            let jwks = match (self.config.origin.location(), loaded.jwks_uri.strip_prefix("file://")) {
                (JwksLocation::File(_), Some(path)) => Some(JwksLocation::File(path.into())),
                _ => crate::config::identity::url_location(&loaded.jwks_uri).ok(),
            };
            let issuer = loaded.issuer.and_then(|i| IssuerTemplate::parse(&i).map(|t| (i, t)));
            if jwks.is_some() && issuer.is_some() {
                self.discovered.store(Arc::new(Discovered { jwks, issuer }));
            }
        }
        let age = age_of(loaded.fetched_at);
        let count = keys.len();
        self.snapshot.store(Arc::new(Snapshot { keys, fetched: Some(Stamp::aged(age)), restored: true }));
        self.metrics.keys.set(count as i64);
        let state = self.freshness();
        info!(source = %self.config.name, keys = count, age_secs = age.as_secs(), state = state.as_str(), "loaded the saved key set");
    }
}
