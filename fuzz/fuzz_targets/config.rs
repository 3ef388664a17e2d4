//! Configuration parsing: any text is either a valid configuration or an
//! error that names a key; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfagate::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml(text) {
        Ok(config) => assert!(!config.routes.is_empty()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
