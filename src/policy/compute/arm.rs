//! Which ARM requests create compute, and what one resource's body asks
//! for. Paths and resource types compare case-insensitively, as ARM does;
//! a path is read as the upstream will see it (already normalised by the
//! request checks), with empty segments and `;` parameters set aside so
//! that `//` or `virtualMachines;x` cannot hide a type.

use serde_json::Value;

use super::json::{at, count, get};
use super::size::{self, Size};

/// The resource types read, as ARM names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VirtualMachine,
    ScaleSet,
    ManagedCluster,
    AgentPool,
    MlCompute,
    BatchPool,
    Deployment,
    Quota,
    ServiceLimit,
    SupportTicket,
}

const TYPES: [(&str, Kind); 10] = [
    ("Microsoft.Compute/virtualMachines", Kind::VirtualMachine),
    ("Microsoft.Compute/virtualMachineScaleSets", Kind::ScaleSet),
    ("Microsoft.ContainerService/managedClusters", Kind::ManagedCluster),
    ("Microsoft.ContainerService/managedClusters/agentPools", Kind::AgentPool),
    ("Microsoft.MachineLearningServices/workspaces/computes", Kind::MlCompute),
    ("Microsoft.Batch/batchAccounts/pools", Kind::BatchPool),
    ("Microsoft.Resources/deployments", Kind::Deployment),
    ("Microsoft.Quota/quotas", Kind::Quota),
    ("Microsoft.Capacity/resourceProviders/locations/serviceLimits", Kind::ServiceLimit),
    ("Microsoft.Support/supportTickets", Kind::SupportTicket),
];

impl Kind {
    /// The type's name as ARM documents it (for the decision log).
    pub fn as_str(self) -> &'static str {
        TYPES.iter().find(|(_, k)| *k == self).map_or("", |(name, _)| name)
    }

    /// The kind of a full type name (`Microsoft.Compute/virtualMachines`).
    pub fn of_type(name: &str) -> Option<Self> {
        TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, k)| *k)
    }
}

/// What a request's path names, when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource {
        kind: Kind,
        subscription: Option<String>,
    },
    /// ARM's batch endpoint: several requests in one body.
    Batch,
}

/// The methods that create or change a resource.
pub fn inspects_method(method: &str) -> bool {
    ["PUT", "PATCH", "POST"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// The target of `path` (no query), when its body is read.
pub fn target(path: &str) -> Option<Target> {
    let segments: Vec<&str> =
        path.split('/').map(|s| s.split(';').next().unwrap_or("")).filter(|s| !s.is_empty()).collect();
    if segments.len() == 1 && segments[0].eq_ignore_ascii_case("batch") {
        return Some(Target::Batch);
    }
    let subscription =
        segments.windows(2).find(|w| w[0].eq_ignore_ascii_case("subscriptions")).map(|w| w[1].to_ascii_lowercase());
    let providers = segments.iter().rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    let namespace = segments.get(providers + 1)?;
    let types: Vec<&str> = segments[providers + 2..].iter().step_by(2).copied().collect();
    if types.is_empty() {
        return None;
    }
    let name = format!("{namespace}/{}", types.join("/"));
    Kind::of_type(&name).map(|kind| Target::Resource { kind, subscription })
}

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
}

/// The items of one resource of `kind` whose body is `body`; `copies`
/// multiplies instances (a template's `copy.count`).
pub fn items(kind: Kind, body: &Value, copies: Option<u64>) -> Vec<Item> {
    // An expression (`[resourceGroup().location]`) names no region known here.
    let location = get(body, "location").and_then(Value::as_str).filter(|l| !l.starts_with('[')).map(region);
    let demand = |size: Option<&Value>, instances: Option<u64>, region: Option<String>| {
        let written = size.map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string));
        let parsed = written.as_deref().and_then(size::parse);
        let instances = match (instances, copies) {
            (Some(n), Some(c)) => Some(n.saturating_mul(c)),
            _ => None,
        };
        Item::Compute(Demand { kind, size: written.map(|s| s.chars().take(64).collect()), parsed, instances, region })
    };
    match kind {
        Kind::VirtualMachine => match at(body, &["properties", "hardwareProfile", "vmSize"]) {
            Some(size) => vec![demand(Some(size), Some(1), location)],
            None => Vec::new(),
        },
        Kind::ScaleSet => {
            let size = at(body, &["sku", "name"]);
            let capacity = at(body, &["sku", "capacity"]);
            if size.is_none() && capacity.is_none() {
                return Vec::new();
            }
            let instances = capacity.map_or(Some(1), count);
            vec![demand(size, instances, location)]
        }
        Kind::ManagedCluster => at(body, &["properties", "agentPoolProfiles"])
            .and_then(Value::as_array)
            .map(|pools| pools.iter().map(|p| demand(get(p, "vmSize"), pool_nodes(p), location.clone())).collect())
            .unwrap_or_default(),
        Kind::AgentPool => match get(body, "properties") {
            Some(p) => vec![demand(get(p, "vmSize"), pool_nodes(p), location)],
            None => Vec::new(),
        },
        Kind::MlCompute => match at(body, &["properties", "properties"]) {
            Some(p) if get(p, "vmSize").is_some() => {
                let nodes = at(p, &["scaleSettings", "maxNodeCount"]).map_or(Some(1), count);
                vec![demand(get(p, "vmSize"), nodes, location)]
            }
            _ => Vec::new(),
        },
        Kind::BatchPool => match get(body, "properties") {
            Some(p) if get(p, "vmSize").is_some() => vec![demand(get(p, "vmSize"), batch_nodes(p), location)],
            _ => Vec::new(),
        },
        Kind::Quota | Kind::ServiceLimit => vec![Item::Quota(kind)],
        Kind::SupportTicket => match at(body, &["properties", "quotaTicketDetails"]) {
            Some(_) => vec![Item::Quota(kind)],
            None => Vec::new(),
        },
        // Read by `template`.
        Kind::Deployment => Vec::new(),
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
    fn paths() {
        let vm = |sub: &str| Some(Target::Resource { kind: Kind::VirtualMachine, subscription: Some(sub.into()) });
        let p = "/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";
        assert_eq!(target(p), vm("abc"));
        assert_eq!(target(&p.to_lowercase()), vm("abc"));
        assert_eq!(target(&p.to_uppercase()), vm("abc"));
        assert_eq!(target(&format!("{p}/")), vm("abc"));
        assert_eq!(target(&p.replace("/providers/", "//providers//")), vm("abc"));
        assert_eq!(target(&p.replace("virtualMachines", "virtualMachines;x=1")), vm("abc"));
        assert_eq!(target(&format!("{p}/restart")), None);
        assert_eq!(target("/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"), None);
        let pool =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/p";
        assert!(matches!(target(pool), Some(Target::Resource { kind: Kind::AgentPool, .. })));
        let quota = "/subscriptions/s/providers/Microsoft.Compute/locations/eastus/providers/Microsoft.Quota/quotas/standardNDSv2Family";
        assert!(matches!(target(quota), Some(Target::Resource { kind: Kind::Quota, .. })));
        let limit = "/subscriptions/s/providers/Microsoft.Capacity/resourceProviders/Microsoft.Compute/locations/eastus/serviceLimits/standardNCFamily";
        assert!(matches!(target(limit), Some(Target::Resource { kind: Kind::ServiceLimit, .. })));
        assert_eq!(target("/batch"), Some(Target::Batch));
        assert_eq!(target("/BATCH/"), Some(Target::Batch));
        assert_eq!(target("/subscriptions/s/resourcegroups"), None);
        assert!(
            inspects_method("put") && inspects_method("PATCH") && !inspects_method("GET") && !inspects_method("DELETE")
        );
    }

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
    }
}
