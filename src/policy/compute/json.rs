//! JSON as ARM reads it: property names compare case-insensitively, so an
//! object naming one property twice in any spelling (`vmSize` and
//! `VMSIZE`) is ambiguous, and refused here rather than read one way by
//! the gateway and another by the upstream. ARM (.NET `OrdinalIgnoreCase`)
//! compares each character by its simple upper case: `ſ` (U+017F) is `S`
//! and `ı` (U+0131) is `I`, while `K` (U+212A, Kelvin) is only itself.
//! One fold, `fold`, serves both the lookup and the repeat check.
//!
//! A name given twice exactly is always refused. Names that differ only by
//! that fold are refused only when they fold to a name the readers look up
//! (`NAMES`): free-form maps such as `tags` or AKS `nodeLabels` may hold
//! `app` and `App` side by side, and nothing reads them.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `bytes` as JSON, or `None` when they are not JSON (or not UTF-8), or an
/// object repeats a property name in any case.
pub fn parse(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = <Strict as serde::Deserialize>::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value.0)
}

/// Every property name the readers look up (in `resource`, `template` and
/// `batch`): two names folding to one of these are ambiguous.
pub const NAMES: [&str; 53] = [
    "agentCount",
    "agentPoolProfiles",
    "agentVmSize",
    "autoScale",
    "capacity",
    "content",
    "copy",
    "count",
    "defaultValue",
    "existing",
    "expressionEvaluationOptions",
    "fixedScale",
    "hardwareProfile",
    "httpMethod",
    "input",
    "instanceType",
    "languageVersion",
    "location",
    "manual",
    "maxCount",
    "maxNodeCount",
    "maximumCount",
    "mode",
    "name",
    "nodeProvisioningProfile",
    "parameters",
    "parametersLink",
    "problemClassificationId",
    "properties",
    "quotaTicketDetails",
    "reference",
    "requests",
    "resources",
    "scale",
    "scaleSettings",
    "scope",
    "serviceId",
    "size",
    "sku",
    "skuProfile",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "template",
    "templateLink",
    "type",
    "url",
    "value",
    "variables",
    "virtualMachinesProfile",
    "vmSize",
    "vmSizes",
    "workloadProfileType",
    "workloadProfiles",
];

/// True when `folded` (a name already folded) is one the readers look up.
fn looked_up(folded: &str) -> bool {
    NAMES.iter().any(|n| n.chars().map(fold).eq(folded.chars()))
}

/// A character as ARM compares it: its simple upper case (when that is
/// one character), else itself.
pub fn fold(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// True when `a` and `b` are one name to ARM.
pub fn same(a: &str, b: &str) -> bool {
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// The value of `key` in `value`, compared as ARM compares names.
pub fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| same(k, key)).map(|(_, v)| v)
}

/// True for a template expression (`[...]`; `[[` escapes a literal `[`).
pub fn is_expression(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        let s = s.trim();
        s.starts_with('[') && !s.starts_with("[[") && s.ends_with(']')
    })
}

/// The value at a path of keys.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| get(v, k))
}

/// A count: a non-negative integer, or one written as a string.
pub fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let folded: String = key.chars().map(fold).collect();
            if out.contains_key(&key) || (looked_up(&folded) && !seen.insert(folded)) {
                return Err(de::Error::custom("a property named twice"));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively_and_repeats_are_refused() {
        let v = parse(br#"{"Properties":{"HardwareProfile":{"VMSIZE":"x"}}}"#).unwrap();
        assert_eq!(at(&v, &["properties", "hardwareProfile", "vmSize"]), Some(&Value::from("x")));
        assert!(parse(br#"{"vmSize":"a","VMSIZE":"b"}"#).is_none());
        assert!(parse(br#"{"vmSize":"a","vmSize":"b"}"#).is_none());
        assert!(parse(br#"{"a":[{"sku":1,"SKU":2}]}"#).is_none());
        assert!(parse(br#"{"a":1} {"b":2}"#).is_none());
        assert!(parse(b"\xff").is_none());
        assert!(parse(b"{").is_none());
        assert_eq!(count(&Value::from("20")), Some(20));
        // One fold for lookup and repeats: ſ is S, ı is I, K (Kelvin) is itself.
        let v = parse("{\"propert\u{131}es\":{\"vm\u{17f}ize\":\"x\"}}".as_bytes()).unwrap();
        assert_eq!(at(&v, &["properties", "vmSize"]), Some(&Value::from("x")));
        assert!(parse("{\"vmSize\":\"a\",\"vm\u{17f}ize\":\"b\"}".as_bytes()).is_none());
        assert!(parse("{\"PROPERTIES\":1,\"propert\u{131}es\":2}".as_bytes()).is_none());
        let kelvin = parse("{\"s\u{212a}u\":1,\"sku\":2}".as_bytes()).unwrap();
        assert_eq!(get(&kelvin, "SKU"), Some(&Value::from(2)));
        assert!(same("Microsoft.Compute/virtualMachine\u{17f}", "microsoft.compute/VIRTUALMACHINES"));
        assert!(!same("stra\u{df}e", "STRASSE"));
        assert_eq!(count(&Value::from(-1)), None);
    }

    /// Free-form maps may hold names that differ only by case; a name read
    /// may not, and no name may be given twice exactly.
    #[test]
    fn only_names_read_are_ambiguous_by_case() {
        let labels =
            br#"{"properties":{"count":2,"vmSize":"Standard_D4s_v5","nodeLabels":{"app":"web","App":"legacy"}}}"#;
        assert!(parse(labels).is_some());
        assert!(parse(br#"{"tags":{"Env":"a","env":"b","\u017ftatus":"c","status":"d"}}"#).is_some());
        assert!(parse(br#"{"tags":{"Env":"a","Env":"b"}}"#).is_none());
        assert!(parse(br#"{"Sku":{"name":"a"},"sku":{"name":"b"}}"#).is_none());
        assert!(parse(br#"{"tags":{"Name":"a","name":"b"}}"#).is_none(), "a name read is ambiguous anywhere");
    }

    /// `NAMES` holds every name the readers look up: each quoted name on a
    /// line of theirs that looks one up.
    #[test]
    fn names_hold_every_name_looked_up() {
        let sources = [include_str!("resource.rs"), include_str!("template.rs"), include_str!("batch.rs")];
        let lookups = ["get(", "at(", "object_at(", "n(\"", "READ"];
        let not_names = ["inner", "outer", "mix", "auto", "gpu", "consumption"];
        for source in sources {
            let code = source.split("#[cfg(test)]").next().unwrap_or("");
            let mut in_read = false;
            for line in code.lines() {
                in_read = (in_read || line.contains("const READ")) && !line.contains("];");
                if !in_read && !lookups.iter().any(|l| line.contains(l)) {
                    continue;
                }
                for (i, quoted) in line.split('"').enumerate() {
                    let name = i % 2 == 1 && !quoted.is_empty() && quoted.chars().all(|c| c.is_ascii_alphanumeric());
                    if name && !not_names.contains(&quoted.to_ascii_lowercase().as_str()) {
                        assert!(NAMES.contains(&quoted), "{quoted} is looked up but not in NAMES: {line}");
                    }
                }
            }
        }
    }
}
