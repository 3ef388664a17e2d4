//! `MFAGATE__SECTION__KEY=value` environment overrides. Segments are separated
//! by `__`; a numeric segment indexes an array (`MFAGATE__ROUTES__0__MODE`).
//! The value is read as a TOML value when it is one (`true`, `60`,
//! `["a", "b"]`) and as a plain string otherwise.

use super::error::ConfigError;

pub const PREFIX: &str = "MFAGATE__";

/// The overrides found in `env`, as (config path, value) pairs.
pub fn overrides(env: impl IntoIterator<Item = (String, String)>) -> Result<Vec<(String, config::Value)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let path =
            path(rest).ok_or_else(|| ConfigError::invalid(name.clone(), "not a valid MFAGATE__SECTION__KEY name"))?;
        out.push((path, parse_value(&value)));
    }
    // Deterministic order, so that overlapping overrides behave the same on every start.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn path(rest: &str) -> Option<String> {
    let mut path = String::new();
    for segment in rest.split("__") {
        if segment.is_empty() {
            return None;
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            if path.is_empty() {
                return None;
            }
            path.push('[');
            path.push_str(segment);
            path.push(']');
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment.to_ascii_lowercase());
        }
    }
    Some(path)
}

fn parse_value(raw: &str) -> config::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut table) => table.remove("v").map(convert).unwrap_or_else(|| raw.to_string().into()),
        Err(_) => raw.to_string().into(),
    }
}

fn convert(v: toml::Value) -> config::Value {
    match v {
        toml::Value::String(s) => s.into(),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(f) => f.into(),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.into_iter().map(convert).collect::<Vec<_>>().into(),
        toml::Value::Table(t) => {
            t.into_iter().map(|(k, v)| (k, convert(v))).collect::<config::Map<String, config::Value>>().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_paths() {
        assert_eq!(path("SERVER__LISTEN").as_deref(), Some("server.listen"));
        assert_eq!(path("ROUTES__0__MODE").as_deref(), Some("routes[0].mode"));
        assert_eq!(path("0__MODE"), None);
        assert_eq!(path("SERVER____LISTEN"), None);
    }

    #[test]
    fn values_are_toml_when_they_parse() {
        assert!(parse_value("true").into_bool().unwrap());
        assert_eq!(parse_value("60").into_int().unwrap(), 60);
        assert_eq!(parse_value("127.0.0.1:8443").into_string().unwrap(), "127.0.0.1:8443");
        let list = parse_value(r#"["a", "b"]"#).into_array().unwrap();
        assert_eq!(list.len(), 2);
    }
}
