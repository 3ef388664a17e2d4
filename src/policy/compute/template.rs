//! `Microsoft.Resources/deployments` with an inline template: every
//! resource of a read type inside it, nested deployments included, with
//! `copy.count` multiplying instances. Simple `[parameters('x')]` and
//! `[variables('x')]` expressions are resolved from the request's
//! `parameters` and the template's defaults and variables; any other
//! expression stays unresolved, so a size or count written with one is
//! unparsable and flagged. A `templateLink` cannot be read.

use std::collections::HashMap;

use serde_json::Value;

use super::arm::{self, Item, Kind};
use super::json::{at, count, get};

/// Nested deployments read at most this deep; deeper is unreadable.
const MAX_DEPTH: usize = 8;

/// What a deployment's body is found to ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    pub items: Vec<Item>,
    /// A template (or a nested one) is only linked.
    pub linked: bool,
    /// Nested too deep to read.
    pub too_deep: bool,
}

/// The items of a deployment request's body.
pub fn deployment(body: &Value) -> Found {
    let mut found = Found::default();
    read(body, &Scope::default(), 1, 0, &mut found);
    found
}

/// The names an expression can refer to, lower case.
#[derive(Default, Clone)]
struct Scope {
    parameters: HashMap<String, Value>,
    variables: HashMap<String, Value>,
}

fn read(deployment: &Value, outer: &Scope, copies: u64, depth: usize, found: &mut Found) {
    if depth > MAX_DEPTH {
        found.too_deep = true;
        return;
    }
    let Some(properties) = get(deployment, "properties") else { return };
    if get(properties, "templateLink").is_some() {
        found.linked = true;
    }
    let Some(template) = get(properties, "template").filter(|t| t.is_object()) else { return };
    // A nested template's expressions are the outer template's unless it
    // asks for its own scope.
    let inner = depth == 0
        || at(properties, &["expressionEvaluationOptions", "scope"])
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("inner"));
    let own;
    let scope = if inner {
        own = scope_of(properties, template, outer);
        &own
    } else {
        outer
    };
    resources(template, None, scope, copies, depth, found);
}

/// The parameters (`properties.parameters.x.value`, else the template's
/// `defaultValue`) and variables of a template.
fn scope_of(properties: &Value, template: &Value, outer: &Scope) -> Scope {
    let mut scope = Scope::default();
    if let Some(declared) = get(template, "parameters").and_then(Value::as_object) {
        for (name, p) in declared {
            if let Some(v) = get(p, "defaultValue").filter(|v| is_scalar(v)) {
                scope.parameters.insert(name.to_lowercase(), v.clone());
            }
        }
    }
    if let Some(given) = get(properties, "parameters").and_then(Value::as_object) {
        for (name, p) in given {
            match get(p, "value").map(|v| resolve(v, outer)).filter(is_scalar) {
                Some(v) => scope.parameters.insert(name.to_lowercase(), v),
                // A Key Vault reference or anything else: not known here.
                None => scope.parameters.remove(&name.to_lowercase()),
            };
        }
    }
    if let Some(vars) = get(template, "variables").and_then(Value::as_object) {
        let partial = Scope { parameters: scope.parameters.clone(), variables: HashMap::new() };
        for (name, v) in vars.iter().filter(|(_, v)| is_scalar(v)) {
            scope.variables.insert(name.to_lowercase(), resolve(v, &partial));
        }
    }
    scope
}

/// `resources` as an array, or as an object of symbolic names (template
/// language 2.0).
fn resources(holder: &Value, parent: Option<&str>, scope: &Scope, copies: u64, depth: usize, found: &mut Found) {
    let list: Vec<&Value> = match get(holder, "resources") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => o.values().collect(),
        _ => return,
    };
    for resource in list {
        let resource = resolve(resource, scope);
        let Some(written) = get(&resource, "type").and_then(Value::as_str) else { continue };
        // A child resource may name its type relative to its parent's.
        let full = match parent {
            Some(p) if !written.contains('/') => format!("{p}/{written}"),
            _ => written.to_string(),
        };
        let times = match get(&resource, "copy").map(|c| get(c, "count").and_then(count)) {
            None => Some(1),
            Some(n) => n,
        };
        let multiplied = times.map(|t| t.saturating_mul(copies));
        match Kind::of_type(&full) {
            Some(Kind::Deployment) => read(&resource, scope, multiplied.unwrap_or(1), depth + 1, found),
            Some(kind) => found.items.extend(arm::items(kind, &resource, multiplied)),
            None => {}
        }
        resources(&resource, Some(&full), scope, multiplied.unwrap_or(1), depth, found);
    }
}

/// Only strings, numbers and booleans are kept in a scope and substituted:
/// a size, a count and a location are scalars, and an object named by many
/// references cannot multiply the memory a body takes.
fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// `value` with each string that is a simple parameter or variable
/// reference replaced by what it names (when known).
fn resolve(value: &Value, scope: &Scope) -> Value {
    match value {
        Value::String(s) => reference(s, scope).cloned().unwrap_or_else(|| value.clone()),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve(v, scope)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), resolve(v, scope))).collect()),
        other => other.clone(),
    }
}

/// What `[parameters('x')]` or `[variables('x')]` names.
fn reference<'s>(s: &str, scope: &'s Scope) -> Option<&'s Value> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    let open = inner.find('(')?;
    let (function, rest) = inner.split_at(open);
    let arg = rest.strip_prefix('(')?.strip_suffix(')')?.trim();
    let name = arg.strip_prefix('\'')?.strip_suffix('\'')?;
    if name.contains('\'') {
        return None;
    }
    let table = match function.trim().to_ascii_lowercase().as_str() {
        "parameters" => &scope.parameters,
        "variables" => &scope.variables,
        _ => return None,
    };
    table.get(&name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demands(found: &Found) -> Vec<(Option<String>, Option<u64>)> {
        found
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Compute(d) => Some((d.size.clone(), d.instances)),
                Item::Quota(_) => None,
            })
            .collect()
    }

    #[test]
    fn copies_parameters_nesting_and_links() {
        let body = json!({"properties": {"mode": "Incremental",
        "parameters": {"vmSize": {"value": "Standard_NC24ads_A100_v4"}, "n": {"value": 20}},
        "template": {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "parameters": {"vmSize": {"type": "string", "defaultValue": "Standard_D2s_v5"}, "n": {"type": "int"}},
            "variables": {"poolSize": "Standard_HB120rs_v3"},
            "resources": [
                {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01", "name": "[concat('vm', copyIndex())]",
                 "location": "[resourceGroup().location]", "copy": {"name": "vms", "count": "[parameters('n')]"},
                 "properties": {"hardwareProfile": {"vmSize": "[parameters('VMSIZE')]"}}},
                {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "nested",
                 "properties": {"mode": "Incremental", "template": {"resources": [
                    {"type": "Microsoft.Batch/batchAccounts/pools", "name": "a/p",
                     "properties": {"vmSize": "[variables('poolSize')]", "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 2}}}},
                    {"type": "Microsoft.Compute/virtualMachines", "name": "x", "properties": {"hardwareProfile": {"vmSize": "[variables('other')]"}}}
                 ]}}},
                {"type": "Microsoft.ContainerService/managedClusters", "name": "c", "properties": {},
                 "resources": [{"type": "agentPools", "name": "gpu", "properties": {"vmSize": "Standard_ND96asr_v4", "count": 2}}]},
                {"type": "Microsoft.Resources/deployments", "name": "linked", "properties": {"templateLink": {"uri": "https://example.com/t.json"}}}
            ]}}});
        let found = deployment(&body);
        assert_eq!(
            demands(&found),
            vec![
                (Some("Standard_NC24ads_A100_v4".into()), Some(20)),
                (Some("Standard_HB120rs_v3".into()), Some(2)),
                (Some("[variables('other')]".into()), Some(1)),
                (Some("Standard_ND96asr_v4".into()), Some(2)),
            ]
        );
        assert!(found.linked);
        let Item::Compute(d) = &found.items[0] else { panic!() };
        assert_eq!(d.region, None, "an expression is no region");
        let linked = deployment(&json!({"properties": {"templateLink": {"uri": "https://example.com/t.json"}}}));
        assert!(linked.linked && linked.items.is_empty());
        let unknown = deployment(
            &json!({"properties": {"template": {"resources": [{"type": "Microsoft.Compute/virtualMachineScaleSets",
            "name": "s", "copy": {"count": "[length(variables('x'))]"}, "sku": {"name": "Standard_D2s_v5", "capacity": 1}}]}}}),
        );
        assert_eq!(demands(&unknown), vec![(Some("Standard_D2s_v5".into()), None)]);
        let symbolic = deployment(&json!({"properties": {"template": {"languageVersion": "2.0", "resources": {"vm":
            {"type": "microsoft.compute/VIRTUALMACHINES", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}}}}}));
        assert_eq!(demands(&symbolic).len(), 1);
    }
}
