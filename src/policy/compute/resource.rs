//! What one resource's body asks for: its sizes, instances and region (or
//! a quota request), as each resource type writes them.

use serde_json::Value;

use super::arm::Kind;
use super::json::{at, count, get, is_expression, same};
use super::size::{self, Size};

/// The Azure support service whose tickets ask for quota ("Service and
/// subscription limits (quotas)").
const QUOTA_SERVICE: &str = "06bfd9d3-516b-d5c6-5802-169c800dec89";

/// One resource's compute: its size as written, the size read from it,
/// how many instances, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub kind: Kind,
    /// The size as written (at most 64 characters); `None` when the body
    /// names none (a scale set `PATCH` of its capacity only).
    pub size: Option<String>,
    pub parsed: Option<Size>,
    /// `None` when the count cannot be known (an autoscale formula, an
    /// expression that is not resolved).
    pub instances: Option<u64>,
    /// Lower case, spaces removed (`East US` → `eastus`).
    pub region: Option<String>,
}

/// What one resource's body is found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Compute(Demand),
    Quota(Kind),
    /// Compute that cannot be read: a position written as an expression, a
    /// size the gateway cannot know (AKS node autoprovisioning). What it
    /// gets is the `uninspectable` key's.
    Unknown(Kind),
}

/// The items of one resource of `kind` whose body is `body`; `copies`
/// multiplies instances (a template's `copy.count`; `None`: unknown). A
/// body whose compute is written in a shape not read adds `Unknown`.
pub fn items(kind: Kind, body: &Value, copies: Option<u64>) -> Vec<Item> {
    let mut out = read(kind, body, copies);
    if hidden(kind, body) {
        out.push(Item::Unknown(kind));
    }
    out
}

/// True when a position where `kind` writes compute is not the object or
/// array it should be (an expression that was not resolved, `"sku": [...]`)
/// or holds a property copy loop (`"copy": [...]` among the properties):
/// what it creates cannot be read.
fn hidden(kind: Kind, body: &Value) -> bool {
    containers(kind).iter().any(|path| {
        let array = path.last().is_some_and(|k| ["agentPoolProfiles", "workloadProfiles"].contains(k));
        match at(body, path) {
            None | Some(Value::Null) => false,
            Some(v @ Value::Object(_)) if !array => copies_read(v),
            Some(Value::Array(a)) if array => a.iter().any(|e| !e.is_object() || copies_read(e)),
            Some(_) => true,
        }
    })
}

/// The property names `items` reads below a resource.
const READ: [&str; 24] = [
    "properties",
    "hardwareProfile",
    "vmSize",
    "sku",
    "name",
    "capacity",
    "skuProfile",
    "vmSizes",
    "agentPoolProfiles",
    "nodeProvisioningProfile",
    "mode",
    "virtualMachinesProfile",
    "scale",
    "count",
    "maxCount",
    "scaleSettings",
    "fixedScale",
    "maxNodeCount",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "agentVmSize",
    "agentCount",
    "instanceType",
    "workloadProfiles",
];

/// True when an object has a property copy loop (`"copy": [{"name": ...}]`)
/// making a property that is read, or one whose name is not written out.
fn copies_read(object: &Value) -> bool {
    let Some(loops) = get(object, "copy").and_then(Value::as_array) else { return false };
    loops.iter().any(|l| match get(l, "name").and_then(Value::as_str) {
        Some(name) => name.trim_start().starts_with('[') || READ.iter().any(|r| same(r, name)),
        None => true,
    })
}

fn read(kind: Kind, body: &Value, copies: Option<u64>) -> Vec<Item> {
    // An expression (`[resourceGroup().location]`) names no region known here.
    let location = get(body, "location").and_then(Value::as_str).filter(|l| !l.starts_with('[')).map(region);
    let demand = |size: Option<&Value>, instances: Option<u64>| {
        let written = size.map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string));
        let parsed = written.as_deref().and_then(size::parse);
        let instances = match (instances, copies) {
            (Some(n), Some(c)) => Some(n.saturating_mul(c)),
            _ => None,
        };
        let region = location.clone();
        Item::Compute(Demand { kind, size: written.map(|s| s.chars().take(64).collect()), parsed, instances, region })
    };
    match kind {
        Kind::VirtualMachine | Kind::ScaleSetVm => match at(body, &["properties", "hardwareProfile", "vmSize"]) {
            Some(size) => vec![demand(Some(size), Some(1))],
            None => Vec::new(),
        },
        Kind::ScaleSet | Kind::CapacityReservation => {
            let size = at(body, &["sku", "name"]);
            let capacity = at(body, &["sku", "capacity"]);
            if size.is_none() && capacity.is_none() {
                return Vec::new();
            }
            let instances = capacity.map_or(Some(1), count);
            // A scale set of several sizes (`Mix`): each size is judged, the
            // largest counted for every instance.
            let mixed = at(body, &["properties", "skuProfile", "vmSizes"]).and_then(Value::as_array);
            match mixed {
                Some(sizes) if size.and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("mix")) => {
                    mixed_sizes(sizes, instances, &demand)
                }
                _ => vec![demand(size, instances)],
            }
        }
        Kind::ManagedCluster => {
            // Node autoprovisioning chooses sizes itself.
            // A mode that is not read (an expression, not a string) may be `Auto`.
            let auto = match at(body, &["properties", "nodeProvisioningProfile", "mode"]) {
                None | Some(Value::Null) => false,
                Some(m @ Value::String(s)) if !is_expression(m) => s.eq_ignore_ascii_case("auto"),
                Some(_) => true,
            };
            let mut out: Vec<Item> = at(body, &["properties", "agentPoolProfiles"])
                .and_then(Value::as_array)
                .map(|pools| pools.iter().flat_map(|p| pool(p, &demand)).collect())
                .unwrap_or_default();
            if auto {
                out.push(Item::Unknown(kind));
            }
            out
        }
        Kind::AgentPool => match get(body, "properties") {
            Some(p) => pool(p, &demand),
            None => Vec::new(),
        },
        Kind::MlCompute => match at(body, &["properties", "properties"]).or_else(|| get(body, "properties")) {
            // Azure ML on an attached AKS cluster.
            Some(p) if get(p, "agentVmSize").is_some() || get(p, "agentCount").is_some() => {
                let nodes = get(p, "agentCount").map_or(Some(3), count);
                vec![demand(get(p, "agentVmSize"), nodes)]
            }
            // A scale change without the size (the cluster's is not in the request).
            Some(p) if get(p, "vmSize").is_some() || at(p, &["scaleSettings", "maxNodeCount"]).is_some() => {
                let nodes = at(p, &["scaleSettings", "maxNodeCount"]).map_or(Some(1), count);
                vec![demand(get(p, "vmSize"), nodes)]
            }
            _ => Vec::new(),
        },
        Kind::BatchPool => match get(body, "properties") {
            Some(p) if get(p, "vmSize").is_some() || get(p, "scaleSettings").is_some() => {
                vec![demand(get(p, "vmSize"), batch_nodes(p))]
            }
            _ => Vec::new(),
        },
        Kind::OnlineDeployment => match at(body, &["properties", "instanceType"]) {
            Some(size) => vec![demand(Some(size), at(body, &["sku", "capacity"]).map_or(Some(1), count))],
            None => Vec::new(),
        },
        Kind::ContainerAppsEnvironment => at(body, &["properties", "workloadProfiles"])
            .and_then(Value::as_array)
            .map(|profiles| profiles.iter().filter_map(|p| workload_profile(p, &demand)).collect())
            .unwrap_or_default(),
        Kind::Quota | Kind::ServiceLimit | Kind::GroupQuotaLimit | Kind::QuotaAllocation => vec![Item::Quota(kind)],
        Kind::SupportTicket => {
            // A service not read (an expression, not a string) may be quota's.
            let quota_service =
                ["serviceId", "problemClassificationId"].iter().any(|k| match at(body, &["properties", k]) {
                    None | Some(Value::Null) => false,
                    Some(v @ Value::String(s)) if !is_expression(v) => s.to_ascii_lowercase().contains(QUOTA_SERVICE),
                    Some(_) => true,
                });
            if at(body, &["properties", "quotaTicketDetails"]).is_some() || quota_service {
                vec![Item::Quota(kind)]
            } else {
                Vec::new()
            }
        }
        // Read by `template`.
        Kind::Deployment | Kind::DeploymentStack => Vec::new(),
    }
}

/// The objects and arrays on the way to what `items` reads for `kind`,
/// from the resource: written as an expression, or as a property copy
/// loop, in a template, they hide compute.
pub fn containers(kind: Kind) -> &'static [&'static [&'static str]] {
    match kind {
        Kind::VirtualMachine | Kind::ScaleSetVm => &[&["properties"], &["properties", "hardwareProfile"]],
        Kind::ScaleSet | Kind::CapacityReservation => &[&["sku"], &["properties"], &["properties", "skuProfile"]],
        Kind::ManagedCluster => {
            &[&["properties"], &["properties", "agentPoolProfiles"], &["properties", "nodeProvisioningProfile"]]
        }
        Kind::AgentPool => &[&["properties"], &["properties", "virtualMachinesProfile"]],
        Kind::MlCompute => {
            &[&["properties"], &["properties", "properties"], &["properties", "properties", "scaleSettings"]]
        }
        Kind::BatchPool => {
            &[&["properties"], &["properties", "scaleSettings"], &["properties", "scaleSettings", "fixedScale"]]
        }
        Kind::OnlineDeployment => &[&["sku"], &["properties"]],
        Kind::ContainerAppsEnvironment => &[&["properties"], &["properties", "workloadProfiles"]],
        Kind::SupportTicket => &[&["properties"]],
        _ => &[],
    }
}

/// A scale set of several sizes: each judged, the largest for every instance.
fn mixed_sizes(
    sizes: &[Value],
    instances: Option<u64>,
    demand: &dyn Fn(Option<&Value>, Option<u64>) -> Item,
) -> Vec<Item> {
    let names: Vec<Option<&Value>> = sizes.iter().map(|s| get(s, "name")).collect();
    let vcpus = |n: &Option<&Value>| n.and_then(Value::as_str).and_then(size::parse).map_or(u64::MAX, |s| s.vcpus);
    let largest = names.iter().enumerate().max_by_key(|(_, n)| vcpus(n)).map(|(i, _)| i);
    if names.is_empty() {
        return vec![demand(Some(&Value::from("Mix")), instances)];
    }
    names.iter().enumerate().map(|(i, n)| demand(*n, if Some(i) == largest { instances } else { Some(0) })).collect()
}

/// An AKS pool: `vmSize` and the larger of `count` and `maxCount`, or a
/// pool of type `VirtualMachines` with its sizes and counts.
fn pool(p: &Value, demand: &dyn Fn(Option<&Value>, Option<u64>) -> Item) -> Vec<Item> {
    if let Some(profile) = get(p, "virtualMachinesProfile") {
        let manual = at(profile, &["scale", "manual"]).and_then(Value::as_array);
        let others =
            get(profile, "scale").and_then(Value::as_object).is_some_and(|o| o.keys().any(|k| !same(k, "manual")));
        let mut out: Vec<Item> = manual
            .map(|m| m.iter().map(|s| demand(get(s, "size"), get(s, "count").map_or(Some(1), count))).collect())
            .unwrap_or_default();
        if others || manual.is_none() {
            out.push(Item::Unknown(Kind::AgentPool));
        }
        return out;
    }
    vec![demand(get(p, "vmSize"), pool_nodes(p))]
}

/// A Container Apps workload profile of a GPU type (`NC24-A100`,
/// `Consumption-GPU-NC8as-T4`): its size and `maximumCount`. Other profiles
/// are not read.
fn workload_profile(p: &Value, demand: &dyn Fn(Option<&Value>, Option<u64>) -> Item) -> Option<Item> {
    let written = match get(p, "workloadProfileType")? {
        v @ Value::String(s) if !is_expression(v) => s,
        // A type not read may be a GPU's.
        _ => return Some(Item::Unknown(Kind::ContainerAppsEnvironment)),
    };
    let lower = written.to_ascii_lowercase();
    let name = lower.strip_prefix("consumption-gpu-").unwrap_or(&lower).replace('-', "_");
    let parsed = size::parse(&name);
    let gpu = lower.contains("gpu") || parsed.as_ref().is_some_and(|s| s.accelerator || s.family.starts_with('N'));
    if !gpu {
        return None;
    }
    let nodes = get(p, "maximumCount").map_or(Some(1), count);
    match demand(Some(&Value::from(name)), nodes) {
        Item::Compute(mut d) => {
            d.size = Some(written.chars().take(64).collect());
            // A GPU profile is a GPU even when its name does not parse.
            d.parsed = Some(d.parsed.unwrap_or(size::Size { family: "N".into(), vcpus: 1, accelerator: true }));
            if let Some(s) = d.parsed.as_mut() {
                s.accelerator = true;
            }
            Some(Item::Compute(d))
        }
        other => Some(other),
    }
}

/// An AKS pool's nodes: the larger of `count` and `maxCount`.
fn pool_nodes(pool: &Value) -> Option<u64> {
    let n = |k| get(pool, k).map_or(Some(0), count);
    let nodes = n("count")?.max(n("maxCount")?);
    // AKS creates a pool without a count with 3 nodes.
    Some(if get(pool, "count").is_none() && get(pool, "maxCount").is_none() { 3 } else { nodes })
}

/// A Batch pool's target nodes; an autoscale formula's cannot be known.
fn batch_nodes(pool: &Value) -> Option<u64> {
    if at(pool, &["scaleSettings", "autoScale"]).is_some() {
        return None;
    }
    let n = |k| at(pool, &["scaleSettings", "fixedScale", k]).map_or(Some(0), count);
    Some(n("targetDedicatedNodes")?.saturating_add(n("targetLowPriorityNodes")?))
}

/// A location as ARM compares them: `East US` and `eastus` are one region.
pub fn region(location: &str) -> String {
    location.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let vm = serde_json::json!({"location": "East US", "properties": {"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}}});
        let Item::Compute(d) = &items(Kind::VirtualMachine, &vm, Some(1))[0] else { panic!() };
        assert_eq!((d.parsed.as_ref().unwrap().vcpus, d.instances, d.region.as_deref()), (96, Some(1), Some("eastus")));
        let scale = serde_json::json!({"sku": {"capacity": 40}});
        let Item::Compute(d) = &items(Kind::ScaleSet, &scale, Some(1))[0] else { panic!() };
        assert_eq!((d.size.as_deref(), d.instances), (None, Some(40)));
        let aks = serde_json::json!({"location": "westeurope", "properties": {"agentPoolProfiles": [
            {"name": "sys", "vmSize": "Standard_D2s_v5", "count": 3},
            {"name": "gpu", "vmSize": "Standard_NC24ads_A100_v4", "count": 1, "maxCount": 10, "enableAutoScaling": true}]}});
        let got = items(Kind::ManagedCluster, &aks, Some(1));
        assert_eq!(got.len(), 2);
        let Item::Compute(d) = &got[1] else { panic!() };
        assert_eq!(d.instances, Some(10));
        let batch = serde_json::json!({"properties": {"vmSize": "STANDARD_D2S_V5", "scaleSettings": {"autoScale": {"formula": "$TargetDedicatedNodes=1000"}}}});
        let Item::Compute(d) = &items(Kind::BatchPool, &batch, Some(1))[0] else { panic!() };
        assert_eq!(d.instances, None);
        assert!(items(Kind::SupportTicket, &serde_json::json!({"properties": {"title": "x"}}), Some(1)).is_empty());
        assert_eq!(
            items(Kind::SupportTicket, &serde_json::json!({"properties": {"quotaTicketDetails": {}}}), Some(1)),
            vec![Item::Quota(Kind::SupportTicket)]
        );
        let ticket = serde_json::json!({"properties": {"problemClassificationId": "/providers/Microsoft.Support/services/06bfd9d3-516b-d5c6-5802-169c800dec89/problemClassifications/599a339a-a959-d783-24fc-81a42d3fd5fb", "title": "quota"}});
        assert_eq!(items(Kind::SupportTicket, &ticket, Some(1)), vec![Item::Quota(Kind::SupportTicket)]);
    }

    fn demands(kind: Kind, body: serde_json::Value) -> Vec<(Option<String>, Option<u64>)> {
        items(kind, &body, Some(1))
            .into_iter()
            .map(|i| match i {
                Item::Compute(d) => (d.size, d.instances),
                Item::Unknown(_) => (Some("unknown".into()), None),
                Item::Quota(_) => (Some("quota".into()), None),
            })
            .collect()
    }

    /// Scale changes without their size, and the shapes that carry sizes
    /// elsewhere.
    #[test]
    fn shapes_not_read() {
        use serde_json::json;
        let unknown = |kind, body: serde_json::Value| items(kind, &body, Some(1)).contains(&Item::Unknown(kind));
        assert!(unknown(Kind::ScaleSet, json!({"sku": [{"name": "Standard_ND96asr_v4", "capacity": 40}]})));
        assert!(unknown(Kind::VirtualMachine, json!({"properties": "[json('{}')]"})));
        assert!(unknown(Kind::VirtualMachine, json!({"properties": {"hardwareProfile": "[createObject()]"}})));
        assert!(unknown(Kind::ManagedCluster, json!({"properties": {"agentPoolProfiles": "[parameters('p')]"}})));
        assert!(unknown(Kind::ManagedCluster, json!({"properties": {"copy": [{"name": "agentPoolProfiles"}]}})));
        assert!(unknown(Kind::ManagedCluster, json!({"properties": {"agentPoolProfiles": ["[parameters('p')]"]}})));
        assert!(!unknown(
            Kind::VirtualMachine,
            json!({"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}})
        ));
        assert!(!unknown(
            Kind::ManagedCluster,
            json!({"properties": {"agentPoolProfiles": [{"vmSize": "Standard_D2s_v5"}]}})
        ));
        assert!(!unknown(Kind::VirtualMachine, json!({"tags": {"a": "b"}})));
        // A copy loop of a property not read (data disks) hides no compute.
        assert!(!unknown(
            Kind::VirtualMachine,
            json!({"properties": {"copy": [{"name": "dataDisks", "count": 4, "input": {}}]}})
        ));
        assert!(unknown(
            Kind::VirtualMachine,
            json!({"properties": {"copy": [{"name": "[variables('n')]", "count": 1}]}})
        ));
        assert!(unknown(
            Kind::VirtualMachine,
            json!({"properties": {"copy": [{"name": "HARDWAREPROFILE", "count": 1}]}})
        ));
    }

    #[test]
    fn sizes_elsewhere() {
        use serde_json::json;
        let s = |v: &str| Some(v.to_string());
        type Demands = Vec<(Option<String>, Option<u64>)>;
        let table: Vec<(Kind, serde_json::Value, Demands)> = vec![
            (
                Kind::MlCompute,
                json!({"properties": {"properties": {"scaleSettings": {"maxNodeCount": 1000}}}}),
                vec![(None, Some(1000))],
            ),
            (
                Kind::BatchPool,
                json!({"properties": {"scaleSettings": {"fixedScale": {"targetDedicatedNodes": 1000}}}}),
                vec![(None, Some(1000))],
            ),
            (Kind::AgentPool, json!({"properties": {"count": 50}}), vec![(None, Some(50))]),
            (
                Kind::MlCompute,
                json!({"properties": {"computeType": "AKS", "properties": {"agentCount": 100, "agentVmSize": "Standard_NC24ads_A100_v4"}}}),
                vec![(s("Standard_NC24ads_A100_v4"), Some(100))],
            ),
            (
                Kind::AgentPool,
                json!({"properties": {"type": "VirtualMachines", "virtualMachinesProfile": {"scale": {"manual": [{"size": "Standard_ND96asr_v4", "count": 10}, {"size": "Standard_D2s_v5", "count": 2}]}}}}),
                vec![(s("Standard_ND96asr_v4"), Some(10)), (s("Standard_D2s_v5"), Some(2))],
            ),
            (
                Kind::AgentPool,
                json!({"properties": {"type": "VirtualMachines", "virtualMachinesProfile": {"scale": {"autoscale": [{"sizes": ["Standard_ND96asr_v4"]}]}}}}),
                vec![(s("unknown"), None)],
            ),
            (
                Kind::ManagedCluster,
                json!({"properties": {"nodeProvisioningProfile": {"mode": "Auto"}, "agentPoolProfiles": [{"vmSize": "Standard_D2s_v5", "count": 1}]}}),
                vec![(s("Standard_D2s_v5"), Some(1)), (s("unknown"), None)],
            ),
            (
                Kind::ScaleSet,
                json!({"sku": {"name": "Mix", "capacity": 4}, "properties": {"skuProfile": {"vmSizes": [{"name": "Standard_D2s_v5"}, {"name": "Standard_NC24ads_A100_v4"}]}}}),
                vec![(s("Standard_D2s_v5"), Some(0)), (s("Standard_NC24ads_A100_v4"), Some(4))],
            ),
            (Kind::ScaleSet, json!({"sku": {"name": "Mix", "capacity": 4}}), vec![(s("Mix"), Some(4))]),
            (
                Kind::CapacityReservation,
                json!({"sku": {"name": "Standard_ND96asr_v4", "capacity": 20}}),
                vec![(s("Standard_ND96asr_v4"), Some(20))],
            ),
            (
                Kind::OnlineDeployment,
                json!({"sku": {"name": "Default", "capacity": 20}, "properties": {"instanceType": "Standard_NC24ads_A100_v4"}}),
                vec![(s("Standard_NC24ads_A100_v4"), Some(20))],
            ),
            (
                Kind::ContainerAppsEnvironment,
                json!({"properties": {"workloadProfiles": [{"name": "c", "workloadProfileType": "Consumption"}, {"name": "d", "workloadProfileType": "D4", "maximumCount": 3}, {"name": "gpu", "workloadProfileType": "NC24-A100", "maximumCount": 50}]}}),
                vec![(s("NC24-A100"), Some(50))],
            ),
            (Kind::GroupQuotaLimit, json!({"properties": {}}), vec![(s("quota"), None)]),
            (
                Kind::ScaleSetVm,
                json!({"properties": {"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}}}),
                vec![(s("Standard_ND96asr_v4"), Some(1))],
            ),
        ];
        for (kind, body, want) in table {
            assert_eq!(demands(kind, body.clone()), want, "{kind:?} {body}");
        }
    }

    /// A value that decides whether compute is read (AKS autoprovisioning,
    /// a workload profile's type, a support ticket's service) written as
    /// an expression that was not resolved, or not as a string, is not read
    /// as the harmless choice.
    #[test]
    fn deciding_values_written_otherwise_are_not_harmless() {
        let unknown = |kind, body: serde_json::Value| items(kind, &body, Some(1)).contains(&Item::Unknown(kind));
        for mode in [serde_json::json!("[parameters('m')]"), serde_json::json!(1)] {
            let aks =
                serde_json::json!({"properties": {"nodeProvisioningProfile": {"mode": mode}, "agentPoolProfiles": []}});
            assert!(unknown(Kind::ManagedCluster, aks), "{mode}");
        }
        let aks =
            serde_json::json!({"properties": {"nodeProvisioningProfile": {"mode": "Manual"}, "agentPoolProfiles": []}});
        assert!(!unknown(Kind::ManagedCluster, aks));
        let profiles = serde_json::json!({"properties": {"workloadProfiles": [{"name": "g", "workloadProfileType": "[parameters('t')]", "maximumCount": 50}]}});
        assert!(unknown(Kind::ContainerAppsEnvironment, profiles));
        let ticket = serde_json::json!({"properties": {"serviceId": "[parameters('s')]", "title": "x"}});
        assert_eq!(items(Kind::SupportTicket, &ticket, Some(1)), vec![Item::Quota(Kind::SupportTicket)]);
    }
}
