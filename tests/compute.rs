//! compute_guard end to end: ARM-shaped request bodies through the gateway
//! to the recording upstream (which echoes what it received), for each
//! resource type and each kind flagged and not flagged; report-only; the
//! body forwarded byte for byte; oversized and slow bodies refused before
//! the upstream sees anything; regions in a sliding hour; the step-up
//! variant; the decision log.

mod support;

use std::time::{Duration, Instant};

use support::idp::TID;
use support::{TestEnv, assert_rejected};
use tokio::io::AsyncWriteExt;

const ARM_AUDIENCE: &str = "https://management.azure.com";
const SUB: &str = "/subscriptions/8a2b3c4d-1111-4a5b-9c8d-0e1f2a3b4c5d";

fn rg(rest: &str) -> String {
    format!("{SUB}/resourceGroups/rg-prod/providers/{rest}?api-version=2024-03-01")
}

/// The main route serves Partner Center on `/v1`; ARM (AOBO) everything else.
async fn arm(guard: &str) -> TestEnv {
    arm_with(guard, "").await
}

async fn arm_with(guard: &str, route: &str) -> TestEnv {
    TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"arm\"\npath_prefix = \"/\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"{ARM_AUDIENCE}\"]\npartner_tenants = [\"{TID}\"]\n{route}\n[routes.compute_guard]\n{guard}\n"
        ))
        .start()
        .await
}

fn token(env: &TestEnv) -> String {
    env.idp.aobo().claim("aud", ARM_AUDIENCE).mint()
}

async fn send(env: &TestEnv, method: &str, path: &str, body: &str) -> reqwest::Response {
    send_as(env, method, path, body, &token(env)).await
}

async fn send_as(env: &TestEnv, method: &str, path: &str, body: &str, token: &str) -> reqwest::Response {
    env.client
        .request(method.parse().unwrap(), env.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("gateway answers")
}

/// Forwarded: 200 and the upstream echoes exactly the bytes sent.
async fn passes(env: &TestEnv, method: &str, path: &str, body: &str) {
    let before = env.upstream.hits();
    let rsp = send(env, method, path, body).await;
    assert_eq!(rsp.status(), 200, "{method} {path}: {body}");
    assert_eq!(rsp.bytes().await.unwrap(), body.as_bytes(), "{path}: the body reaches the upstream byte for byte");
    assert_eq!(env.upstream.hits(), before + 1);
}

/// Refused with `reason` (ARM's error format), the upstream untouched.
async fn refused(env: &TestEnv, method: &str, path: &str, body: &str, status: u16, reason: &str) {
    let before = env.upstream.hits();
    let rsp = send(env, method, path, body).await;
    assert_rejected(rsp, status, reason).await;
    assert_eq!(env.upstream.hits(), before, "{method} {path}: the upstream was reached: {body}");
}

fn vm(size: &str, location: &str) -> String {
    format!(
        r#"{{"location": "{location}", "properties": {{"hardwareProfile": {{"vmSize": "{size}"}}, "storageProfile": {{"imageReference": {{"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"}}}}, "osProfile": {{"computerName": "vm1", "adminUsername": "azureuser", "linuxConfiguration": {{"disablePasswordAuthentication": true}}}}, "networkProfile": {{"networkInterfaces": [{{"id": "{SUB}/resourceGroups/rg-prod/providers/Microsoft.Network/networkInterfaces/nic1"}}]}}}}}}"#
    )
}

fn deployment(resources: &str, parameters: &str) -> String {
    format!(
        r#"{{"properties": {{"mode": "Incremental", "parameters": {{{parameters}}}, "template": {{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "parameters": {{"vmSize": {{"type": "string", "defaultValue": "Standard_D2s_v5"}}}}, "resources": [{resources}]}}}}}}"#
    )
}

const VM_PATH: &str = "Microsoft.Compute/virtualMachines/vm1";

#[tokio::test]
async fn each_resource_type_flagged_and_not() {
    let env = arm("").await;
    let vm_path = rg(VM_PATH);
    // Virtual machines.
    passes(&env, "PUT", &vm_path, &vm("Standard_D2s_v5", "eastus")).await;
    refused(&env, "PUT", &vm_path, &vm("Standard_ND96asr_v4", "eastus"), 403, "compute_abuse_suspected").await;
    refused(&env, "PATCH", &vm_path, &vm("standard_nc24ads_a100_v4", "eastus"), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &vm_path, &vm("Standard_HB120rs_v3", "eastus"), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &vm_path, &vm("Standard_F72s_v2", "eastus"), 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &vm_path, &vm("Standard_E16-4s_v5", "eastus")).await;
    refused(&env, "PUT", &vm_path, &vm("Standard_Mining9000", "eastus"), 403, "compute_abuse_suspected").await;
    // Scale sets: 40 × 16 vCPUs is over 64; a PATCH of the capacity alone.
    let vmss = rg("Microsoft.Compute/virtualMachineScaleSets/ss1");
    let scale = |size: &str, n: u32| {
        format!(
            r#"{{"location": "eastus", "sku": {{"name": "{size}", "tier": "Standard", "capacity": {n}}}, "properties": {{"upgradePolicy": {{"mode": "Manual"}}}}}}"#
        )
    };
    refused(&env, "PUT", &vmss, &scale("Standard_F16s_v2", 40), 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &vmss, &scale("Standard_F16s_v2", 4)).await;
    refused(&env, "PATCH", &vmss, r#"{"sku": {"capacity": 500}}"#, 403, "compute_abuse_suspected").await;
    passes(&env, "PATCH", &vmss, r#"{"sku": {"capacity": 5}}"#).await;
    // AKS clusters and agent pools.
    let aks = rg("Microsoft.ContainerService/managedClusters/aks1");
    let cluster = |size: &str, max: u32| {
        format!(
            r#"{{"location": "westeurope", "properties": {{"dnsPrefix": "aks1", "agentPoolProfiles": [{{"name": "system", "vmSize": "Standard_D2s_v5", "count": 3, "mode": "System"}}, {{"name": "user", "vmSize": "{size}", "count": 1, "maxCount": {max}, "enableAutoScaling": true, "mode": "User"}}]}}}}"#
        )
    };
    passes(&env, "PUT", &aks, &cluster("Standard_D4s_v5", 5)).await;
    refused(&env, "PUT", &aks, &cluster("Standard_NC4as_T4_v3", 2), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &aks, &cluster("Standard_D4s_v5", 50), 403, "compute_abuse_suspected").await;
    let pool = rg("Microsoft.ContainerService/managedClusters/aks1/agentPools/gpu");
    refused(
        &env,
        "PUT",
        &pool,
        r#"{"properties": {"vmSize": "Standard_NV36ads_A10_v5", "count": 1}}"#,
        403,
        "compute_abuse_suspected",
    )
    .await;
    passes(&env, "PUT", &pool, r#"{"properties": {"vmSize": "Standard_D2s_v5", "count": 2}}"#).await;
    // Azure Machine Learning computes.
    let ml = rg("Microsoft.MachineLearningServices/workspaces/ws1/computes/cluster1");
    let aml = |size: &str| {
        format!(
            r#"{{"location": "eastus", "properties": {{"computeType": "AmlCompute", "properties": {{"vmSize": "{size}", "vmPriority": "Dedicated", "scaleSettings": {{"minNodeCount": 0, "maxNodeCount": 4}}}}}}}}"#
        )
    };
    passes(&env, "PUT", &ml, &aml("Standard_D2s_v5")).await;
    refused(&env, "PUT", &ml, &aml("Standard_NC24ads_A100_v4"), 403, "compute_abuse_suspected").await;
    // Batch pools.
    let batch_pool = rg("Microsoft.Batch/batchAccounts/acct1/pools/pool1");
    let bpool = |size: &str, n: u32| {
        format!(
            r#"{{"properties": {{"vmSize": "{size}", "deploymentConfiguration": {{"virtualMachineConfiguration": {{"nodeAgentSkuId": "batch.node.ubuntu 22.04"}}}}, "scaleSettings": {{"fixedScale": {{"targetDedicatedNodes": {n}, "targetLowPriorityNodes": 0}}}}}}}}"#
        )
    };
    passes(&env, "PUT", &batch_pool, &bpool("STANDARD_D2S_V5", 8)).await;
    refused(&env, "PUT", &batch_pool, &bpool("Standard_HC44rs", 1), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &batch_pool, &bpool("Standard_D2s_v5", 100), 403, "compute_abuse_suspected").await;
    // Quota: Microsoft.Quota, Microsoft.Capacity, a support ticket with quota details.
    let quota = format!(
        "{SUB}/providers/Microsoft.Compute/locations/eastus/providers/Microsoft.Quota/quotas/standardNDASv4Family?api-version=2023-02-01"
    );
    refused(&env, "PUT", &quota, r#"{"properties": {"limit": {"limitObjectType": "LimitValue", "value": 960}, "name": {"value": "standardNDASv4Family"}}}"#, 403, "compute_abuse_suspected").await;
    let limit = format!(
        "{SUB}/providers/Microsoft.Capacity/resourceProviders/Microsoft.Compute/locations/eastus/serviceLimits/standardNCADSA100v4Family?api-version=2020-10-25"
    );
    refused(&env, "PUT", &limit, r#"{"properties": {"limit": 480}}"#, 403, "compute_abuse_suspected").await;
    let ticket = format!("{SUB}/providers/Microsoft.Support/supportTickets/t1?api-version=2020-04-01");
    refused(&env, "PUT", &ticket, r#"{"properties": {"title": "quota", "serviceId": "/providers/Microsoft.Support/services/06bfd9d3-516b-d5c6-5802-169c800dec89", "quotaTicketDetails": {"quotaChangeRequestVersion": "1.0", "quotaChangeRequests": [{"region": "EastUS", "payload": "{\"VMFamily\":\"standardNDSFamily\",\"NewLimit\":960}"}]}}}"#, 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &ticket, r#"{"properties": {"title": "billing question", "description": "invoice"}}"#).await;
    // What is not read: other methods, other types.
    passes(&env, "GET", &vm_path, "").await;
    passes(&env, "DELETE", &vm_path, "").await;
    passes(&env, "POST", &rg("Microsoft.Compute/virtualMachines/vm1/restart"), &vm("Standard_ND96asr_v4", "eastus"))
        .await;
    passes(
        &env,
        "PUT",
        &rg("Microsoft.Storage/storageAccounts/st1"),
        r#"{"sku": {"name": "Standard_ND96asr_v4"}, "location": "eastus"}"#,
    )
    .await;
    let deny = r#"mfagate_compute_guard_total{kind="gpu",route="arm",verdict="deny"}"#;
    assert_eq!(env.metric(deny).await, 5.0);
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="hpc",route="arm",verdict="deny"}"#).await, 2.0);
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="quota",route="arm",verdict="deny"}"#).await, 3.0);
}

#[tokio::test]
async fn deployments_templates_copies_parameters_and_links() {
    let env = arm("").await;
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let vm_resource = |size: &str, copy: &str| {
        format!(
            r#"{{"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-09-01", "name": "[concat('vm', copyIndex())]", "location": "[resourceGroup().location]", {copy} "properties": {{"hardwareProfile": {{"vmSize": "{size}"}}}}}}"#
        )
    };
    passes(&env, "PUT", &path, &deployment(&vm_resource("[parameters('vmSize')]", ""), "")).await;
    let copied = vm_resource("Standard_NC6s_v3", r#""copy": {"name": "vmLoop", "count": 20},"#);
    refused(&env, "PUT", &path, &deployment(&copied, ""), 403, "compute_abuse_suspected").await;
    let twenty_small = vm_resource("Standard_D4s_v5", r#""copy": {"name": "vmLoop", "count": 20},"#);
    refused(&env, "PUT", &path, &deployment(&twenty_small, ""), 403, "compute_abuse_suspected").await;
    let by_parameter =
        deployment(&vm_resource("[parameters('vmSize')]", ""), r#""vmSize": {"value": "Standard_ND96asr_v4"}"#);
    refused(&env, "PUT", &path, &by_parameter, 403, "compute_abuse_suspected").await;
    let nested = format!(
        r#"{{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner", "properties": {{"mode": "Incremental", "template": {{"resources": [{}]}}}}}}"#,
        vm_resource("Standard_HX176rs", "")
    );
    refused(&env, "PUT", &path, &deployment(&nested, ""), 403, "compute_abuse_suspected").await;
    // A linked template cannot be read: forwarded and recorded (the default "flag").
    let linked = r#"{"properties": {"mode": "Incremental", "templateLink": {"uri": "https://raw.githubusercontent.com/Azure/azure-quickstart-templates/master/quickstarts/microsoft.compute/vm-simple-linux/azuredeploy.json"}, "parameters": {"vmSize": {"value": "Standard_ND96asr_v4"}}}}"#;
    passes(&env, "PUT", &path, linked).await;
    let recorded = r#"mfagate_compute_guard_total{kind="uninspectable",route="arm",verdict="recorded"}"#;
    assert_eq!(env.metric(recorded).await, 1.0);
    // The batch endpoint: each wrapped request as if sent alone.
    let wrapped = |size: &str| {
        serde_json::json!({"requests": [
            {"httpMethod": "GET", "url": format!("https://management.azure.com{SUB}/resourcegroups?api-version=2021-04-01")},
            {"httpMethod": "PUT", "url": rg(VM_PATH), "content": serde_json::from_str::<serde_json::Value>(&vm("Standard_D16s_v5", "eastus")).unwrap()},
            {"httpMethod": "PUT", "url": rg("Microsoft.Compute/virtualMachines/vm2"), "content": serde_json::from_str::<serde_json::Value>(&vm(size, "eastus")).unwrap()}]})
        .to_string()
    };
    passes(&env, "POST", "/batch?api-version=2020-06-01", &wrapped("Standard_D32s_v5")).await;
    refused(
        &env,
        "POST",
        "/batch?api-version=2020-06-01",
        &wrapped("Standard_ND96asr_v4"),
        403,
        "compute_abuse_suspected",
    )
    .await;
}

#[tokio::test]
async fn linked_templates_can_be_denied_or_allowed() {
    let linked =
        r#"{"properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.com/azuredeploy.json"}}}"#;
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let env = arm(r#"uninspectable = "deny""#).await;
    refused(&env, "PUT", &path, linked, 403, "compute_abuse_suspected").await;
    let env = arm(r#"uninspectable = "allow""#).await;
    passes(&env, "PUT", &path, linked).await;
    assert!(!env.metrics().await.contains(r#"kind="uninspectable",route="arm",verdict="recorded"} 1"#));
}

#[tokio::test]
async fn what_an_attacker_would_try_is_read_as_arm_reads_it() {
    let env = arm("").await;
    let gpu = vm("Standard_ND96asr_v4", "eastus");
    for path in [
        rg(VM_PATH).to_lowercase(),
        rg(VM_PATH).replace("Microsoft.Compute/virtualMachines", "MICROSOFT.COMPUTE/VIRTUALMACHINES"),
        rg(VM_PATH).replace("virtualMachines", "virtual%4Dachines"),
        rg(VM_PATH).replace("/providers/", "//providers/"),
        rg(VM_PATH).replace("virtualMachines/vm1", "virtualMachines;v=1/vm1"),
        rg(VM_PATH).replace("vm1?", "vm1/?"),
    ] {
        let rsp = send(&env, "PUT", &path, &gpu).await;
        assert_eq!(rsp.status(), 403, "{path}: {}", rsp.text().await.unwrap());
    }
    let path = rg(VM_PATH);
    let twice = r#"{"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5", "VMSIZE": "Standard_ND96asr_v4"}}}"#;
    refused(&env, "PUT", &path, twice, 403, "compute_abuse_suspected").await;
    let repeated = r#"{"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5", "vmSize": "Standard_ND96asr_v4"}}}"#;
    refused(&env, "PUT", &path, repeated, 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &path, r#"{"location": "eastus", "properties": "#, 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &path, &vm("Standard_D2s_v5", "eastus").replace("vmSize", "VMSIZE")).await;
    let uninspectable = r#"mfagate_compute_guard_total{kind="uninspectable",route="arm",verdict="deny"}"#;
    assert_eq!(env.metric(uninspectable).await, 3.0);
}

#[tokio::test]
async fn the_fourth_region_in_an_hour() {
    let env = arm("").await;
    let path = rg(VM_PATH);
    for region in ["eastus", "West Europe", "japaneast"] {
        passes(&env, "PUT", &path, &vm("Standard_D2s_v5", region)).await;
    }
    passes(&env, "PUT", &path, &vm("Standard_D2s_v5", "westeurope")).await;
    refused(&env, "PUT", &path, &vm("Standard_D2s_v5", "australiaeast"), 403, "compute_abuse_suspected").await;
    // Another principal has its own hour.
    let other = env.idp.aobo().claim("aud", ARM_AUDIENCE).claim("oid", "11111111-2222-4333-8444-555555555555").mint();
    let rsp = send_as(&env, "PUT", &path, &vm("Standard_D2s_v5", "australiaeast"), &other).await;
    assert_eq!(rsp.status(), 200);
    // A reload keeps the count.
    env.reloader.reload().await.expect("reload");
    refused(&env, "PUT", &path, &vm("Standard_D2s_v5", "brazilsouth"), 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &path, &vm("Standard_D2s_v5", "japaneast")).await;
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="regions",route="arm",verdict="deny"}"#).await, 2.0);
}

#[tokio::test]
async fn report_only_forwards_byte_for_byte_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"arm\"\npath_prefix = \"/\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"{ARM_AUDIENCE}\"]\nrule_modes = {{ compute_guard = \"report-only\" }}\n[routes.compute_guard]\ninspect_body_limit = \"4KiB\"\n[audit]\nsink = \"file\"\npath = \"{}\"\n",
            log.display()
        ))
        .start()
        .await;
    // Odd spacing, escapes and non-ASCII text: forwarded exactly as sent.
    let body =
        vm("Standard_ND96asr_v4", "eastus").replace("azureuser", "az\\u00e9 \\\"ü\\\"  \\t").replace(", ", " ,\r\n ");
    passes(&env, "PUT", &rg(VM_PATH), &body).await;
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="gpu",route="arm",verdict="would_deny"}"#).await, 1.0);
    // Larger than the limit: recorded, and the whole body still reaches the upstream.
    let big = format!(
        r#"{{"location": "eastus", "tags": {{"pad": "{}"}}, "properties": {{"hardwareProfile": {{"vmSize": "Standard_D2s_v5"}}}}}}"#,
        "x".repeat(10_000)
    );
    passes(&env, "PUT", &rg(VM_PATH), &big).await;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        big.as_bytes().chunks(3000).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let rsp = env
        .client
        .put(env.url(&rg(VM_PATH)))
        .bearer_auth(token(&env))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.bytes().await.unwrap(), big.as_bytes(), "a streamed body larger than the limit arrives whole");
    let lines = support::audit_lines(&log, 3).await.1;
    let first = &lines[0];
    assert_eq!(first["decision"], "would_deny");
    assert_eq!(first["reason"], "compute_abuse_suspected");
    assert_eq!(first["findings"], "compute_abuse_suspected");
    assert_eq!(first["compute_kind"], "gpu,vcpus");
    assert_eq!(first["compute_size"], "Standard_ND96asr_v4");
    assert_eq!(first["compute_vcpus"], 96);
    assert_eq!(first["compute_instances"], 1);
    assert_eq!(first["compute_region"], "eastus");
    assert_eq!(first["compute_subscription"], SUB.trim_start_matches("/subscriptions/"));
    assert_eq!(first["compute_resource_type"], "Microsoft.Compute/virtualMachines");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("Canonical"), "never the body");
    assert_eq!(lines[1]["reason"], "compute_body_too_large");
    assert_eq!(lines[1]["compute_kind"], "uninspectable");
    assert_eq!(lines[2]["reason"], "compute_body_too_large");
}

#[tokio::test]
async fn oversized_and_slow_bodies_are_refused_before_the_upstream_sees_them() {
    let env = arm("inspect_body_limit = \"1KiB\"\ninspect_body_timeout = \"500ms\"").await;
    let path = rg(VM_PATH);
    let big = format!(r#"{{"location": "eastus", "tags": {{"pad": "{}"}}}}"#, "x".repeat(2000));
    refused(&env, "PUT", &path, &big, 413, "compute_body_too_large").await;
    // Without Content-Length (chunked): read up to the limit, then refused.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        big.as_bytes().chunks(300).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let rsp = env
        .client
        .put(env.url(&path))
        .bearer_auth(token(&env))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_rejected(rsp, 413, "compute_body_too_large").await;
    // A small body elsewhere still streams: the limit is for inspected requests only.
    passes(&env, "PUT", &rg("Microsoft.Storage/storageAccounts/st1"), &big).await;
    // Half a body, then nothing: refused once the timeout passes.
    let mut tls = support::raw::connect(env.addr, &env.pki.ca_pem, &[b"http/1.1"]).await;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"location\": \"eastus\", ",
        token(&env)
    );
    let before = env.upstream.hits();
    let started = Instant::now();
    tls.write_all(head.as_bytes()).await.unwrap();
    let answer = support::raw::read_head(&mut tls).await;
    assert_eq!(answer.status(), Some(400), "{}", answer.text());
    assert!(answer.text().contains("compute_body_timeout"), "{}", answer.text());
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(env.upstream.hits(), before, "the upstream saw part of a request");
}

#[tokio::test]
async fn step_up_instead_of_a_refusal() {
    let env = arm_with("", r#"auth_context_id = "c2""#).await;
    let path = rg(VM_PATH);
    let gpu = vm("Standard_ND96asr_v4", "eastus");
    let capable = env.idp.aobo().claim("aud", ARM_AUDIENCE).claim("xms_cc", vec!["cp1"]).mint();
    let rsp = send_as(&env, "PUT", &path, &gpu, &capable).await;
    let challenge = assert_rejected(rsp, 401, "compute_abuse_suspected").await.expect("a claims challenge");
    assert!(challenge.contains(r#"error="insufficient_claims""#), "{challenge}");
    assert_eq!(env.upstream.hits(), 0);
    // Not capable: the plain refusal.
    let rsp = send(&env, "PUT", &path, &gpu).await;
    assert_rejected(rsp, 403, "compute_abuse_suspected").await;
    // Stepped up: the context vouches for the request.
    let stepped =
        env.idp.aobo().claim("aud", ARM_AUDIENCE).claim("xms_cc", vec!["cp1"]).claim("acrs", vec!["c2"]).mint();
    let rsp = send_as(&env, "PUT", &path, &gpu, &stepped).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.bytes().await.unwrap(), gpu.as_bytes());
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="gpu",route="arm",verdict="allow"}"#).await, 1.0);
}

#[test]
fn only_arm_routes_take_the_rule_and_bad_values_name_their_key() {
    let config = |route: &str, guard: &str| {
        format!(
            "[[routes]]\nname = \"r\"\nupstream = \"https://127.0.0.1:1\"\n{route}\n[routes.compute_guard]\n{guard}\n"
        )
    };
    let arm_route = format!("audiences = [\"{ARM_AUDIENCE}\"]");
    let err =
        |route: &str, guard: &str| mfagate::config::Config::from_toml(&config(route, guard)).unwrap_err().to_string();
    assert!(err("audiences = [\"https://graph.microsoft.com\"]", "").contains("routes[0].compute_guard"));
    assert!(err(&arm_route, "max_vcpus = 0").contains("routes[0].compute_guard.max_vcpus"));
    assert!(err(&arm_route, "families = [\"N C\"]").contains("routes[0].compute_guard.families[0]"));
    assert!(err(&arm_route, "uninspectable = \"maybe\"").contains("routes[0].compute_guard.uninspectable"));
    assert!(err(&arm_route, "inspect_body_limit = \"1TiB\"").contains("routes[0].compute_guard.inspect_body_limit"));
    assert!(err(&arm_route, "inspect_body_timeout = \"1h\"").contains("routes[0].compute_guard.inspect_body_timeout"));
    assert!(err(&arm_route, "max_vcpu = 3").contains("max_vcpu"));
    mfagate::config::Config::from_toml(&config(&arm_route, "families = [\"nc\", \"ND\"]\nmax_vcpus = 128")).unwrap();
}

const BIN: &str = env!("CARGO_BIN_EXE_mfagate");

async fn mfagate(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(BIN).args(args).env_remove("MFAGATE_CONFIG").output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap(), text)
}

#[tokio::test]
async fn report_lists_flagged_requests_and_replay_re_decides_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let audit = format!("[audit]\nsink = \"file\"\npath = \"{}\"\n", log.display());
    let staged = "rule_modes = { compute_guard = \"report-only\" }";
    let env = TestEnv::setup()
        .route(r#"path_prefix = "/v1""#)
        .more_routes(&format!(
            "[[routes]]\nname = \"arm\"\npath_prefix = \"/\"\nupstream = \"@UPSTREAM@\"\nupstream_ca = \"@CA@\"\naudiences = [\"{ARM_AUDIENCE}\"]\n{staged}\n[routes.compute_guard]\n{audit}"
        ))
        .start()
        .await;
    passes(&env, "PUT", &rg(VM_PATH), &vm("Standard_ND96asr_v4", "eastus")).await;
    let quota = format!(
        "{SUB}/providers/Microsoft.Compute/locations/eastus/providers/Microsoft.Quota/quotas/standardNDSFamily?api-version=2023-02-01"
    );
    passes(&env, "PUT", &quota, r#"{"properties": {"limit": {"limitObjectType": "LimitValue", "value": 960}}}"#).await;
    passes(&env, "PUT", &rg(VM_PATH), &vm("Standard_D2s_v5", "eastus")).await;
    support::audit_lines(&log, 3).await;
    let log_path = log.to_str().unwrap();

    let (code, out) = mfagate(&["report", "--format", "json", log_path]).await;
    assert_eq!(code, 2, "flagged compute is worth a non-zero exit: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = report["compute"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    let row = &rows[0];
    assert_eq!(row["tenantId"], support::idp::OTHER_TID);
    assert_eq!(row["objectId"], "5d9c3c1a-0b7e-4f3a-9d62-8e1f2a3b4c5d");
    assert_eq!(row["applicationId"], support::idp::SAM_APP);
    assert_eq!(row["decision"], "would_deny");
    assert_eq!(row["kinds"], serde_json::json!(["gpu", "quota", "vcpus"]));
    assert_eq!(row["sizes"], serde_json::json!(["Standard_ND96asr_v4"]));
    assert_eq!(row["count"], 2);
    let (_, text) = mfagate(&["report", log_path]).await;
    assert!(text.contains("Azure fraud: compute requests flagged"), "{text}");
    assert!(text.contains("would_deny gpu,quota,vcpus x2"), "{text}");
    let (_, csv) = mfagate(&["report", "--format", "csv", "--table", "compute", log_path]).await;
    assert!(csv.starts_with("tenantId,objectId,applicationId,decision,kinds,"), "{csv}");
    assert!(csv.contains(",would_deny,gpu quota vcpus,Standard_ND96asr_v4,eastus,"), "{csv}");
    let (_, html) = mfagate(&["report", "--format", "html", log_path]).await;
    assert!(html.contains("<h2>Azure fraud: compute requests flagged</h2>"), "{html}");
    assert!(html.contains("Standard_ND96asr_v4"));

    // Enforcing the rule would deny both; without the rule, nothing changes.
    let candidate = |name: &str, text: String| support::write(dir.path(), name, &text).to_str().unwrap().to_string();
    let base = env.config_toml.replace(&audit, "");
    let enforce = candidate("enforce.toml", base.replace(staged, ""));
    let (code, out) = mfagate(&["replay", "--config", &enforce, log_path]).await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out.matches("would_deny (compute_abuse_suspected) -> deny (compute_abuse_suspected)").count(),
        2,
        "{out}"
    );
    let off = candidate("off.toml", base.replace("[routes.compute_guard]\n", "").replace(staged, ""));
    let (code, out) = mfagate(&["replay", "--config", &off, log_path]).await;
    assert_eq!(code, 0, "{out}");
}

const ND_PROPERTIES: &str = r#"{"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}}"#;

fn nd_resource(properties: &str) -> String {
    format!(
        r#"{{"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-09-01", "name": "vm", "location": "eastus", "properties": {properties}}}"#
    )
}

/// A deployment whose template declares `declared` and is given `given`.
fn deployment_of(resources: &str, declared: &str, given: &str) -> String {
    format!(
        r#"{{"properties": {{"mode": "Incremental", "parameters": {{{given}}}, "template": {{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "parameters": {{{declared}}}, "resources": [{resources}]}}}}}}"#
    )
}

#[tokio::test]
async fn object_and_array_parameters_are_resolved() {
    let env = arm("").await;
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let whole_properties = deployment_of(
        &nd_resource(r#""[parameters('p')]""#),
        r#""p": {"type": "object"}"#,
        &format!(r#""p": {{"value": {ND_PROPERTIES}}}"#),
    );
    refused(&env, "PUT", &path, &whole_properties, 403, "compute_abuse_suspected").await;
    let pools = deployment_of(
        r#"{"type": "Microsoft.ContainerService/managedClusters", "apiVersion": "2024-02-01", "name": "aks", "location": "eastus", "properties": {"dnsPrefix": "aks", "agentPoolProfiles": "[parameters('pools')]"}}"#,
        r#""pools": {"type": "array"}"#,
        r#""pools": {"value": [{"name": "gpu", "vmSize": "Standard_ND96asr_v4", "count": 100, "mode": "System"}]}"#,
    );
    refused(&env, "PUT", &path, &pools, 403, "compute_abuse_suspected").await;
    let nested = deployment_of(
        r#"{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner", "properties": {"mode": "Incremental", "template": "[parameters('t')]"}}"#,
        r#""t": {"type": "object"}"#,
        &format!(r#""t": {{"value": {{"resources": [{}]}}}}"#, nd_resource(ND_PROPERTIES)),
    );
    refused(&env, "PUT", &path, &nested, 403, "compute_abuse_suspected").await;
    // A small VM by an object parameter passes.
    let small = deployment_of(
        &nd_resource(r#""[parameters('p')]""#),
        r#""p": {"type": "object"}"#,
        r#""p": {"value": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}"#,
    );
    passes(&env, "PUT", &path, &small).await;
}

#[tokio::test]
async fn batch_urls_are_read_as_the_gateway_normalises_them() {
    let env = arm("").await;
    let gpu: serde_json::Value = serde_json::from_str(&vm("Standard_ND96asr_v4", "eastus")).unwrap();
    let batch = |url: &str, method: &str, content: &serde_json::Value| {
        serde_json::json!({"requests": [{"httpMethod": method, "name": "r1", "url": url, "content": content}]})
            .to_string()
    };
    let base = format!("{SUB}/resourceGroups/rg-prod/providers/");
    let plain = format!("{base}Microsoft.Compute/virtualMachines/vm1?api-version=2024-03-01");
    for url in [
        format!("{base}Microsoft.Compute/virtual%4Dachines/vm1?api-version=2024-03-01"),
        format!("{base}Microsoft.Compute/x/../virtualMachines/vm1?api-version=2024-03-01"),
        format!("{base}Microsoft.Compute%2FvirtualMachines/vm1?api-version=2024-03-01"),
        plain.replace('/', "\\"),
        plain.replace("providers", "pro%76iders"),
        plain.replace("virtualMachines", "virtualMachines%252e"),
    ] {
        refused(
            &env,
            "POST",
            "/batch?api-version=2020-06-01",
            &batch(&url, "PUT", &gpu),
            403,
            "compute_abuse_suspected",
        )
        .await;
    }
    let inner: serde_json::Value = serde_json::from_str(&batch(&plain, "PUT", &gpu)).unwrap();
    let nested = batch("/%62atch?api-version=2020-06-01", "POST", &inner);
    refused(&env, "POST", "/batch?api-version=2020-06-01", &nested, 403, "compute_abuse_suspected").await;
    // A wrapped request that is not compute still passes.
    let storage = batch(&format!("{base}Microsoft.Storage/storageAccounts/st1?api-version=2023-01-01"), "PUT", &gpu);
    passes(&env, "POST", "/batch?api-version=2020-06-01", &storage).await;
}

#[tokio::test]
async fn a_parameters_link_leaves_template_defaults_untrusted() {
    let env = arm("").await;
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let linked_parameters = format!(
        r#"{{"properties": {{"mode": "Incremental", "parametersLink": {{"uri": "https://example.com/azuredeploy.parameters.json"}}, "template": {{"parameters": {{"vmSize": {{"type": "string", "defaultValue": "Standard_D2s_v5"}}}}, "resources": [{}]}}}}}}"#,
        nd_resource(r#"{"hardwareProfile": {"vmSize": "[parameters('vmSize')]"}}"#)
    );
    refused(&env, "PUT", &path, &linked_parameters, 403, "compute_abuse_suspected").await;
}

#[tokio::test]
async fn template_shapes_not_read_are_uninspectable() {
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let json_properties = deployment_of(
        &nd_resource(r#""[json('{\"hardwareProfile\":{\"vmSize\":\"Standard_ND96asr_v4\"}}')]""#),
        "",
        "",
    );
    let create_object = deployment_of(
        &nd_resource(r#"{"hardwareProfile": "[createObject('vmSize', 'Standard_ND96asr_v4')]"}"#),
        "",
        "",
    );
    let property_copy = deployment_of(
        r#"{"type": "Microsoft.ContainerService/managedClusters", "apiVersion": "2024-02-01", "name": "aks", "location": "eastus", "properties": {"dnsPrefix": "aks", "copy": [{"name": "agentPoolProfiles", "count": "[parameters('n')]", "input": {"name": "gpu", "vmSize": "Standard_ND96asr_v4", "count": 100, "mode": "System"}}]}}"#,
        r#""n": {"type": "int", "defaultValue": 1}"#,
        "",
    );
    let counted_by_expression = deployment_of(
        &format!(
            r#"{{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "[concat('n', copyIndex())]", "copy": {{"name": "c", "count": "[int('50')]"}}, "properties": {{"mode": "Incremental", "template": {{"resources": [{}]}}}}}}"#,
            nd_resource(r#"{"hardwareProfile": {"vmSize": "Standard_D48s_v5"}}"#)
        ),
        "",
        "",
    );
    let env = arm(r#"uninspectable = "deny""#).await;
    for body in [&json_properties, &create_object, &property_copy, &counted_by_expression] {
        refused(&env, "PUT", &path, body, 403, "compute_abuse_suspected").await;
    }
    // Recorded (the default "flag"): forwarded, and counted as uninspectable.
    let env = arm("").await;
    passes(&env, "PUT", &path, &json_properties).await;
    let recorded = r#"mfagate_compute_guard_total{kind="uninspectable",route="arm",verdict="recorded"}"#;
    assert_eq!(env.metric(recorded).await, 1.0);
}

#[tokio::test]
async fn a_resource_named_providers_hides_nothing() {
    let env = arm("").await;
    let gpu = vm("Standard_ND96asr_v4", "eastus");
    refused(&env, "PUT", &rg("Microsoft.Compute/virtualMachines/providers"), &gpu, 403, "compute_abuse_suspected")
        .await;
    let named = rg("Microsoft.Resources/deployments/providers");
    let body = deployment_of(&nd_resource(ND_PROPERTIES), "", "");
    refused(&env, "PUT", &named, &body, 403, "compute_abuse_suspected").await;
    // Deployments at the legacy paths, the tenant and a management group.
    for path in [
        format!("{SUB}/resourcegroups/rg-prod/deployments/d1?api-version=2021-04-01"),
        format!("{SUB}/deployments/d1?api-version=2021-04-01"),
        "/providers/Microsoft.Resources/deployments/d1?api-version=2021-04-01".to_string(),
        "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Resources/deployments/d1?api-version=2021-04-01".to_string(),
    ] {
        refused(&env, "PUT", &path, &body, 403, "compute_abuse_suspected").await;
    }
}

#[tokio::test]
async fn confidential_and_accelerated_sizes_are_gpu() {
    let env = arm("").await;
    let path = rg(VM_PATH);
    refused(&env, "PUT", &path, &vm("Standard_NCC40ads_H100_v5", "eastus"), 403, "compute_abuse_suspected").await;
    // A GPU by its accelerator whatever the family.
    refused(&env, "PUT", &path, &vm("Standard_Q8as_A100_v1", "eastus"), 403, "compute_abuse_suspected").await;
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="gpu",route="arm",verdict="deny"}"#).await, 2.0);
}

#[tokio::test]
async fn old_size_names_count_their_real_vcpus() {
    let env = arm("").await;
    let vmss = rg("Microsoft.Compute/virtualMachineScaleSets/ss1");
    let scale =
        |size: &str, n: u32| format!(r#"{{"location": "eastus", "sku": {{"name": "{size}", "capacity": {n}}}}}"#);
    // 12 × 16, 4 × 20, 3 × 32 and 9 × 8 vCPUs.
    for (size, n) in [("Standard_DS5_v2", 12), ("Standard_D15_v2", 4), ("Standard_GS5", 3), ("Standard_A11", 5)] {
        refused(&env, "PUT", &vmss, &scale(size, n), 403, "compute_abuse_suspected").await;
    }
    refused(&env, "PUT", &vmss, &scale("Standard_D14_v2_Promo", 5), 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &vmss, &scale("Standard_DS2_v2", 4)).await;
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="vcpus",route="arm",verdict="deny"}"#).await, 5.0);
}

#[tokio::test]
async fn property_names_fold_as_arm_folds_them() {
    let env = arm("").await;
    let path = rg(VM_PATH);
    let gpu = r#"{"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "Standard_ND96asr_v4"}}}"#;
    // U+017F (long s) is S and U+0131 (dotless i) is I to ARM.
    refused(&env, "PUT", &path, &gpu.replace("vmSize", "vm\u{17f}ize"), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &path, &gpu.replace("properties", "propert\u{131}es"), 403, "compute_abuse_suspected").await;
    let twice =
        r#"{"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5", "vm\u017fize": "Standard_ND96asr_v4"}}}"#;
    refused(&env, "PUT", &path, twice, 403, "compute_abuse_suspected").await;
    // U+212A (Kelvin) has no simple upper case but itself: not `k` to ARM.
    let kelvin = r#"{"location": "eastus", "sku": {"name": "Standard_D2s_v5", "capacity": 1}, "s\u212au": {"name": "Standard_ND96asr_v4"}}"#;
    passes(&env, "PUT", &rg("Microsoft.Compute/virtualMachineScaleSets/ss1"), kelvin).await;
}

#[test]
fn every_shipped_arm_route_reads_compute() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = mfagate::config::Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for route in &config.routes {
            let hosts = route.host.as_deref().into_iter().chain([route.upstream.authority.host()]);
            if route.policy.kind == mfagate::policy::RouteKind::Aobo
                && mfagate::error::ErrorFormat::is_arm(hosts, &route.audiences)
            {
                assert!(
                    route.policy.compute_guard.is_some(),
                    "{}: route {} has no compute_guard",
                    path.display(),
                    route.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "{checked} ARM routes shipped");
}

#[tokio::test]
async fn scale_changes_and_sizes_read_elsewhere() {
    let env = arm("").await;
    // The size is the existing resource's: at least one vCPU an instance, and recorded.
    let vmss = rg("Microsoft.Compute/virtualMachineScaleSets/ss1");
    passes(&env, "PATCH", &vmss, r#"{"sku": {"capacity": 60}}"#).await;
    let recorded = r#"mfagate_compute_guard_total{kind="uninspectable",route="arm",verdict="recorded"}"#;
    assert_eq!(env.metric(recorded).await, 1.0);
    let ml = rg("Microsoft.MachineLearningServices/workspaces/ws1/computes/c1");
    refused(
        &env,
        "PATCH",
        &ml,
        r#"{"properties": {"properties": {"scaleSettings": {"maxNodeCount": 1000}}}}"#,
        403,
        "compute_abuse_suspected",
    )
    .await;
    let batch_pool = rg("Microsoft.Batch/batchAccounts/acct1/pools/pool1");
    refused(
        &env,
        "PATCH",
        &batch_pool,
        r#"{"properties": {"scaleSettings": {"fixedScale": {"targetDedicatedNodes": 1000}}}}"#,
        403,
        "compute_abuse_suspected",
    )
    .await;
    refused(&env, "PUT", &ml, r#"{"location": "eastus", "properties": {"computeType": "AKS", "properties": {"agentCount": 100, "agentVmSize": "Standard_NC24ads_A100_v4"}}}"#, 403, "compute_abuse_suspected").await;
    let pool = rg("Microsoft.ContainerService/managedClusters/aks1/agentPools/vms");
    refused(&env, "PUT", &pool, r#"{"properties": {"type": "VirtualMachines", "mode": "User", "virtualMachinesProfile": {"scale": {"manual": [{"size": "Standard_ND96asr_v4", "count": 10}]}}}}"#, 403, "compute_abuse_suspected").await;
    let mix = r#"{"location": "eastus", "sku": {"name": "Mix", "capacity": 2}, "properties": {"skuProfile": {"vmSizes": [{"name": "Standard_D2s_v5"}, {"name": "Standard_NC24ads_A100_v4"}], "allocationStrategy": "LowestPrice"}}}"#;
    refused(&env, "PUT", &vmss, mix, 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &vmss, &mix.replace("Standard_NC24ads_A100_v4", "Standard_D2as_v5")).await;
    // Node autoprovisioning picks its own sizes: recorded.
    let aks = rg("Microsoft.ContainerService/managedClusters/aks1");
    passes(&env, "PUT", &aks, r#"{"location": "eastus", "properties": {"dnsPrefix": "c", "nodeProvisioningProfile": {"mode": "Auto"}, "agentPoolProfiles": [{"name": "sys", "vmSize": "Standard_D2s_v5", "count": 1, "mode": "System"}]}}"#).await;
    assert_eq!(env.metric(recorded).await, 4.0);
}

#[tokio::test]
async fn more_types_that_create_compute_or_quota() {
    let env = arm("").await;
    let nd = nd_resource(ND_PROPERTIES);
    let stack = format!(
        r#"{{"properties": {{"template": {{"resources": [{nd}]}}, "actionOnUnmanage": {{"resources": "detach"}}, "denySettings": {{"mode": "none"}}}}}}"#
    );
    refused(&env, "PUT", &rg("Microsoft.Resources/deploymentStacks/st1"), &stack, 403, "compute_abuse_suspected").await;
    let instance = rg("Microsoft.Compute/virtualMachineScaleSets/ss1/virtualMachines/0");
    refused(&env, "PUT", &instance, &vm("Standard_ND96asr_v4", "eastus"), 403, "compute_abuse_suspected").await;
    let reservation = rg("Microsoft.Compute/capacityReservationGroups/g1/capacityReservations/r1");
    refused(
        &env,
        "PUT",
        &reservation,
        r#"{"location": "eastus", "sku": {"name": "Standard_ND96asr_v4", "capacity": 20}}"#,
        403,
        "compute_abuse_suspected",
    )
    .await;
    let online = rg("Microsoft.MachineLearningServices/workspaces/ws1/onlineEndpoints/e1/deployments/d1");
    refused(&env, "PUT", &online, r#"{"location": "eastus", "sku": {"name": "Default", "capacity": 20}, "properties": {"endpointComputeType": "Managed", "instanceType": "Standard_NC24ads_A100_v4"}}"#, 403, "compute_abuse_suspected").await;
    let apps = rg("Microsoft.App/managedEnvironments/env1");
    refused(&env, "PUT", &apps, r#"{"location": "eastus", "properties": {"workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}, {"name": "gpu", "workloadProfileType": "NC24-A100", "minimumCount": 0, "maximumCount": 50}]}}"#, 403, "compute_abuse_suspected").await;
    passes(&env, "PUT", &apps, r#"{"location": "eastus", "properties": {"workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}]}}"#).await;
    let group = "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Quota/groupQuotas/g1/resourceProviders/Microsoft.Compute/groupQuotaLimits/eastus?api-version=2025-03-01";
    refused(
        &env,
        "PATCH",
        group,
        r#"{"properties": {"value": [{"properties": {"resourceName": "standardNDSv2Family", "limit": 1000}}]}}"#,
        403,
        "compute_abuse_suspected",
    )
    .await;
    let ticket = format!("{SUB}/providers/Microsoft.Support/supportTickets/t2?api-version=2024-04-01");
    refused(&env, "PUT", &ticket, r#"{"properties": {"serviceId": "/providers/Microsoft.Support/services/06bfd9d3-516b-d5c6-5802-169c800dec89", "problemClassificationId": "/providers/Microsoft.Support/services/06bfd9d3-516b-d5c6-5802-169c800dec89/problemClassifications/599a339a-a959-d783-24fc-81a42d3fd5fb", "title": "NDv4 quota", "description": "please raise", "severity": "minimal"}}"#, 403, "compute_abuse_suspected").await;
}

#[tokio::test]
async fn a_verified_token_without_oid_is_flagged_regions() {
    let env = arm("").await;
    let no_oid = env.idp.aobo().claim("aud", ARM_AUDIENCE).without("oid").mint();
    let before = env.upstream.hits();
    let rsp = send_as(&env, "PUT", &rg(VM_PATH), &vm("Standard_D2s_v5", "eastus"), &no_oid).await;
    assert_rejected(rsp, 403, "compute_abuse_suspected").await;
    assert_eq!(env.upstream.hits(), before);
    // Compute without a region known (an expression) is not counted, and passes.
    let rsp = send_as(&env, "PUT", &rg(VM_PATH), &vm("Standard_D2s_v5", "[resourceGroup().location]"), &no_oid).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(env.metric(r#"mfagate_compute_guard_total{kind="regions",route="arm",verdict="deny"}"#).await, 1.0);
}

/// A nested deployment with its own scope whose parameters are written as
/// an expression: resolved when they are a parameter, else uninspectable;
/// the nested template's defaults never stand in for them.
#[tokio::test]
async fn nested_parameters_written_as_expressions_are_not_skipped() {
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let nested = |scope: &str, parameters: &str| {
        format!(
            r#"{{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "n", "properties": {{"mode": "Incremental", "expressionEvaluationOptions": {{"scope": {scope}}}, "parameters": {parameters}, "template": {{"parameters": {{"vmSize": {{"type": "string", "defaultValue": "Standard_D2s_v5"}}}}, "resources": [{}]}}}}}}"#,
            nd_resource(r#"{"hardwareProfile": {"vmSize": "[parameters('vmSize')]"}}"#)
        )
    };
    let by_json =
        deployment_of(&nested(r#""inner""#, r#""[json('{\"vmSize\":{\"value\":\"Standard_ND96asr_v4\"}}')]""#), "", "");
    let by_parameter = deployment_of(
        &nested(r#""inner""#, r#""[parameters('np')]""#),
        r#""np": {"type": "object"}"#,
        r#""np": {"value": {"vmSize": {"value": "Standard_ND96asr_v4"}}}"#,
    );
    let given = r#"{"vmSize": {"value": "Standard_ND96asr_v4"}}"#;
    let odd_scopes = [r#"" inner""#, r#""inner ""#, "2", r#""2""#].map(|s| deployment_of(&nested(s, given), "", ""));
    let env = arm("").await;
    refused(&env, "PUT", &path, &by_parameter, 403, "compute_abuse_suspected").await;
    refused(
        &env,
        "PUT",
        &path,
        &deployment_of(&nested(r#""\u0131nner""#, given), "", ""),
        403,
        "compute_abuse_suspected",
    )
    .await;
    let env = arm(r#"uninspectable = "deny""#).await;
    refused(&env, "PUT", &path, &by_json, 403, "compute_abuse_suspected").await;
    for body in &odd_scopes {
        refused(&env, "PUT", &path, body, 403, "compute_abuse_suspected").await;
    }
    passes(
        &env,
        "PUT",
        &path,
        &deployment_of(&nested(r#""inner""#, r#"{"vmSize": {"value": "Standard_D4s_v5"}}"#), "", ""),
    )
    .await;
}

/// A resource type written as an expression that is not resolved, with an
/// empty segment, or too long to be a type is uninspectable, not skipped;
/// and a long parent type is not copied into each child's (judging stays
/// linear in the body).
#[tokio::test]
async fn types_that_cannot_be_read_are_uninspectable() {
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let typed = |t: &str| {
        deployment_of(
            &format!(
                r#"{{"type": "{t}", "apiVersion": "2023-03-01", "name": "gpu1", "location": "eastus", "properties": {{"hardwareProfile": {{"vmSize": "Standard_ND96asr_v4"}}}}}}"#
            ),
            "",
            "",
        )
    };
    let env = arm(r#"uninspectable = "deny""#).await;
    for t in [
        "[concat('Microsoft.Compute/','virtualMachines')]",
        "[variables('t')[0]]",
        "Microsoft.Compute/virtualMachines/",
    ] {
        refused(&env, "PUT", &path, &typed(t), 403, "compute_abuse_suspected").await;
    }
    let kids = vec![r#"{"type":"a"}"#; 40_000].join(",");
    let long = format!(
        r#"{{"properties":{{"mode":"Incremental","template":{{"resources":[{{"type":"{}","name":"p","resources":[{kids}]}}]}}}}}}"#,
        "A".repeat(500_000)
    );
    let started = Instant::now();
    refused(&env, "PUT", &path, &long, 403, "compute_abuse_suspected").await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// Template language 2.0 `existing` resources are referred to, not
/// created: an extension on an existing GPU VM is forwarded byte for byte;
/// `existing` in a 1.0 template means nothing, and any value but a
/// boolean is uninspectable.
#[tokio::test]
async fn existing_resources_are_not_judged_as_created() {
    let path = rg("Microsoft.Resources/deployments/deploy1");
    let template = |version: &str, existing: &str| {
        format!(
            r#"{{"properties": {{"mode": "Incremental", "template": {{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "languageVersion": "{version}", "contentVersion": "1.0.0.0", "resources": {{"gpu": {{"existing": {existing}, "type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01", "name": "gpu1", "properties": {{"hardwareProfile": {{"vmSize": "Standard_ND96asr_v4"}}}}}}, "monitor": {{"type": "Microsoft.Compute/virtualMachines/extensions", "apiVersion": "2023-03-01", "name": "gpu1/AzureMonitorLinuxAgent", "location": "eastus", "dependsOn": ["gpu"], "properties": {{"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent", "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": true}}}}}}}}}}}}"#
        )
    };
    let env = arm(r#"uninspectable = "deny""#).await;
    passes(&env, "PUT", &path, &template("2.0", "true")).await;
    refused(&env, "PUT", &path, &template("2.0", "false"), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &path, &template("1.0", "true"), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &path, &template("2.0", r#""true""#), 403, "compute_abuse_suspected").await;
    refused(&env, "PUT", &path, &template("2.0", r#""[true()]""#), 403, "compute_abuse_suspected").await;
}

/// Free-form maps may repeat a name in another case: forwarded byte for
/// byte; a name read, in two spellings, is still refused.
#[tokio::test]
async fn free_form_maps_may_repeat_names_by_case() {
    let env = arm("").await;
    let pool = rg("Microsoft.ContainerService/managedClusters/aks1/agentPools/user");
    let labels = r#"{"properties":{"count":2,"vmSize":"Standard_D4s_v5","mode":"User","nodeLabels":{"app":"web","App":"legacy"}}}"#;
    passes(&env, "PUT", &pool, labels).await;
    let tags = r#"{"location":"eastus","tags":{"Env":"a","env":"b"},"properties":{"hardwareProfile":{"vmSize":"Standard_D2s_v5"}}}"#;
    passes(&env, "PUT", &rg(VM_PATH), tags).await;
    let twice = r#"{"properties":{"count":2,"vmSize":"Standard_D4s_v5","VMSIZE":"Standard_ND96asr_v4"}}"#;
    refused(&env, "PUT", &pool, twice, 403, "compute_abuse_suspected").await;
    let exact = r#"{"location":"eastus","tags":{"Env":"a","Env":"b"},"properties":{"hardwareProfile":{"vmSize":"Standard_D2s_v5"}}}"#;
    refused(&env, "PUT", &rg(VM_PATH), exact, 403, "compute_abuse_suspected").await;
}
