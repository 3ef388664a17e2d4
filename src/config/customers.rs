//! Customer relationships for the `customers` rule, read from a file as
//! Partner Center's GDAP relationships are exported:
//!
//! - JSON: Microsoft Graph's `GET /tenantRelationships/delegatedAdminRelationships`
//!   response (`{"value": [...]}`, or the bare array), each relationship
//!   with `customer.tenantId`, `endDateTime` and `status`;
//! - CSV: a header row naming a tenant id column (`tenantId`,
//!   `customerTenantId`, `Customer tenant ID`, ...), an end column
//!   (`endDateTime`, `ends`, `End date`, ...) and optionally `status`; one
//!   relationship per line, fields optionally in double quotes.
//!
//! Dates are RFC 3339 (`2026-04-01T00:00:00Z`) or bare dates (`2026-04-01`,
//! ending at that day's first second, UTC).

use std::path::Path;

use serde_json::Value;

use crate::auth::claims::is_guid;
use crate::policy::gdap::{Customers, Status};
use crate::rfc3339;

/// Reads and parses the file; the error says where and what.
pub fn load(path: &Path) -> Result<Customers, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let parsed = match text.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => from_json(text),
        _ => from_csv(text),
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// One relationship, checked.
pub fn relationship(tenant: &str, ends: &str, status: Option<&str>) -> Result<(String, i64, Status), String> {
    let tenant = tenant.trim();
    if !is_guid(tenant) {
        return Err(format!("tenant id {tenant:?} is not a GUID"));
    }
    let end = rfc3339::parse(ends).ok_or_else(|| format!("end {ends:?} is not an RFC 3339 date-time or date"))?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => Status::Live,
        Some(s) => Status::parse(s).ok_or_else(|| format!("unknown relationship status {s:?}"))?,
    };
    Ok((tenant.to_ascii_lowercase(), end, status))
}

fn from_json(text: &str) -> Result<Customers, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let items = match &doc {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("value") {
            Some(Value::Array(items)) => items,
            _ => return Err("expected a \"value\" array of relationships".into()),
        },
        _ => return Err("expected an array of relationships".into()),
    };
    let mut customers = Customers::default();
    for (i, item) in items.iter().enumerate() {
        let field =
            |path: &[&str]| path.iter().try_fold(item, |v, k| v.get(k)).and_then(Value::as_str).map(str::to_string);
        let tenant = field(&["customer", "tenantId"])
            .or_else(|| field(&["tenantId"]))
            .ok_or_else(|| format!("relationship {i}: no customer.tenantId"))?;
        let ends = field(&["endDateTime"]).ok_or_else(|| format!("relationship {i}: no endDateTime"))?;
        let (tenant, end, status) = relationship(&tenant, &ends, field(&["status"]).as_deref())
            .map_err(|e| format!("relationship {i}: {e}"))?;
        customers.add(&tenant, end, status);
    }
    Ok(customers)
}

fn from_csv(text: &str) -> Result<Customers, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty file")?;
    let names: Vec<String> = fields(header)
        .map_err(|e| format!("line 1: {e}"))?
        .iter()
        .map(|f| f.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase())
        .collect();
    let column = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let tenant_col = column(&["tenantid", "customertenantid", "customerid", "tenant"])
        .ok_or("line 1: no tenant id column (e.g. \"tenantId\")")?;
    let end_col = column(&["enddatetime", "ends", "enddate", "end", "expires"])
        .ok_or("line 1: no end date column (e.g. \"endDateTime\")")?;
    let status_col = column(&["status"]);
    let mut customers = Customers::default();
    for (n, line) in lines {
        let at = |e: String| format!("line {}: {e}", n + 1);
        let row = fields(line).map_err(at)?;
        let get = |c: usize| row.get(c).map(String::as_str);
        let tenant = get(tenant_col).ok_or_else(|| at("missing the tenant id".into()))?;
        let ends = get(end_col).ok_or_else(|| at("missing the end date".into()))?;
        let (tenant, end, status) = relationship(tenant, ends, status_col.and_then(get)).map_err(at)?;
        customers.add(&tenant, end, status);
    }
    Ok(customers)
}

/// The comma-separated fields of one line; `"..."` quotes a field, `""`
/// inside quotes is a quote.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => {}
                Some(_) => return Err("text after a quoted field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some(c) => field.push(c),
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                }
            }
        }
        out.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "7f3a8e21-5b6c-4d7e-8f90-a1b2c3d4e5f6";
    const B: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    #[test]
    fn csv_fields() {
        assert_eq!(fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(fields(r#""x, y","say ""hi""",z"#).unwrap(), ["x, y", r#"say "hi""#, "z"]);
        assert_eq!(fields("a,\r").unwrap(), ["a", ""]);
        assert!(fields(r#""open"#).is_err());
        assert!(fields(r#""a"b"#).is_err());
    }

    #[test]
    fn reads_a_graph_export() {
        let json = serde_json::json!({"@odata.context": "x", "value": [
            {"id": "r1", "displayName": "Contoso", "status": "active", "endDateTime": "2027-02-10T11:26:44.9941884Z",
             "customer": {"displayName": "Contoso", "tenantId": A}},
            {"id": "r2", "status": "terminated", "endDateTime": "2025-01-01T00:00:00Z", "customer": {"tenantId": B}},
        ]});
        let c = from_json(&json.to_string()).unwrap();
        assert_eq!(c.relationship_end(A), rfc3339::parse("2027-02-10T11:26:44Z"));
        assert_eq!(c.relationship_end(B), Some(i64::MIN));
        let bad = serde_json::json!({"value": [{"customer": {"tenantId": "contoso"}, "endDateTime": "2027-01-01"}]});
        assert!(from_json(&bad.to_string()).unwrap_err().contains("relationship 0"));
        assert!(from_json(r#"{"value": [{"customer": {"tenantId": "x"}}]}"#).unwrap_err().contains("endDateTime"));
    }

    #[test]
    fn reads_a_csv_export() {
        let csv = format!(
            "\"Customer name\",\"Customer tenant ID\",\"Status\",\"End date\"\n\"Contoso, Ltd\",{A},Active,2027-01-01\n\n{B},x,expired,2024-01-01\n"
        );
        let err = from_csv(&csv).unwrap_err();
        assert!(err.starts_with("line 4:"), "{err}");
        let csv =
            format!("tenantId,endDateTime,status\r\n{A},2027-01-01T00:00:00Z,active\r\n{B},2024-01-01,expired\r\n");
        let c = from_csv(&csv).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.relationship_end(A), rfc3339::parse("2027-01-01"));
        assert!(from_csv("name,ends\nx,2027-01-01\n").unwrap_err().contains("tenant id column"));
        assert!(from_csv(&format!("tenant_id,ends\n{A},soon\n")).unwrap_err().starts_with("line 2:"));
    }
}
