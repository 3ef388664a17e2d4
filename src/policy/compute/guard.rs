//! The `compute_guard` rule: what it reads on a request (`inspect`) and
//! what it flags (`judge`). Pure: the regions a principal created compute
//! in during the last hour are handed in by the gateway, which keeps them.

use std::time::Duration;

use serde_json::Value;

use super::arm::{self, Kind, Target};
use super::resource::{self, Demand, Item};
use super::{batch, json, template};

/// What compute the gateway cannot read gets: a linked template or
/// parameters, a compute position written as an expression, a count that
/// is not resolved, a scale change without its size, AKS node
/// autoprovisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uninspectable {
    /// Forwarded silently.
    Allow,
    /// Forwarded and recorded.
    Flag,
    /// A violation of the rule.
    Deny,
}

/// A route's `[routes.compute_guard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeGuard {
    /// Upper-case VM size families flagged at any count.
    pub families: Vec<String>,
    pub max_vcpus: u64,
    pub max_regions_per_hour: usize,
    pub quota_requests: bool,
    pub uninspectable: Uninspectable,
    pub inspect_body_limit: usize,
    pub inspect_body_timeout: Duration,
}

pub const DEFAULT_FAMILIES: [&str; 10] = ["NC", "NCC", "ND", "NV", "NG", "NP", "HB", "HC", "HX", "H"];

impl Default for ComputeGuard {
    fn default() -> Self {
        Self {
            families: DEFAULT_FAMILIES.map(String::from).to_vec(),
            max_vcpus: 64,
            max_regions_per_hour: 3,
            quota_requests: true,
            uninspectable: Uninspectable::Flag,
            inspect_body_limit: 1 << 20,
            inspect_body_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a request was flagged, as the decision log and the metric name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Gpu,
    Hpc,
    Vcpus,
    Regions,
    Quota,
    Uninspectable,
}

impl Flag {
    pub const ALL: [Flag; 6] = [Self::Gpu, Self::Hpc, Self::Vcpus, Self::Regions, Self::Quota, Self::Uninspectable];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gpu => "gpu",
            Self::Hpc => "hpc",
            Self::Vcpus => "vcpus",
            Self::Regions => "regions",
            Self::Quota => "quota",
            Self::Uninspectable => "uninspectable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One request as if sent alone (a batch wraps several).
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub items: Vec<Item>,
    pub subscription: Option<String>,
    pub resource_type: Option<Kind>,
    /// Compute that cannot be read (a linked template, an expression where
    /// compute is written, ...): what the `uninspectable` key says.
    pub opaque: bool,
    /// A body that cannot be read: not JSON, a property named twice, nested
    /// too deep, encoded, a batch in a batch.
    pub unreadable: bool,
}

/// The gateway's own path normalisation (the request checks'): the path
/// as the upstream gets it, or `None` when those checks refuse it.
pub type Normalize<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The units of a request to `target` with this body (`None`: it could not
/// be read, e.g. content-encoded). A batch's wrapped urls go through
/// `normalize`, as the request's own path did.
pub fn inspect(target: &Target, body: Option<&[u8]>, normalize: Normalize<'_>) -> Vec<Unit> {
    let unreadable = || Unit { unreadable: true, ..Unit::default() };
    let Some(bytes) = body else { return vec![unreadable()] };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return vec![unit_of(target, None)];
    }
    let Some(value) = json::parse(bytes) else { return vec![unreadable()] };
    match target {
        Target::Batch => match batch::requests(&value) {
            Some(wrapped) => wrapped
                .iter()
                .filter(|w| !batch::reads_only(w.method))
                .filter_map(|w| match normalize(&w.path) {
                    // Refused alone, so refused wrapped: never dropped.
                    None => Some(unreadable()),
                    Some(path) => match arm::target(&path)? {
                        Target::Batch => Some(unreadable()),
                        t => Some(unit_of(&t, w.content)),
                    },
                })
                .collect(),
            None => vec![unreadable()],
        },
        t => vec![unit_of(t, Some(&value))],
    }
}

fn unit_of(target: &Target, body: Option<&Value>) -> Unit {
    let Target::Resource { kind, subscription } = target else {
        return Unit { unreadable: true, ..Unit::default() };
    };
    let mut unit = Unit { subscription: subscription.clone(), resource_type: Some(*kind), ..Unit::default() };
    let Some(body) = body else { return unit };
    // ARM's bodies for these types are objects.
    if !body.is_object() {
        unit.unreadable = true;
        return unit;
    }
    if kind.has_template() {
        let found = template::deployment(body);
        unit.items = found.items;
        unit.opaque = found.opaque;
        unit.unreadable = found.too_deep;
    } else {
        unit.items = resource::items(*kind, body, Some(1));
    }
    unit
}

/// What the rule found in a request: the flags that violate it, those only
/// recorded, the compute it describes for the decision log, and the regions
/// it creates compute in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    pub violations: Vec<Flag>,
    pub noted: Vec<Flag>,
    pub summary: Option<Summary>,
    pub regions: Vec<String>,
}

/// The compute the decision log shows for a flagged request: the first
/// flagged resource (or the first one read), never the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub resource_type: Option<&'static str>,
    pub size: Option<String>,
    /// vCPUs of one instance.
    pub vcpus: Option<u64>,
    pub instances: Option<u64>,
    pub region: Option<String>,
    pub subscription: Option<String>,
}

impl Judgement {
    pub fn is_flagged(&self) -> bool {
        !self.violations.is_empty() || !self.noted.is_empty()
    }
}

/// The judgement on `units` under `guard`, for a principal that created
/// compute in `recent` regions (distinct, lower case) during the last hour.
pub fn judge(guard: &ComputeGuard, units: &[Unit], recent: &[String]) -> Judgement {
    let mut j = Judgement::default();
    let mut first: Option<Summary> = None;
    for unit in units {
        let mut flagged_here = Vec::new();
        if unit.unreadable {
            flagged_here.push(Flag::Uninspectable);
        }
        let mut total: u64 = 0;
        let mut sizeless = false;
        for item in &unit.items {
            let d = match item {
                Item::Quota(_) => {
                    if guard.quota_requests {
                        flagged_here.push(Flag::Quota);
                    }
                    continue;
                }
                Item::Unknown(_) => continue,
                Item::Compute(d) => d,
            };
            let summary = summary_of(d, unit);
            let before = flagged_here.len();
            // A GPU accelerator in the name is a GPU whatever the family.
            if let Some(size) = &d.parsed
                && (size.accelerator || guard.families.iter().any(|f| f.eq_ignore_ascii_case(&size.family)))
            {
                flagged_here.push(if size.accelerator || size.family.starts_with('N') { Flag::Gpu } else { Flag::Hpc });
            }
            // A size written but not read cannot be counted: flagged. A size
            // not written (a scale change: the size is the existing
            // resource's) counts at least one vCPU an instance, and is
            // uninspectable.
            let each = match (&d.size, &d.parsed) {
                (_, Some(s)) => Some(s.vcpus),
                (None, None) => {
                    sizeless = true;
                    Some(1)
                }
                (Some(_), None) => None,
            };
            match (each, d.instances) {
                (Some(each), Some(n)) => total = total.saturating_add(each.saturating_mul(n)),
                _ => flagged_here.push(Flag::Vcpus),
            }
            if let Some(r) = &d.region
                && !j.regions.contains(r)
            {
                j.regions.push(r.clone());
            }
            if flagged_here.len() > before || first.is_none() {
                if flagged_here.len() > before && j.summary.is_none() {
                    j.summary = Some(summary.clone());
                }
                first.get_or_insert(summary);
            }
        }
        if total > guard.max_vcpus {
            flagged_here.push(Flag::Vcpus);
        }
        if unit.opaque || sizeless || unit.items.iter().any(|i| matches!(i, Item::Unknown(_))) {
            match guard.uninspectable {
                Uninspectable::Allow => {}
                Uninspectable::Flag => push(&mut j.noted, Flag::Uninspectable),
                Uninspectable::Deny => flagged_here.push(Flag::Uninspectable),
            }
        }
        if first.is_none() && (!flagged_here.is_empty() || unit.opaque) {
            first = Some(Summary {
                resource_type: unit.resource_type.map(Kind::as_str),
                subscription: unit.subscription.clone(),
                ..Summary::default()
            });
        }
        for f in flagged_here {
            push(&mut j.violations, f);
        }
    }
    let mut all: Vec<&String> = recent.iter().collect();
    for r in &j.regions {
        if !all.contains(&r) {
            all.push(r);
        }
    }
    if !j.regions.is_empty() && all.len() > guard.max_regions_per_hour {
        push(&mut j.violations, Flag::Regions);
    }
    if j.summary.is_none() && j.is_flagged() {
        j.summary = first;
    }
    j
}

fn summary_of(d: &Demand, unit: &Unit) -> Summary {
    Summary {
        resource_type: Some(d.kind.as_str()),
        size: d.size.clone(),
        vcpus: d.parsed.as_ref().map(|s| s.vcpus),
        instances: d.instances,
        region: d.region.clone(),
        subscription: unit.subscription.clone(),
    }
}

fn push(flags: &mut Vec<Flag>, f: Flag) {
    if !flags.contains(&f) {
        flags.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request checks' normalisation is the gateway's (tested with it
    /// in `proxy::compute`); here paths are taken as they are.
    const SAME: Normalize<'static> = &|p| Some(p.to_string());

    const VMS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";

    fn vm(size: &str, location: &str) -> String {
        format!(r#"{{"location":"{location}","properties":{{"hardwareProfile":{{"vmSize":"{size}"}}}}}}"#)
    }

    fn flags(path: &str, body: &str, recent: &[&str]) -> Judgement {
        let recent: Vec<String> = recent.iter().map(|s| s.to_string()).collect();
        judge(&ComputeGuard::default(), &inspect(&arm::target(path).unwrap(), Some(body.as_bytes()), SAME), &recent)
    }

    #[test]
    fn what_is_flagged() {
        assert_eq!(flags(VMS, &vm("Standard_D2s_v5", "eastus"), &[]).violations, vec![]);
        assert_eq!(flags(VMS, &vm("Standard_ND96asr_v4", "eastus"), &[]).violations, vec![Flag::Gpu, Flag::Vcpus]);
        assert_eq!(flags(VMS, &vm("Standard_NC4as_T4_v3", "eastus"), &[]).violations, vec![Flag::Gpu]);
        assert_eq!(flags(VMS, &vm("Standard_HC44rs", "eastus"), &[]).violations, vec![Flag::Hpc]);
        assert_eq!(flags(VMS, &vm("Standard_F72s_v2", "eastus"), &[]).violations, vec![Flag::Vcpus]);
        assert_eq!(flags(VMS, &vm("Standard_E16-4s_v5", "eastus"), &[]).violations, vec![]);
        assert_eq!(flags(VMS, &vm("Standard_Whatever", "eastus"), &[]).violations, vec![Flag::Vcpus]);
        let j = flags(VMS, &vm("Standard_D2s_v5", "westus"), &["eastus", "northeurope", "japaneast"]);
        assert_eq!(j.violations, vec![Flag::Regions]);
        assert_eq!(j.regions, vec!["westus".to_string()]);
        assert_eq!(
            flags(VMS, &vm("Standard_D2s_v5", "eastus"), &["eastus", "northeurope", "japaneast"]).violations,
            vec![]
        );
        assert_eq!(flags(VMS, "{", &[]).violations, vec![Flag::Uninspectable]);
        assert_eq!(
            flags(
                VMS,
                r#"{"properties":{"hardwareProfile":{"vmSize":"Standard_D2s_v5","VMSIZE":"Standard_ND96asr_v4"}}}"#,
                &[]
            )
            .violations,
            vec![Flag::Uninspectable]
        );
        let vmss = VMS.replace("virtualMachines", "virtualMachineScaleSets");
        let j = flags(&vmss, r#"{"location":"eastus","sku":{"name":"Standard_F16s_v2","capacity":40}}"#, &[]);
        assert_eq!(j.violations, vec![Flag::Vcpus]);
        let s = j.summary.unwrap();
        assert_eq!(
            (s.vcpus, s.instances, s.resource_type),
            (Some(16), Some(40), Some("Microsoft.Compute/virtualMachineScaleSets"))
        );
        assert_eq!(flags(&vmss, r#"{"sku":{"capacity":65}}"#, &[]).violations, vec![Flag::Vcpus]);
        assert_eq!(flags(&vmss, r#"{"sku":{"capacity":4}}"#, &[]).violations, vec![]);
        let quota = "/subscriptions/s/providers/Microsoft.Compute/locations/eastus/providers/Microsoft.Quota/quotas/standardNDSFamily";
        assert_eq!(
            flags(quota, r#"{"properties":{"limit":{"limitObjectType":"LimitValue","value":96}}}"#, &[]).violations,
            vec![Flag::Quota]
        );
        let deployment = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Resources/deployments/d";
        let j = flags(deployment, r#"{"properties":{"templateLink":{"uri":"https://example.com/t.json"}}}"#, &[]);
        assert_eq!((j.violations, j.noted), (vec![], vec![Flag::Uninspectable]));
        let deny = ComputeGuard { uninspectable: Uninspectable::Deny, ..ComputeGuard::default() };
        let units =
            inspect(&arm::target(deployment).unwrap(), Some(br#"{"properties":{"templateLink":{"uri":"x"}}}"#), SAME);
        assert_eq!(judge(&deny, &units, &[]).violations, vec![Flag::Uninspectable]);
        let allow = ComputeGuard { uninspectable: Uninspectable::Allow, ..ComputeGuard::default() };
        assert!(!judge(&allow, &units, &[]).is_flagged());
        assert!(inspect(&arm::target(VMS).unwrap(), None, SAME)[0].unreadable);
    }

    /// The red team's shapes: each flagged, or uninspectable, never skipped.
    #[test]
    fn what_hid_is_read() {
        let flagged = |path: &str, body: &str| {
            let j = flags(path, body, &[]);
            (j.violations, j.noted)
        };
        let rg = "/subscriptions/s/resourceGroups/rg/providers/";
        let u = Flag::Uninspectable;
        type Flagged = (Vec<Flag>, Vec<Flag>);
        let table: &[(String, &str, Flagged)] = &[
            (
                format!("{rg}Microsoft.Compute/virtualMachines/providers"),
                &vm("Standard_ND96asr_v4", "eastus"),
                (vec![Flag::Gpu, Flag::Vcpus], vec![]),
            ),
            (VMS.to_string(), &vm("Standard_NCC40ads_H100_v5", "eastus"), (vec![Flag::Gpu], vec![])),
            (VMS.to_string(), &vm("Standard_Q4_T4_v1", "eastus"), (vec![Flag::Gpu], vec![])),
            (
                format!("{rg}Microsoft.Compute/virtualMachineScaleSets/s"),
                r#"{"sku":{"name":"Standard_DS5_v2","capacity":12}}"#,
                (vec![Flag::Vcpus], vec![]),
            ),
            (
                format!("{rg}Microsoft.Compute/virtualMachineScaleSets/s"),
                r#"{"sku":{"capacity":60}}"#,
                (vec![], vec![u]),
            ),
            (
                format!("{rg}Microsoft.Compute/virtualMachineScaleSets/s"),
                r#"{"sku":{"capacity":65}}"#,
                (vec![Flag::Vcpus], vec![u]),
            ),
            (
                format!("{rg}Microsoft.Batch/batchAccounts/a/pools/p"),
                r#"{"properties":{"scaleSettings":{"fixedScale":{"targetDedicatedNodes":1000}}}}"#,
                (vec![Flag::Vcpus], vec![u]),
            ),
            (
                format!("{rg}Microsoft.ContainerService/managedClusters/c"),
                r#"{"properties":{"nodeProvisioningProfile":{"mode":"Auto"}}}"#,
                (vec![], vec![u]),
            ),
            (
                VMS.to_string(),
                r#"{"properties":{"hardwareProfile":{"vmſize":"Standard_ND96asr_v4"}}}"#,
                (vec![Flag::Gpu, Flag::Vcpus], vec![]),
            ),
            (VMS.to_string(), r#""Standard_ND96asr_v4""#, (vec![u], vec![])),
            (
                format!("{rg}Microsoft.Resources/deploymentStacks/st"),
                r#"{"properties":{"template":{"resources":[{"type":"Microsoft.Compute/virtualMachines","name":"x","properties":{"hardwareProfile":{"vmSize":"Standard_ND96asr_v4"}}}]}}}"#,
                (vec![Flag::Gpu, Flag::Vcpus], vec![]),
            ),
            (
                "/subscriptions/s/resourcegroups/rg/deployments/d".to_string(),
                r#"{"properties":{"template":{"resources":[{"type":"Microsoft.Compute/virtualMachines","name":"x","properties":"[json('{}')]"}]}}}"#,
                (vec![], vec![u]),
            ),
        ];
        let typed = |t: &str| {
            format!(
                r#"{{"properties":{{"template":{{"resources":[{{"type":"{t}","name":"x","properties":{{"hardwareProfile":{{"vmSize":"Standard_ND96asr_v4"}}}}}}]}}}}}}"#
            )
        };
        let deployment = format!("{rg}Microsoft.Resources/deployments/d");
        for t in [
            "Microsoft.Compute/virtualMachines@2023-03-01",
            "Microsoft.Compute/virtualMachines ",
            "MICROSOFT.COMPUTE/VIRTUALMACHINEſ",
        ] {
            assert_eq!(flagged(&deployment, &typed(t)), (vec![Flag::Gpu, Flag::Vcpus], vec![]), "{t}");
        }
        let vmss = format!("{rg}Microsoft.Compute/virtualMachineScaleSets/s");
        assert_eq!(flagged(&vmss, r#"{"sku":[{"name":"Standard_ND96asr_v4","capacity":40}]}"#), (vec![], vec![u]));
        for (path, body, want) in table {
            assert_eq!(&flagged(path, body), want, "{path} {body}");
        }
    }

    #[test]
    fn a_batch_is_judged_request_by_request() {
        let body = serde_json::json!({"requests": [
            {"httpMethod": "PUT", "url": format!("{VMS}?api-version=2023-03-01"), "content": serde_json::from_str::<Value>(&vm("Standard_D16s_v5", "eastus")).unwrap()},
            {"httpMethod": "PUT", "url": format!("https://management.azure.com{}?api-version=2023-03-01", VMS.replace("vm1", "vm2")), "content": serde_json::from_str::<Value>(&vm("Standard_D32s_v5", "eastus")).unwrap()},
            {"httpMethod": "GET", "url": "/subscriptions/s/resourcegroups?api-version=2021-04-01"}]});
        let units = inspect(&Target::Batch, Some(body.to_string().as_bytes()), SAME);
        assert_eq!(units.len(), 2);
        assert_eq!(
            judge(&ComputeGuard::default(), &units, &[]).violations,
            vec![],
            "16 + 32 vCPUs, each alone under 64"
        );
        let gpu = body.to_string().replace("Standard_D32s_v5", "Standard_NV36ads_A10_v5");
        assert_eq!(
            judge(&ComputeGuard::default(), &inspect(&Target::Batch, Some(gpu.as_bytes()), SAME), &[]).violations,
            vec![Flag::Gpu]
        );
        assert!(inspect(&Target::Batch, Some(b"[1]"), SAME)[0].unreadable);
    }
}
