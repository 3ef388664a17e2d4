//! The HTTP/1 byte inspector and path normalisation: any byte stream, cut
//! anywhere, gives the same verdict; normalising is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfagate::listener::{Fault, Inspector};
use mfagate::proxy::hygiene::normalize_path;

fuzz_target!(|data: &[u8]| {
    let whole = Fault::default();
    Inspector::new(8192, whole.clone()).feed(data);
    let split = Fault::default();
    let mut inspector = Inspector::new(8192, split.clone());
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    inspector.feed(&data[..cut]);
    inspector.feed(&data[cut..]);
    assert_eq!(whole.get(), split.get());

    if let Ok(path) = std::str::from_utf8(data) {
        if let Ok(normalized) = normalize_path(path) {
            let once = normalized.unwrap_or_else(|| path.to_string());
            assert_eq!(normalize_path(&once), Ok(None), "normalising {path:?} twice changed it");
        }
    }
});
