//! Azure VM size names: `[Basic_|Standard_]<family><vCPUs>[-<active>]<features>[_<accelerator>][_v<n>]`,
//! e.g. `Standard_ND96asr_v4` (ND, 96), `Standard_E16-4s_v5` (E, 4 active
//! vCPUs). Read case-insensitively, as ARM reads them.
//!
//! The number is the vCPUs for every size but the oldest ones, whose
//! number is a position in their series (`OLD`): Basic and Standard A0 to
//! A11, D and DS 1 to 5 and 11 to 15 (v1 and v2), G and GS 1 to 5. An
//! accelerator part (`_A100`, `_H100`, `_T4`, ...: `ACCELERATORS`) marks a
//! GPU size whatever its family.

/// A size's family (upper case, e.g. `NC`), the vCPUs one instance runs,
/// and whether its name carries a GPU accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub family: String,
    pub vcpus: u64,
    pub accelerator: bool,
}

/// GPU accelerators as size names carry them (`Standard_NC24ads_A100_v4`), lower case.
pub const ACCELERATORS: [&str; 22] = [
    "a100", "h100", "h200", "a10", "a10g", "t4", "v100", "mi300x", "mi300", "mi25", "v620", "v710", "m60", "p100",
    "p40", "k80", "l4", "l40", "l40s", "gb200", "gb300", "b200",
];

/// The vCPUs of the old sizes whose number is not their vCPUs: (series,
/// whether `_v2` names it too, number, vCPUs). Basic A is the same as A.
const OLD: &[(&str, bool, u64, u64)] = &[
    ("a", false, 0, 1),
    ("a", false, 1, 1),
    ("a", false, 2, 2),
    ("a", false, 3, 4),
    ("a", false, 4, 8),
    ("a", false, 5, 2),
    ("a", false, 6, 4),
    ("a", false, 7, 8),
    ("a", false, 8, 8),
    ("a", false, 9, 16),
    ("a", false, 10, 8),
    ("a", false, 11, 16),
    ("d", true, 1, 1),
    ("d", true, 2, 2),
    ("d", true, 3, 4),
    ("d", true, 4, 8),
    ("d", true, 5, 16),
    ("d", true, 11, 2),
    ("d", true, 12, 4),
    ("d", true, 13, 8),
    ("d", true, 14, 16),
    ("d", true, 15, 20),
    ("g", false, 1, 2),
    ("g", false, 2, 4),
    ("g", false, 3, 8),
    ("g", false, 4, 16),
    ("g", false, 5, 32),
];

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
    let parts: Vec<&str> = parts.collect();
    // The accelerator, version and `Promo` parts: letters and digits only.
    if !parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return None;
    }
    let accelerator = parts.iter().any(|p| ACCELERATORS.contains(p));
    let version =
        parts.iter().find(|p| p.len() > 1 && p.starts_with('v') && p[1..].bytes().all(|b| b.is_ascii_digit()));
    let letters = core.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (family, after) = core.split_at(letters);
    if !(1..=3).contains(&family.len()) {
        return None;
    }
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let (count, mut features) = after.split_at(digits);
    let mut vcpus: u64 = count.parse().ok()?;
    // The oldest series: the number is a position, not the vCPUs (an A
    // with `_v2`, or a D from v3 on, is modern). D and DS, G and GS are one
    // series each; a number they do not have cannot be counted.
    let series = match family {
        "a" if version.is_none() => Some(("a", false)),
        "d" | "ds" if version.is_none_or(|v| *v == "v2") => Some(("d", version.is_some())),
        "g" | "gs" if version.is_none() => Some(("g", false)),
        _ => None,
    };
    if let Some((series, v2)) = series {
        let (_, _, _, real) =
            OLD.iter().find(|(s, both, n, _)| *s == series && (*both || !v2) && *n == vcpus).copied()?;
        // D5 and D15 exist as v2 only; read as the v2 sizes either way.
        vcpus = real;
    }
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
    // The B-series' smallest sizes share one core.
    Some(Size { family: family.to_ascii_uppercase(), vcpus: vcpus.max(1), accelerator })
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
            ("Standard_NCC40ads_H100_v5", Some(("NCC", 40))),
            // The oldest names: a position in the series, not the vCPUs.
            ("Basic_A0", Some(("A", 1))),
            ("Basic_A2", Some(("A", 2))),
            ("Basic_A3", Some(("A", 4))),
            ("Basic_A4", Some(("A", 8))),
            ("Standard_A3", Some(("A", 4))),
            ("Standard_A4", Some(("A", 8))),
            ("Standard_A5", Some(("A", 2))),
            ("Standard_A6", Some(("A", 4))),
            ("Standard_A7", Some(("A", 8))),
            ("Standard_A8", Some(("A", 8))),
            ("Standard_A9", Some(("A", 16))),
            ("Standard_A10", Some(("A", 8))),
            ("Standard_A11", Some(("A", 16))),
            ("Standard_A12", None),
            ("Standard_A8_v2", Some(("A", 8))),
            ("Standard_A4m_v2", Some(("A", 4))),
            ("Standard_D1", Some(("D", 1))),
            ("Standard_D3", Some(("D", 4))),
            ("Standard_D4", Some(("D", 8))),
            ("Standard_DS3", Some(("DS", 4))),
            ("Standard_D11", Some(("D", 2))),
            ("Standard_D14", Some(("D", 16))),
            ("Standard_DS13", Some(("DS", 8))),
            ("Standard_D1_v2", Some(("D", 1))),
            ("Standard_D4_v2", Some(("D", 8))),
            ("Standard_D5_v2", Some(("D", 16))),
            ("Standard_DS5_v2", Some(("DS", 16))),
            ("Standard_D12_v2", Some(("D", 4))),
            ("Standard_DS14_v2", Some(("DS", 16))),
            ("Standard_D15_v2", Some(("D", 20))),
            ("Standard_DS15_v2", Some(("DS", 20))),
            ("Standard_D5_v2_Promo", Some(("D", 16))),
            ("Standard_DS14_v2_Promo", Some(("DS", 16))),
            ("Standard_DS13-2_v2", Some(("DS", 2))),
            ("Standard_DS14-8_v2", Some(("DS", 8))),
            ("Standard_D6_v2", None),
            ("Standard_D4_v3", Some(("D", 4))),
            ("Standard_D16_v3", Some(("D", 16))),
            ("Standard_DS4_v3", Some(("DS", 4))),
            ("Standard_G1", Some(("G", 2))),
            ("Standard_G5", Some(("G", 32))),
            ("Standard_GS3", Some(("GS", 8))),
            ("Standard_GS5", Some(("GS", 32))),
            ("Standard_GS5-16", Some(("GS", 16))),
            ("Standard_GS4-4", Some(("GS", 4))),
            ("Standard_F16", Some(("F", 16))),
            ("Standard_L32s", Some(("L", 32))),
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
        let gpu = |name: &str| parse(name).unwrap().accelerator;
        assert!(gpu("Standard_NCC40ads_H100_v5") && gpu("Standard_NG8ads_V620_v1") && gpu("Standard_Q8_MI300X_v1"));
        assert!(gpu("Standard_NC4as_T4_v3") && gpu("standard_nv36ads_a10_v5") && gpu("Standard_ND96isr_H200_v5"));
        assert!(!gpu("Standard_NC6s_v3") && !gpu("Standard_D2s_v5") && !gpu("Standard_D2_v2_Promo"));
    }
}
