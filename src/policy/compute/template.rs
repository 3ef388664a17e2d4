//! `Microsoft.Resources/deployments` (and deployment stacks) with an inline
//! template: every resource of a read type inside it, nested deployments
//! included, with `copy.count` multiplying instances. Simple
//! `[parameters('x')]` and `[variables('x')]` expressions are resolved from
//! the request's `parameters` and the template's defaults and variables,
//! whatever they hold (strings, numbers, objects, arrays); any other
//! expression stays unresolved, so a size or count written with one is
//! unparsable and flagged, and an object or array of compute written with
//! one (`"properties": "[json('...')]"`), a property copy loop, a copy count
//! that is not resolved, a `templateLink` or a `parametersLink` cannot be
//! read (`opaque`).
//!
//! Bounded: what a reference resolves to is copied, and every node copied
//! or resolved is counted against `MAX_NODES` for the whole request, so
//! references to references cannot multiply a body's memory or time;
//! passing it, or nesting deeper than `MAX_DEPTH`, makes the body
//! unreadable.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::arm::Kind;
use super::json::{at, count, get, is_expression, same};
use super::resource::{self, Item};

/// Nested deployments read at most this deep; deeper is unreadable.
const MAX_DEPTH: usize = 8;

/// Nodes resolved for one request at most (a node: a value, or 64 bytes of
/// a string); more is unreadable. A 4 MiB template has well under this.
const MAX_NODES: usize = 500_000;

/// A resource type longer than this (in bytes, a child's with its
/// parent's) is unreadable: no type ARM knows is near it, and a longer one
/// would be copied into each child's.
const MAX_TYPE: usize = 256;

/// What a deployment's body is found to ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    pub items: Vec<Item>,
    /// Compute that cannot be read: a linked template or parameters, an
    /// expression or copy loop where compute is written, a copy count not
    /// resolved.
    pub opaque: bool,
    /// Nested too deep, or more to resolve than `MAX_NODES`.
    pub too_deep: bool,
}

/// The items of a deployment request's body.
pub fn deployment(body: &Value) -> Found {
    let mut reader = Reader { found: Found::default(), budget: MAX_NODES };
    reader.deployment(body, &Scope::default(), Some(1), 0);
    reader.found
}

/// The names an expression can refer to, folded as ARM folds names; the
/// values resolved.
#[derive(Default)]
struct Scope {
    parameters: HashMap<String, Value>,
    variables: HashMap<String, Value>,
}

fn key(name: &str) -> String {
    name.chars().map(super::json::fold).collect()
}

struct Reader {
    found: Found,
    budget: usize,
}

impl Reader {
    /// A deployment resource (or the request's body, at depth 0).
    fn deployment(&mut self, deployment: &Value, outer: &Scope, copies: Option<u64>, depth: usize) {
        if depth > MAX_DEPTH {
            self.found.too_deep = true;
            return;
        }
        let Some(properties) = get(deployment, "properties") else { return };
        let properties = self.view(properties, outer);
        if !properties.is_object() {
            self.found.opaque = true;
            return;
        }
        if get(&properties, "templateLink").is_some() {
            self.found.opaque = true;
        }
        // Parameters from a link are not known here: nor are the defaults
        // they override.
        let linked_parameters = get(&properties, "parametersLink").is_some();
        if linked_parameters {
            self.found.opaque = true;
        }
        let Some(template) = get(&properties, "template") else { return };
        let template = self.view(template, outer);
        if !template.is_object() {
            self.found.opaque = true;
            return;
        }
        // A nested template's expressions are the outer template's unless it
        // asks for its own scope: `outer` or `inner`, as ARM folds names.
        let scope = at(&properties, &["expressionEvaluationOptions", "scope"]).map(|s| self.view(s, outer));
        let inner = match scope.as_deref() {
            _ if depth == 0 => true,
            None => false,
            Some(Value::String(s)) if same(s, "inner") => true,
            Some(Value::String(s)) if same(s, "outer") => false,
            Some(_) => {
                self.found.opaque = true;
                return;
            }
        };
        // Template language 2.0 may name a resource that exists already.
        // Any other version is one this reader does not know.
        let symbolic = match get(&template, "languageVersion") {
            None => false,
            Some(Value::String(v)) if v == "1.0" => false,
            Some(Value::String(v)) if v == "2.0" || v == "2.1-experimental" => true,
            Some(_) => {
                self.found.opaque = true;
                return;
            }
        };
        if inner {
            let own = self.scope_of(&properties, &template, outer, depth == 0, linked_parameters);
            self.resources(&template, None, &own, copies, depth, symbolic);
        } else {
            self.resources(&template, None, outer, copies, depth, symbolic);
        }
    }

    /// The parameters (`properties.parameters.x.value`, else the template's
    /// `defaultValue`) and variables of a template. Where these are not the
    /// objects ARM expects once resolved, or name one name twice in two
    /// spellings, what the template's expressions stand for is not known:
    /// the template is unreadable.
    fn scope_of(&mut self, properties: &Value, template: &Value, outer: &Scope, top: bool, linked: bool) -> Scope {
        let mut scope = Scope::default();
        if !linked && let Some(declared) = self.object_at(template, "parameters", outer) {
            let mut names = HashSet::new();
            for (name, p) in declared.as_object().into_iter().flatten() {
                if !names.insert(key(name)) {
                    self.found.opaque = true;
                }
                if !p.is_object() {
                    self.found.opaque = true;
                    continue;
                }
                if let Some(v) = get(p, "defaultValue") {
                    let v = self.resolve(v, &Scope::default());
                    self.bind(&mut scope.parameters, name, Some(v));
                }
            }
        }
        let mut given_names = HashSet::new();
        // The request's own values are literal; a nested deployment's
        // parameters are the outer template's expressions.
        let given_scope = if top { &Scope::default() } else { outer };
        if let Some(given) = self.object_at(properties, "parameters", given_scope) {
            for (name, p) in given.as_object().into_iter().flatten() {
                if !given_names.insert(key(name)) {
                    self.found.opaque = true;
                }
                let p = self.view(p, given_scope);
                if !p.is_object() {
                    self.found.opaque = true;
                    scope.parameters.remove(&key(name));
                    continue;
                }
                // A Key Vault reference or anything else: not known here.
                let v = get(&p, "value").map(|v| self.resolve(v, given_scope));
                self.bind(&mut scope.parameters, name, v);
            }
        }
        if let Some(vars) = self.object_at(template, "variables", outer) {
            // In order: a variable may use the parameters and those before it.
            let mut names = HashSet::new();
            for (name, v) in vars.as_object().into_iter().flatten() {
                if !names.insert(key(name)) {
                    self.found.opaque = true;
                }
                let v = self.resolve(v, &scope);
                scope.variables.insert(key(name), v);
            }
        }
        scope
    }

    /// The object at `name` in `holder`, resolved when written as a simple
    /// reference; `None` when absent; anything else makes the template
    /// unreadable (and is `None`).
    fn object_at<'v>(&mut self, holder: &'v Value, name: &str, scope: &Scope) -> Option<Cow<'v, Value>> {
        let value = self.view(get(holder, name)?, scope);
        if value.is_object() {
            Some(value)
        } else {
            if !value.is_null() {
                self.found.opaque = true;
            }
            None
        }
    }

    /// Sets (or, for `None`, forgets) a parameter.
    fn bind(&mut self, table: &mut HashMap<String, Value>, name: &str, value: Option<Value>) {
        match value {
            Some(v) => table.insert(key(name), v),
            None => table.remove(&key(name)),
        };
    }

    /// `resources` as an array, or as an object of symbolic names (template
    /// language 2.0).
    fn resources(
        &mut self,
        holder: &Value,
        parent: Option<&str>,
        scope: &Scope,
        copies: Option<u64>,
        depth: usize,
        symbolic: bool,
    ) {
        let list: Vec<&Value> = match get(holder, "resources") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(Value::Object(o)) => o.values().collect(),
            None => return,
            Some(_) => {
                self.found.opaque = true;
                return;
            }
        };
        for resource in list {
            if self.found.too_deep {
                return;
            }
            if !resource.is_object() {
                self.found.opaque = true;
                continue;
            }
            let Some(full) = self.type_of(resource, parent, scope) else {
                self.found.opaque = true;
                continue;
            };
            let times = match get(resource, "copy") {
                None => Some(1),
                Some(copy) => {
                    let n = get(copy, "count").map(|c| self.view(c, scope)).and_then(|c| count(&c));
                    if n.is_none() {
                        self.found.opaque = true;
                    }
                    n
                }
            };
            let multiplied = times.zip(copies).map(|(t, c)| t.saturating_mul(c));
            // In template language 2.0 an `existing` resource is one referred
            // to, not created (its children may be).
            let existing = match get(resource, "existing") {
                Some(_) if !symbolic => false,
                None | Some(Value::Bool(false)) => false,
                Some(Value::Bool(true)) => true,
                Some(_) => {
                    self.found.opaque = true;
                    true
                }
            };
            match Kind::of_type(&full).filter(|_| !existing) {
                Some(kind) if kind.has_template() => self.deployment(resource, scope, multiplied, depth + 1),
                Some(kind) => {
                    let resolved = self.resolve_resource(resource, scope);
                    self.found.items.extend(resource::items(kind, &resolved, multiplied));
                }
                None => {}
            }
            self.resources(resource, Some(&full), scope, multiplied, depth, symbolic);
        }
    }

    /// A resource's full type: `type@apiVersion` and stray spaces name the
    /// type before them, and a child may name its type relative to its
    /// parent's. `None` (unreadable) for a type that is not a string once
    /// resolved (an expression that is not a simple reference), has an
    /// empty segment, or is longer than `MAX_TYPE`.
    fn type_of(&mut self, resource: &Value, parent: Option<&str>, scope: &Scope) -> Option<String> {
        let written = self.view(get(resource, "type")?, scope);
        let written = written.as_str()?;
        if written.len() > MAX_TYPE || is_expression(&Value::from(written)) {
            return None;
        }
        let written = written.split('@').next().unwrap_or("").trim();
        let full = match parent {
            Some(p) if !written.contains('/') => format!("{p}/{written}"),
            _ => written.to_string(),
        };
        (full.len() <= MAX_TYPE && !full.split('/').any(str::is_empty)).then_some(full)
    }

    /// `value` resolved when it is a simple reference, else as written.
    fn view<'v>(&mut self, value: &'v Value, scope: &Scope) -> Cow<'v, Value> {
        if is_expression(value) && reference(value.as_str().unwrap_or(""), scope).is_some() {
            Cow::Owned(self.resolve(value, scope))
        } else {
            Cow::Borrowed(value)
        }
    }

    /// A resource resolved, without its child resources (read on their own).
    fn resolve_resource(&mut self, resource: &Value, scope: &Scope) -> Value {
        let Some(o) = resource.as_object() else { return self.resolve(resource, scope) };
        let mut out = Map::new();
        for (k, v) in o.iter().filter(|(k, _)| !same(k, "resources")) {
            let v = self.resolve(v, scope);
            out.insert(k.clone(), v);
        }
        Value::Object(out)
    }

    /// `value` with each string that is a simple parameter or variable
    /// reference replaced by what it names (when known), every node counted.
    fn resolve(&mut self, value: &Value, scope: &Scope) -> Value {
        if !self.spend(1) {
            return Value::Null;
        }
        match value {
            Value::String(s) => match reference(s, scope) {
                Some(named) if self.spend(nodes(named)) => named.clone(),
                Some(_) => Value::Null,
                None => {
                    if self.spend(s.len() / 64) {
                        value.clone()
                    } else {
                        Value::Null
                    }
                }
            },
            Value::Array(a) => Value::Array(a.iter().map(|v| self.resolve(v, scope)).collect()),
            Value::Object(o) => {
                // A name is copied with its value: long names are charged as strings are.
                if !self.spend(o.keys().map(|k| k.len() / 64).sum()) {
                    return Value::Null;
                }
                Value::Object(o.iter().map(|(k, v)| (k.clone(), self.resolve(v, scope))).collect())
            }
            other => other.clone(),
        }
    }

    /// Takes `n` from the budget; false (and the body unreadable) when it is spent.
    fn spend(&mut self, n: usize) -> bool {
        match self.budget.checked_sub(n) {
            Some(left) if !self.found.too_deep => {
                self.budget = left;
                true
            }
            _ => {
                self.found.too_deep = true;
                false
            }
        }
    }
}

/// The nodes of a value, a string value or property name counting one more
/// per 64 bytes; bounded: counting stops past `MAX_NODES`.
fn nodes(value: &Value) -> usize {
    let mut n = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        n += 1 + v.as_str().map_or(0, |s| s.len() / 64);
        if n > MAX_NODES {
            return n;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                n += o.keys().map(|k| k.len() / 64).sum::<usize>();
                stack.extend(o.values());
            }
            _ => {}
        }
    }
    n
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
    table.get(&key(name))
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
                Item::Quota(_) | Item::Unknown(_) => None,
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
        assert!(found.opaque);
        let Item::Compute(d) = &found.items[0] else { panic!() };
        assert_eq!(d.region, None, "an expression is no region");
        let linked = deployment(&json!({"properties": {"templateLink": {"uri": "https://example.com/t.json"}}}));
        assert!(linked.opaque && linked.items.is_empty());
        let unknown = deployment(
            &json!({"properties": {"template": {"resources": [{"type": "Microsoft.Compute/virtualMachineScaleSets",
            "name": "s", "copy": {"count": "[length(variables('x'))]"}, "sku": {"name": "Standard_D2s_v5", "capacity": 1}}]}}}),
        );
        assert_eq!(demands(&unknown), vec![(Some("Standard_D2s_v5".into()), None)]);
        let symbolic = deployment(&json!({"properties": {"template": {"languageVersion": "2.0", "resources": {"vm":
            {"type": "microsoft.compute/VIRTUALMACHINES", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}}}}}));
        assert_eq!(demands(&symbolic).len(), 1);
    }

    fn nd(properties: Value) -> Value {
        json!({"type": "Microsoft.Compute/virtualMachines", "name": "vm", "location": "eastus", "properties": properties})
    }

    fn of(resources: Value, declared: Value, given: Value) -> Value {
        json!({"properties": {"mode": "Incremental", "parameters": given, "template": {"parameters": declared, "resources": resources}}})
    }

    /// What a template hides where compute is written: resolved when it is
    /// a parameter or variable (whatever it holds), else uninspectable.
    #[test]
    fn what_templates_hide() {
        let hw = json!({"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}});
        let size = |f: &Found| demands(f).first().and_then(|(s, _)| s.clone());
        // Object and array parameters, and a nested template by parameter.
        let f = deployment(&of(
            json!([nd(json!("[parameters('p')]"))]),
            json!({"p": {"type": "object"}}),
            json!({"p": {"value": hw}}),
        ));
        assert_eq!((size(&f).as_deref(), f.opaque), (Some("Standard_ND96asr_v4"), false));
        let aks = json!([{"type": "Microsoft.ContainerService/managedClusters", "name": "c", "properties": {"agentPoolProfiles": "[parameters('pools')]"}}]);
        let f = deployment(&of(
            aks,
            json!({}),
            json!({"pools": {"value": [{"vmSize": "Standard_ND96asr_v4", "count": 100}]}}),
        ));
        assert_eq!(demands(&f), vec![(Some("Standard_ND96asr_v4".into()), Some(100))]);
        let nested = json!([{"type": "Microsoft.Resources/deployments", "name": "n", "properties": {"template": "[parameters('t')]"}}]);
        let f = deployment(&of(nested, json!({}), json!({"t": {"value": {"resources": [nd(hw.clone())]}}})));
        assert_eq!(size(&f).as_deref(), Some("Standard_ND96asr_v4"));
        let by_variable = json!({"properties": {"template": {"variables": {"hw": {"vmSize": "Standard_ND96asr_v4"}}, "resources": [nd(json!({"hardwareProfile": "[variables('hw')]"}))]}}});
        assert_eq!(size(&deployment(&by_variable)).as_deref(), Some("Standard_ND96asr_v4"));
        // A parametersLink: the defaults are not what is deployed.
        let linked = json!({"properties": {"parametersLink": {"uri": "https://example.com/p.json"}, "template": {
            "parameters": {"s": {"type": "string", "defaultValue": "Standard_D2s_v5"}},
            "resources": [nd(json!({"hardwareProfile": {"vmSize": "[parameters('s')]"}}))]}}});
        let f = deployment(&linked);
        assert_eq!((size(&f).as_deref(), f.opaque), (Some("[parameters('s')]"), true));
        // Shapes not read: uninspectable.
        let hidden = [
            of(json!([nd(json!("[json('{}')]"))]), json!({}), json!({})),
            of(
                json!([nd(json!({"hardwareProfile": "[createObject('vmSize', 'Standard_ND96asr_v4')]"}))]),
                json!({}),
                json!({}),
            ),
            of(
                json!([{"type": "Microsoft.ContainerService/managedClusters", "name": "c", "properties": {"copy": [{"name": "agentPoolProfiles", "count": 1, "input": {"vmSize": "Standard_ND96asr_v4", "count": 100}}]}}]),
                json!({}),
                json!({}),
            ),
            of(
                json!([{"type": "Microsoft.Resources/deployments", "name": "n", "copy": {"name": "c", "count": "[int('50')]"}, "properties": {"template": {"resources": [nd(json!({"hardwareProfile": {"vmSize": "Standard_D48s_v5"}}))]}}}]),
                json!({}),
                json!({}),
            ),
            of(
                json!([{"type": "Microsoft.Resources/deployments", "name": "n", "properties": {"expressionEvaluationOptions": {"scope": "inner"}, "template": "[json(parameters('t'))]"}}]),
                json!({}),
                json!({"t": {"value": "{}"}}),
            ),
            of(
                json!([{"type": "Microsoft.Resources/deployments", "name": "n", "properties": "[parameters('p')]"}]),
                json!({}),
                json!({}),
            ),
            of(json!("[parameters('r')]"), json!({}), json!({})),
        ];
        for body in &hidden {
            let f = deployment(body);
            let unknown = f.items.iter().any(|i| matches!(i, Item::Unknown(_)));
            assert!(f.opaque || unknown, "{body}");
        }
        // An unresolved copy count never counts once.
        let f = deployment(&hidden[3]);
        assert_eq!(demands(&f), vec![(Some("Standard_D48s_v5".into()), None)]);
        // An inner scope is its own: the outer value of a name does not leak in.
        let inner = json!({"properties": {"parameters": {"s": {"value": "Standard_D2s_v5"}}, "template": {"resources": [
            {"type": "Microsoft.Resources/deployments", "name": "n", "properties": {"expressionEvaluationOptions": {"scope": "inner"},
             "parameters": {"s": {"value": "Standard_ND96asr_v4"}},
             "template": {"parameters": {"s": {"type": "string"}}, "resources": [nd(json!({"hardwareProfile": {"vmSize": "[parameters('s')]"}}))]}}}]}}});
        assert_eq!(size(&deployment(&inner)).as_deref(), Some("Standard_ND96asr_v4"));
    }

    /// References to references cannot multiply memory or time: each level
    /// doubles what a name stands for, and the reader stops at its budget.
    #[test]
    fn resolution_is_bounded() {
        let mut variables = serde_json::Map::new();
        variables.insert("v00".into(), json!("x".repeat(1000)));
        for i in 1..40 {
            let prev = format!("[variables('v{:02}')]", i - 1);
            variables.insert(format!("v{i:02}"), json!([prev, prev]));
        }
        let body = json!({"properties": {"template": {"variables": variables, "resources": [nd(json!({"hardwareProfile": {"vmSize": "[variables('v39')]"}}))]}}});
        let started = std::time::Instant::now();
        let f = deployment(&body);
        assert!(f.too_deep, "the budget is spent: unreadable");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        // Many resources sharing one object parameter fit.
        let many: Vec<Value> = (0..500).map(|_| nd(json!("[parameters('p')]"))).collect();
        let f = deployment(&of(
            json!(many),
            json!({}),
            json!({"p": {"value": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}}),
        ));
        assert_eq!((f.items.len(), f.too_deep), (500, false));
    }

    /// A property name is copied with the value it names: a long name
    /// referenced many times spends the budget as a long string would.
    #[test]
    fn long_property_names_are_charged() {
        let key = "k".repeat(100_000);
        let tags: Vec<Value> = (0..1000).map(|_| json!("[parameters('p')]")).collect();
        let mut vm = nd(json!({"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}));
        vm["tags"] = json!(tags);
        let body = json!({"properties": {"mode": "Incremental", "template": {
            "parameters": {"p": {"type": "object", "defaultValue": {key: 1}}}, "resources": [vm]}}});
        let f = deployment(&body);
        assert!(f.too_deep, "the budget is spent: unreadable");
    }

    fn nested_inner(scope: Value, parameters: Value) -> Value {
        json!({"properties": {"mode": "Incremental", "parameters": {"vmSize": {"value": "Standard_D2s_v5"}}, "template": {"resources": [
            {"type": "Microsoft.Resources/deployments", "name": "n", "properties": {"mode": "Incremental",
             "expressionEvaluationOptions": {"scope": scope}, "parameters": parameters,
             "template": {"parameters": {"vmSize": {"type": "string", "defaultValue": "Standard_D2s_v5"}},
                "resources": [nd(json!({"hardwareProfile": {"vmSize": "[parameters('vmSize')]"}}))]}}}]}}})
    }

    fn sizes(found: &Found) -> Vec<String> {
        demands(found).into_iter().filter_map(|(s, _)| s).collect()
    }

    /// A nested deployment's parameters written as an expression are
    /// resolved, or leave the nested template unreadable: its defaults are
    /// never trusted in their place.
    #[test]
    fn nested_parameters_by_expression_are_resolved_or_opaque() {
        let by_json = nested_inner(json!("inner"), json!("[json('{\"vmSize\":{\"value\":\"Standard_ND96asr_v4\"}}')]"));
        assert!(deployment(&by_json).opaque, "{by_json}");
        let mut by_parameter = nested_inner(json!("inner"), json!("[parameters('np')]"));
        by_parameter["properties"]["parameters"] =
            json!({"np": {"value": {"vmSize": {"value": "Standard_ND96asr_v4"}}}});
        let f = deployment(&by_parameter);
        assert_eq!((sizes(&f), f.opaque), (vec!["Standard_ND96asr_v4".to_string()], false));
        // Shapes that are not objects where names and values are written.
        for parameters in [json!(["x"]), json!({"vmSize": "[parameters('v')]"}), json!({"vmSize": 1})] {
            let body = nested_inner(json!("inner"), parameters);
            assert!(deployment(&body).opaque, "{body}");
        }
        let declared = json!({"properties": {"template": {"parameters": "[parameters('d')]", "resources": [nd(json!({"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}))]}}});
        assert!(deployment(&declared).opaque);
        let variables = json!({"properties": {"template": {"variables": ["x"], "resources": [nd(json!({"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}))]}}});
        assert!(deployment(&variables).opaque);
        // One name given twice in two spellings: which one ARM takes is not known here.
        let twice = nested_inner(
            json!("inner"),
            json!({"vmSize": {"value": "Standard_D2s_v5"}, "VMSIZE": {"value": "Standard_ND96asr_v4"}}),
        );
        assert!(deployment(&twice).opaque);
    }

    /// The scope is `outer` or `inner` as ARM folds names, or absent;
    /// anything else leaves the nested template unreadable.
    #[test]
    fn expression_scope_is_outer_inner_or_opaque() {
        let given = json!({"vmSize": {"value": "Standard_ND96asr_v4"}});
        for scope in ["inner", "INNER", "\u{131}nner"] {
            let f = deployment(&nested_inner(json!(scope), given.clone()));
            assert_eq!((sizes(&f), f.opaque), (vec!["Standard_ND96asr_v4".to_string()], false), "{scope}");
        }
        for scope in [json!(" inner"), json!("inner "), json!(2), json!("2"), json!(null), json!({})] {
            assert!(deployment(&nested_inner(scope.clone(), given.clone())).opaque, "{scope}");
        }
        let outer = deployment(&nested_inner(json!("Outer"), given.clone()));
        assert_eq!((sizes(&outer), outer.opaque), (vec!["Standard_D2s_v5".to_string()], false));
    }

    /// A type written as an expression that does not resolve, or with an
    /// empty segment, is not skipped: the template is unreadable.
    #[test]
    fn types_that_cannot_be_read_are_opaque() {
        let hw = json!({"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}});
        let typed = |t: &str| {
            json!({"properties": {"template": {"variables": {"t": ["Microsoft.Compute/virtualMachines"], "s": "Microsoft.Compute/virtualMachines"},
                "resources": [{"type": t, "name": "x", "location": "eastus", "properties": hw}]}}})
        };
        for t in [
            "[concat('Microsoft.Compute/','virtualMachines')]",
            "[variables('t')[0]]",
            "[variables('t')]",
            "Microsoft.Compute/virtualMachines/",
            "Microsoft.Compute//virtualMachines",
            "/Microsoft.Compute/virtualMachines",
        ] {
            assert!(deployment(&typed(t)).opaque, "{t}");
        }
        let f = deployment(&typed("[variables('s')]"));
        assert_eq!((sizes(&f), f.opaque), (vec!["Standard_ND96asr_v4".to_string()], false));
        // `[[` escapes a literal: a name, not an expression.
        assert!(!deployment(&typed("[[x]")).opaque);
        assert!(!deployment(&typed("Microsoft.Storage/storageAccounts")).opaque);
    }

    /// A long parent type is not copied into each child's: a type past
    /// `MAX_TYPE` is unreadable, so judging a body stays linear.
    #[test]
    fn long_types_are_opaque_and_judging_is_linear() {
        let long = "A".repeat(500_000);
        let kids: Vec<Value> = (0..40_000).map(|_| json!({"type": "a"})).collect();
        let body = json!({"properties": {"template": {"resources": [{"type": long, "name": "p", "resources": kids}]}}});
        let f = deployment(&body);
        assert!(f.opaque && f.items.is_empty());
        let at_cap = "B".repeat(MAX_TYPE);
        let ok = json!({"properties": {"template": {"resources": [{"type": at_cap, "name": "p", "resources": [{"type": "Microsoft.Storage/storageAccounts"}]}]}}});
        assert!(!deployment(&ok).opaque);
        // Child types built from parents never pass the cap either.
        let mut deep = json!({"type": "c"});
        for _ in 0..60 {
            deep = json!({"type": "B".repeat(200), "name": "x", "resources": [deep]});
        }
        let f = deployment(&json!({"properties": {"template": {"resources": [deep]}}}));
        assert!(f.opaque);
    }

    /// Template language 2.0: an `existing` resource is referenced, not
    /// created; `existing` written any other way is unreadable; in 1.0
    /// `existing` means nothing and the resource is judged as created.
    #[test]
    fn existing_resources_are_not_created() {
        let hw = json!({"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}});
        let two = |existing: Value| {
            json!({"properties": {"template": {"languageVersion": "2.0", "resources": {"gpu": {"type": "Microsoft.Compute/virtualMachines",
                "existing": existing, "name": "gpu1", "properties": hw}, "ext": {"type": "Microsoft.Compute/virtualMachines/extensions", "name": "gpu1/e"}}}}})
        };
        let f = deployment(&two(json!(true)));
        assert_eq!((sizes(&f), f.opaque), (vec![], false));
        let f = deployment(&two(json!(false)));
        assert_eq!((sizes(&f), f.opaque), (vec!["Standard_ND96asr_v4".to_string()], false));
        for odd in [json!("true"), json!(1), json!("[true()]"), json!(null)] {
            assert!(deployment(&two(odd.clone())).opaque, "{odd}");
        }
        let mut one = two(json!(true));
        one["properties"]["template"]["languageVersion"] = json!("1.0");
        assert_eq!(sizes(&deployment(&one)), vec!["Standard_ND96asr_v4".to_string()]);
        // A version spelled any other way is not one the reader knows.
        for version in [json!("2.0 "), json!(" 2.0"), json!("2.9"), json!("2.1"), json!(2), json!(null)] {
            let mut odd = two(json!(true));
            odd["properties"]["template"]["languageVersion"] = version.clone();
            assert!(deployment(&odd).opaque, "{version}");
        }
        let mut experimental = two(json!(true));
        experimental["properties"]["template"]["languageVersion"] = json!("2.1-experimental");
        assert_eq!(sizes(&deployment(&experimental)), Vec::<String>::new());
    }
}
