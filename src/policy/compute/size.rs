//! Azure VM size names: `[Basic_|Standard_]<family><vCPUs>[-<active>]<features>[_<accelerator>][_v<n>]`,
//! e.g. `Standard_ND96asr_v4` (ND, 96), `Standard_E16-4s_v5` (E, 4 active
//! vCPUs). Read case-insensitively, as ARM reads them.

/// A size's family (upper case, e.g. `NC`) and the vCPUs one instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub family: String,
    pub vcpus: u64,
}

/// Longest size name read; Azure's are under 40 characters.
const MAX_LEN: usize = 64;

/// The family and vCPUs of `name`; `None` when it is not a size name.
pub fn parse(name: &str) -> Option<Size> {
    if name.len() > MAX_LEN || !name.is_ascii() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_prefix("standard_").or_else(|| lower.strip_prefix("basic_")).unwrap_or(&lower);
    let mut parts = rest.split('_');
    let core = parts.next()?;
    // The accelerator and version parts: letters and digits only.
    if !parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return None;
    }
    let letters = core.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (family, after) = core.split_at(letters);
    if !(1..=3).contains(&family.len()) {
        return None;
    }
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let (count, mut features) = after.split_at(digits);
    let mut vcpus: u64 = count.parse().ok()?;
    // Constrained cores: the memory of the first number, the second active.
    if let Some(constrained) = features.strip_prefix('-') {
        let digits = constrained.bytes().take_while(u8::is_ascii_digit).count();
        let (active, tail) = constrained.split_at(digits);
        let active: u64 = active.parse().ok()?;
        if active == 0 || active > vcpus {
            return None;
        }
        vcpus = active;
        features = tail;
    }
    if !features.bytes().all(|b| b.is_ascii_lowercase()) || vcpus > 10_000 {
        return None;
    }
    // A0 and the B-series' smallest sizes share one core.
    Some(Size { family: family.to_ascii_uppercase(), vcpus: vcpus.max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_names() {
        let table: &[(&str, Option<(&str, u64)>)] = &[
            ("Standard_ND96asr_v4", Some(("ND", 96))),
            ("Standard_NC24ads_A100_v4", Some(("NC", 24))),
            ("Standard_F72s_v2", Some(("F", 72))),
            ("Standard_HB120rs_v3", Some(("HB", 120))),
            ("Standard_HB120-16rs_v3", Some(("HB", 16))),
            ("Standard_E16-4s_v5", Some(("E", 4))),
            ("Standard_D2s_v5", Some(("D", 2))),
            ("Standard_F16s_v2", Some(("F", 16))),
            ("Basic_A1", Some(("A", 1))),
            ("Standard_A0", Some(("A", 1))),
            ("Standard_A2_v2", Some(("A", 2))),
            ("Standard_M416ms_v2", Some(("M", 416))),
            ("Standard_NV36ads_A10_v5", Some(("NV", 36))),
            ("Standard_HX176rs", Some(("HX", 176))),
            ("Standard_HC44rs", Some(("HC", 44))),
            ("Standard_H16r", Some(("H", 16))),
            ("Standard_NP10s", Some(("NP", 10))),
            ("Standard_NG8ads_V620_v1", Some(("NG", 8))),
            ("Standard_DC4s_v3", Some(("DC", 4))),
            ("Standard_DS2_v2", Some(("DS", 2))),
            ("Standard_L8s_v3", Some(("L", 8))),
            ("Standard_B2ats_v2", Some(("B", 2))),
            ("Standard_NC4as_T4_v3", Some(("NC", 4))),
            ("Standard_ND96isr_H100_v5", Some(("ND", 96))),
            ("standard_nd96asr_v4", Some(("ND", 96))),
            ("STANDARD_NC6", Some(("NC", 6))),
            ("Standard_D2S_V5", Some(("D", 2))),
            ("", None),
            ("Standard_", None),
            ("Standard_ND", None),
            ("Standard_96", None),
            ("Standard_E4-16s_v5", None),
            ("Standard_E16-0s_v5", None),
            ("Standard_D2s__v5", None),
            ("Standard_D2s v5", None),
            ("Standard_D2s-", None),
            ("Standard_ABCD2", None),
            ("Standard_D99999999999999999999999", None),
            ("Standard_D2s_v5;x", None),
            ("Ｓtandard_D2s_v5", None),
            ("garbage", None),
            ("[parameters('vmSize')]", None),
        ];
        for (name, want) in table {
            let got = parse(name).map(|s| (s.family, s.vcpus));
            assert_eq!(got, want.map(|(f, v)| (f.to_string(), v)), "{name}");
        }
    }
}
