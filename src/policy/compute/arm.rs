//! Which ARM requests create compute: the resource types read, and the
//! type a path names. Paths and resource types compare as ARM compares them;
//! a path is read as the upstream will see it (already normalised by the
//! request checks), with empty segments and `;` parameters set aside so
//! that `//` or `virtualMachines;x` cannot hide a type.

use super::json::same;

/// The resource types read, as ARM names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VirtualMachine,
    ScaleSet,
    ScaleSetVm,
    ManagedCluster,
    AgentPool,
    MlCompute,
    BatchPool,
    Deployment,
    DeploymentStack,
    CapacityReservation,
    OnlineDeployment,
    ContainerAppsEnvironment,
    Quota,
    ServiceLimit,
    GroupQuotaLimit,
    QuotaAllocation,
    SupportTicket,
}

const TYPES: [(&str, Kind); 17] = [
    ("Microsoft.Compute/virtualMachines", Kind::VirtualMachine),
    ("Microsoft.Compute/virtualMachineScaleSets", Kind::ScaleSet),
    ("Microsoft.Compute/virtualMachineScaleSets/virtualMachines", Kind::ScaleSetVm),
    ("Microsoft.ContainerService/managedClusters", Kind::ManagedCluster),
    ("Microsoft.ContainerService/managedClusters/agentPools", Kind::AgentPool),
    ("Microsoft.MachineLearningServices/workspaces/computes", Kind::MlCompute),
    ("Microsoft.Batch/batchAccounts/pools", Kind::BatchPool),
    ("Microsoft.Resources/deployments", Kind::Deployment),
    ("Microsoft.Resources/deploymentStacks", Kind::DeploymentStack),
    ("Microsoft.Compute/capacityReservationGroups/capacityReservations", Kind::CapacityReservation),
    ("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments", Kind::OnlineDeployment),
    ("Microsoft.App/managedEnvironments", Kind::ContainerAppsEnvironment),
    ("Microsoft.Quota/quotas", Kind::Quota),
    ("Microsoft.Capacity/resourceProviders/locations/serviceLimits", Kind::ServiceLimit),
    ("Microsoft.Quota/groupQuotas/resourceProviders/groupQuotaLimits", Kind::GroupQuotaLimit),
    ("Microsoft.Quota/groupQuotas/resourceProviders/quotaAllocations", Kind::QuotaAllocation),
    ("Microsoft.Support/supportTickets", Kind::SupportTicket),
];

impl Kind {
    /// The type's name as ARM documents it (for the decision log).
    pub fn as_str(self) -> &'static str {
        TYPES.iter().find(|(_, k)| *k == self).map_or("", |(name, _)| name)
    }

    /// The kind of a full type name (`Microsoft.Compute/virtualMachines`),
    /// compared as ARM compares names.
    pub fn of_type(name: &str) -> Option<Self> {
        TYPES.iter().find(|(n, _)| same(n, name)).map(|(_, k)| *k)
    }

    /// A deployment or a deployment stack: an inline template is read.
    pub fn has_template(self) -> bool {
        matches!(self, Self::Deployment | Self::DeploymentStack)
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
///
/// An ARM resource id is read left to right, a keyword only in keyword
/// position: the scope (`subscriptions/{id}[/resourceGroups/{rg}]`,
/// `providers/Microsoft.Management/managementGroups/{mg}` optionally
/// followed by a subscription, or the tenant: nothing), then
/// `providers/{namespace}/{type}/{name}[/{type}/{name}]*`, then any number
/// of extension resources `providers/{namespace}/{type}/{name}...` on it.
/// The type is that of the last provider. A resource named `providers`
/// is a name. Legacy deployment paths without `providers`
/// (`.../resourcegroups/{rg}/deployments/{d}`, `.../deployments/{d}`) are
/// deployments. Segments are percent-decoded (after the request checks,
/// only non-ASCII characters and reserved ones are left encoded).
pub fn target(path: &str) -> Option<Target> {
    // Decoded first: `%3B` is a `;` to a server that decodes before it
    // sets parameters aside.
    let segments: Vec<String> = path
        .split('/')
        .map(|s| decode(s).split(';').next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let kw = |i: usize, word: &str| segments.get(i).is_some_and(|s| same(s, word));
    if segments.len() == 1 && kw(0, "batch") {
        return Some(Target::Batch);
    }
    let mut i = 0;
    let mut subscription = None;
    // The scope.
    if kw(0, "providers") && kw(1, "Microsoft.Management") && kw(2, "managementGroups") && segments.len() > 3 {
        i = 4;
    }
    if kw(i, "subscriptions") && segments.len() > i + 1 {
        subscription = Some(segments[i + 1].to_ascii_lowercase());
        i += 2;
        if kw(i, "resourceGroups") && segments.len() > i + 1 {
            i += 2;
        }
    }
    // A deployment at its legacy path.
    if kw(i, "deployments") && segments.len() == i + 2 {
        return Some(Target::Resource { kind: Kind::Deployment, subscription });
    }
    // Providers: the first starts the resource, each later one (in type
    // position) an extension resource.
    let mut name: Option<String> = None;
    while kw(i, "providers") {
        let namespace = segments.get(i + 1)?;
        let mut types = Vec::new();
        let mut j = i + 2;
        while j < segments.len() {
            if kw(j, "providers") {
                break;
            }
            types.push(segments[j]);
            // The name, whatever it spells.
            j += 2;
        }
        if types.is_empty() {
            return None;
        }
        name = Some(format!("{namespace}/{}", types.join("/")));
        i = j;
    }
    match name.filter(|_| i == segments.len()).and_then(|n| Kind::of_type(&n)) {
        Some(kind) => Some(Target::Resource { kind, subscription }),
        None if i < segments.len() => loose(&segments, subscription),
        None => None,
    }
}

/// A path that is not a resource id as ARM writes them: read when any
/// `providers` in it starts a type that is read (never fewer paths read
/// than by the grammar above).
fn loose(segments: &[&str], subscription: Option<String>) -> Option<Target> {
    (0..segments.len()).filter(|&i| same(segments[i], "providers")).find_map(|i| {
        let namespace = segments.get(i + 1)?;
        let types: Vec<&str> = segments[(i + 2).min(segments.len())..].iter().step_by(2).copied().collect();
        let kind = Kind::of_type(&format!("{namespace}/{}", types.join("/")))?;
        Some(Target::Resource { kind, subscription: subscription.clone() })
    })
}

/// A path segment with its percent-encoding decoded (as UTF-8; a segment
/// that does not decode stays as written).
fn decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
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
        assert_eq!(target("/batch%3Bx"), Some(Target::Batch));
        assert_eq!(target(&p.replace("virtualMachines", "virtualMachines%3Bx")), vm("abc"));
        assert_eq!(target("/subscriptions/s/resourcegroups"), None);
        assert!(
            inspects_method("put") && inspects_method("PATCH") && !inspects_method("GET") && !inspects_method("DELETE")
        );
    }

    /// Resource ids read left to right: a keyword is one only in keyword
    /// position, so a resource named `providers` hides no type.
    #[test]
    fn resource_ids() {
        let sub = "/subscriptions/S1/resourceGroups/rg";
        let kind = |p: &str| match target(p) {
            Some(Target::Resource { kind, subscription }) => Some((kind, subscription)),
            _ => None,
        };
        type Want = Option<(Kind, Option<&'static str>)>;
        let table: &[(String, Want)] = &[
            (format!("{sub}/providers/Microsoft.Compute/virtualMachines/providers"), Some((Kind::VirtualMachine, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Resources/deployments/providers"), Some((Kind::Deployment, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Compute/virtualMachines/subscriptions"), Some((Kind::VirtualMachine, Some("s1")))),
            ("/subscriptions/providers/resourceGroups/providers/providers/Microsoft.Compute/virtualMachines/v".to_string(), Some((Kind::VirtualMachine, Some("providers")))),
            (format!("{sub}/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Insights/diagnosticSettings/d"), None),
            (format!("{sub}/providers/Microsoft.Storage/storageAccounts/providers/providers/Microsoft.Compute/virtualMachines/x"), Some((Kind::VirtualMachine, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Compute/virtualMachines/vm1/providers"), None),
            ("/subscriptions/s/resourcegroups/rg/deployments/d".to_string(), Some((Kind::Deployment, Some("s")))),
            ("/subscriptions/s/deployments/d".to_string(), Some((Kind::Deployment, Some("s")))),
            ("/subscriptions/s/resourcegroups/rg/deployments/d/operations".to_string(), None),
            ("/providers/Microsoft.Resources/deployments/d".to_string(), Some((Kind::Deployment, None))),
            ("/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Resources/deployments/d".to_string(), Some((Kind::Deployment, None))),
            ("/providers/Microsoft.Management/managementGroups/mg".to_string(), None),
            ("/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Quota/groupQuotas/g/resourceProviders/Microsoft.Compute/groupQuotaLimits/eastus".to_string(), Some((Kind::GroupQuotaLimit, None))),
            ("/providers/Microsoft.Management/managementGroups/mg/subscriptions/S2/providers/Microsoft.Quota/groupQuotas/g/resourceProviders/Microsoft.Compute/quotaAllocations/eastus".to_string(), Some((Kind::QuotaAllocation, Some("s2")))),
            (format!("{sub}/providers/Microsoft.Resources/deploymentStacks/st"), Some((Kind::DeploymentStack, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Compute/capacityReservationGroups/g/capacityReservations/r"), Some((Kind::CapacityReservation, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Compute/virtualMachine%C5%BF/vm1"), Some((Kind::VirtualMachine, Some("s1")))),
            (format!("{sub}/providers/Microsoft.Compute/virtualMachineſ/vm1"), Some((Kind::VirtualMachine, Some("s1")))),
            // Not a resource id as ARM writes them: still read.
            (format!("{sub}/x/providers/Microsoft.Compute/virtualMachines/vm1"), Some((Kind::VirtualMachine, Some("s1")))),
        ];
        for (path, want) in table {
            assert_eq!(kind(path), want.map(|(k, s)| (k, s.map(str::to_string))), "{path}");
        }
    }
}
