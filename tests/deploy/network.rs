//! Services and NetworkPolicies, read as a cluster reads them: a Service's
//! named `targetPort` is looked up only among a pod's regular containers
//! before Kubernetes 1.32, so a native sidecar's port must be given by
//! number; and egress.yaml's promise that only the gateway reaches
//! Microsoft holds only with NetworkPolicies, evaluated here by the rules
//! of `networking.k8s.io/v1`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::{deploy, manifest};

type Labels = BTreeMap<String, String>;

fn labels(value: &Value) -> Labels {
    value.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
}

/// A label selector (`matchLabels` and `matchExpressions`); `{}` selects everything.
fn selects(selector: &Value, labels: &Labels) -> bool {
    let exact = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let value = labels.get(e["key"].as_str().unwrap());
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().map(|v| v.as_str().unwrap()).collect();
        match e["operator"].as_str().unwrap() {
            "In" => value.is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            op => panic!("operator {op}"),
        }
    });
    exact && expressions
}

#[tokio::test]
async fn service_target_ports_resolve_before_kubernetes_1_32() {
    for file in ["kubernetes/sidecar.yaml", "kubernetes/egress.yaml"] {
        let docs = manifest(&deploy(file)).await;
        for service in docs.iter().filter(|d| d["kind"] == "Service") {
            let name = service["metadata"]["name"].as_str().unwrap();
            let selector =
                Value::Object([("matchLabels".to_string(), service["spec"]["selector"].clone())].into_iter().collect());
            let pods: Vec<&Value> = docs
                .iter()
                .filter(|d| d["kind"] == "Deployment")
                .map(|d| &d["spec"]["template"])
                .filter(|t| selects(&selector, &labels(&t["metadata"]["labels"])))
                .collect();
            assert!(!pods.is_empty(), "{file}: Service {name} selects no pod");
            for port in service["spec"]["ports"].as_array().unwrap() {
                for pod in &pods {
                    let spec = &pod["spec"];
                    let ports = |key: &str| -> Vec<Value> {
                        spec[key]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                            .collect()
                    };
                    let regular = ports("containers");
                    let target = &port["targetPort"];
                    if let Some(named) = target.as_str() {
                        assert!(
                            regular.iter().any(|p| p["name"] == named),
                            "{file}: Service {name} targets port {named:?} by name, which only a regular container's port resolves before Kubernetes 1.32"
                        );
                    } else {
                        let number = target.as_u64().or(port["port"].as_u64()).unwrap();
                        let all: Vec<Value> = regular.into_iter().chain(ports("initContainers")).collect();
                        assert!(
                            all.iter().any(|p| p["containerPort"] == number),
                            "{file}: Service {name} port {number}"
                        );
                    }
                }
            }
        }
    }
}

/// One end of a connection.
#[derive(Clone, Debug)]
enum Peer {
    Pod {
        namespace: Labels,
        labels: Labels,
    },
    /// An address outside the cluster.
    External(IpAddr),
}

fn pod(namespace: &str, labels: &[(&str, &str)]) -> Peer {
    let ns = [("kubernetes.io/metadata.name".to_string(), namespace.to_string())].into_iter().collect();
    Peer::Pod { namespace: ns, labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap();
    let bits: u32 = bits.parse().unwrap();
    match (ip, net.parse::<IpAddr>().unwrap()) {
        (IpAddr::V4(a), IpAddr::V4(n)) => bits == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - bits) == 0,
        (IpAddr::V6(a), IpAddr::V6(n)) => bits == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - bits) == 0,
        _ => false,
    }
}

/// Whether `peer` (a `from` or `to` entry of `policy`, in `namespace`) is `other`.
fn peer_matches(peer: &Value, policy_namespace: &str, other: &Peer) -> bool {
    match other {
        Peer::External(ip) => peer["ipBlock"].as_object().is_some_and(|b| {
            in_cidr(*ip, b["cidr"].as_str().unwrap())
                && !b
                    .get("except")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|e| in_cidr(*ip, e.as_str().unwrap()))
        }),
        // Pods are never matched by ipBlock here: whether a CNI applies
        // ipBlock to pod addresses is not defined.
        Peer::Pod { namespace, labels } => {
            if peer["ipBlock"].is_object() {
                return false;
            }
            let namespace_ok = match peer.get("namespaceSelector") {
                Some(selector) => selects(selector, namespace),
                None => namespace.get("kubernetes.io/metadata.name").map(String::as_str) == Some(policy_namespace),
            };
            let pod_ok = peer.get("podSelector").is_none_or(|selector| selects(selector, labels));
            namespace_ok && pod_ok
        }
    }
}

fn port_matches(rule: &Value, port: u16, protocol: &str) -> bool {
    match rule["ports"].as_array() {
        None => true,
        Some(ports) if ports.is_empty() => true,
        Some(ports) => ports.iter().any(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            let from = p["port"].as_u64();
            let to = p["endPort"].as_u64().or(from);
            proto == protocol && from.is_none_or(|f| (f..=to.unwrap()).contains(&u64::from(port)))
        }),
    }
}

/// The policies of `namespace` that select `pod` for `direction` ("Ingress" or "Egress").
fn isolating<'a>(policies: &'a [&Value], namespace: &str, pod: &Peer, direction: &str) -> Option<Vec<&'a Value>> {
    let Peer::Pod { namespace: ns, labels } = pod else { return None };
    if ns.get("kubernetes.io/metadata.name").map(String::as_str) != Some(namespace) {
        return None;
    }
    let selecting: Vec<&Value> = policies
        .iter()
        .copied()
        .filter(|p| selects(&p["spec"]["podSelector"], labels))
        .filter(|p| {
            let types = p["spec"]["policyTypes"].as_array();
            match types {
                Some(t) => t.iter().any(|t| t == direction),
                None => direction == "Ingress" || (direction == "Egress" && p["spec"]["egress"].is_array()),
            }
        })
        .collect();
    (!selecting.is_empty()).then_some(selecting)
}

/// Whether a connection from `from` to `to` on `port`/`protocol` is allowed
/// by both ends' policies (all in `namespace`).
fn allowed(policies: &[&Value], namespace: &str, from: &Peer, to: &Peer, port: u16, protocol: &str) -> bool {
    let side = |direction: &str, subject: &Peer, other: &Peer, key: &str| match isolating(
        policies, namespace, subject, direction,
    ) {
        None => true,
        Some(selecting) => selecting.iter().any(|p| {
            p["spec"][direction.to_ascii_lowercase()].as_array().into_iter().flatten().any(|rule| {
                let peers = rule[key].as_array();
                let peer_ok = peers.is_none_or(|peers| {
                    peers.is_empty() || peers.iter().any(|peer| peer_matches(peer, namespace, other))
                });
                peer_ok && port_matches(rule, port, protocol)
            })
        }),
    };
    side("Egress", from, to, "to") && side("Ingress", to, from, "from")
}

#[tokio::test]
async fn only_the_egress_gateway_reaches_microsoft() {
    let docs = manifest(&deploy("kubernetes/egress.yaml")).await;
    let policies: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "NetworkPolicy").collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let gateway_labels = labels(&deployment["spec"]["template"]["metadata"]["labels"]);
    let ns = "automation";
    let gateway = Peer::Pod {
        namespace: [("kubernetes.io/metadata.name".into(), ns.into())].into_iter().collect(),
        labels: gateway_labels,
    };
    let automation = pod(ns, &[("app.kubernetes.io/name", "partner-automation")]);
    let elsewhere = pod("billing", &[("app", "invoices")]);
    let prometheus = pod("monitoring", &[("app.kubernetes.io/name", "prometheus")]);
    let dns = pod("kube-system", &[("k8s-app", "kube-dns")]);
    // login.microsoftonline.com, graph.microsoft.com, an IPv6 Microsoft address.
    let microsoft: Vec<Peer> = ["20.190.151.68", "40.126.32.134", "2603:1036:3000::1"]
        .iter()
        .map(|a| Peer::External(a.parse().unwrap()))
        .collect();
    let check = |what: &str, from: &Peer, to: &Peer, port: u16, protocol: &str, expect: bool| {
        assert_eq!(allowed(&policies, ns, from, to, port, protocol), expect, "{what}");
    };
    for ms in &microsoft {
        check(&format!("the automation must not reach {ms:?} itself"), &automation, ms, 443, "TCP", false);
        check(&format!("the gateway reaches {ms:?}"), &gateway, ms, 443, "TCP", true);
    }
    check("the automation reaches the gateway", &automation, &gateway, 8443, "TCP", true);
    check("automation in other namespaces reaches the gateway", &elsewhere, &gateway, 8443, "TCP", true);
    check("the automation resolves names", &automation, &dns, 53, "UDP", true);
    check("the gateway resolves names", &gateway, &dns, 53, "UDP", true);
    check("Prometheus scrapes the gateway", &prometheus, &gateway, 9090, "TCP", true);
    check("nothing outside the cluster reaches the gateway", &microsoft[0], &gateway, 8443, "TCP", false);
    check("the gateway speaks only HTTPS to the outside", &gateway, &microsoft[0], 80, "TCP", false);
}

/// The automation's policy lets it reach a pod labelled as the gateway in
/// any namespace: a relay that its team starts in a namespace of its own
/// (labels are the deployer's to choose) takes its calls to Microsoft
/// around the gateway. The gateway seen from another namespace is the one
/// in the namespace the file names, a name the API server sets and no
/// deployer can.
#[tokio::test]
async fn a_pod_labelled_as_the_gateway_in_another_namespace_is_not_a_way_out() {
    let docs = manifest(&deploy("kubernetes/egress.yaml")).await;
    let policies: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "NetworkPolicy").collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let gateway_labels = labels(&deployment["spec"]["template"]["metadata"]["labels"]);
    let label: Vec<(&str, &str)> = gateway_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ns = "automation";
    let automation = pod(ns, &[("app.kubernetes.io/name", "partner-automation")]);
    let relay = pod("sandbox", &label);
    assert!(
        !allowed(&policies, ns, &automation, &relay, 8443, "TCP"),
        "the automation reaches a look-alike of the gateway in the namespace sandbox"
    );
    // The gateway's own namespace, as the file names it, stays reachable.
    let clients = policies.iter().find(|p| p["metadata"]["name"] == "mfagate-clients-egress").unwrap();
    let named = clients["spec"]["egress"][0]["to"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|peer| peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str())
        .expect("the gateway's namespace, by name");
    let gateway = pod(named, &label);
    assert!(allowed(&policies, ns, &automation, &gateway, 8443, "TCP"), "the gateway in {named}");
}

/// NetworkPolicies pick pods by label, and labels are whoever deploys to
/// the namespace's to choose: a pod of the automation that carries the
/// gateway's labels gets the gateway's way out to Microsoft.
#[tokio::test]
#[ignore = "egress.yaml lets any pod of the namespace labelled as the gateway (mfagate.io/role: egress-gateway) out to 0.0.0.0/0 and ::/0 on 443; no NetworkPolicy can tell the real gateway from a look-alike, so the file needs an admission rule (a ValidatingAdmissionPolicy admitting that label only on pods of a service account of the gateway, which the Deployment does not have yet) or the egress rule must move to a namespace of the gateway's own"]
async fn an_automation_pod_labelled_as_the_gateway_does_not_reach_microsoft() {
    let docs = manifest(&deploy("kubernetes/egress.yaml")).await;
    let policies: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "NetworkPolicy").collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let gateway_labels = labels(&deployment["spec"]["template"]["metadata"]["labels"]);
    let mut label: Vec<(&str, &str)> = gateway_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    label.push(("app.kubernetes.io/name", "partner-automation"));
    let ns = "automation";
    let disguised = pod(ns, &label);
    let graph = Peer::External("20.190.151.68".parse().unwrap());
    assert!(!allowed(&policies, ns, &disguised, &graph, 443, "TCP"), "a look-alike of the gateway reaches Microsoft");
}
