use super::*;

const TID: &str = "df845f1a-1111-2222-3333-444455556666";

fn checks() -> ClaimChecks {
    ClaimChecks {
        issuers: vec![
            IssuerTemplate::parse("https://sts.windows.net/{tenantid}/").unwrap(),
            IssuerTemplate::parse("https://login.microsoftonline.com/{tenantid}/v2.0").unwrap(),
        ],
        tenants: HashSet::new(),
        skew_secs: 60,
    }
}

fn claims(json: serde_json::Value) -> Claims {
    Claims::parse(json.to_string().as_bytes()).unwrap()
}

fn base() -> serde_json::Value {
    serde_json::json!({
        "iss": format!("https://sts.windows.net/{TID}/"),
        "aud": "https://api.partnercenter.microsoft.com",
        "exp": 2_000, "nbf": 1_000, "tid": TID,
    })
}

fn run(json: serde_json::Value, now: i64) -> Result<(), &'static str> {
    let aud = vec!["https://api.partnercenter.microsoft.com".to_string()];
    checks().check(&claims(json), &aud, now).map_err(|e| e.reason().as_str())
}

fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = base();
    v[key] = value;
    v
}

#[test]
fn accepts_within_lifetime_and_skew() {
    assert_eq!(run(base(), 1_500), Ok(()));
    assert_eq!(run(base(), 2_059), Ok(()));
    assert_eq!(run(base(), 940), Ok(()));
}

#[test]
fn lifetime_bounds() {
    assert_eq!(run(base(), 2_060), Err("expired"));
    assert_eq!(run(base(), 939), Err("not_yet_valid"));
    let mut no_exp = base();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(run(no_exp, 1_500), Err("malformed_token"));
}

#[test]
fn issuer_must_carry_the_tokens_own_tenant() {
    let other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    assert_eq!(run(with("iss", format!("https://sts.windows.net/{other}/").into()), 1_500), Err("bad_issuer"));
    assert_eq!(run(with("iss", "https://sts.windows.net/{tenantid}/".into()), 1_500), Err("bad_issuer"));
    assert_eq!(run(with("iss", "https://evil.example/".into()), 1_500), Err("bad_issuer"));
    assert_eq!(run(with("tid", "not-a-guid".into()), 1_500), Err("bad_issuer"));
    let v2 = with("iss", format!("https://login.microsoftonline.com/{TID}/v2.0").into());
    assert_eq!(run(v2, 1_500), Ok(()));
    let mut no_iss = base();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_eq!(run(no_iss, 1_500), Err("bad_issuer"));
}

#[test]
fn audience_forms() {
    assert_eq!(run(with("aud", "https://api.partnercenter.microsoft.com/".into()), 1_500), Ok(()));
    assert_eq!(run(with("aud", serde_json::json!(["x", "https://api.partnercenter.microsoft.com"])), 1_500), Ok(()));
    assert_eq!(run(with("aud", "https://graph.microsoft.com".into()), 1_500), Err("bad_audience"));
    assert_eq!(run(with("aud", "https://api.partnercenter.microsoft.com.evil".into()), 1_500), Err("bad_audience"));
    let mut no_aud = base();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(run(no_aud, 1_500), Err("bad_audience"));
}

#[test]
fn audience_keys() {
    let pc = "https://api.partnercenter.microsoft.com";
    for same in [
        "https://api.partnercenter.microsoft.com",
        "https://api.partnercenter.microsoft.com/",
        "HTTPS://API.PartnerCenter.microsoft.com/",
        "Https://API.PARTNERCENTER.MICROSOFT.COM",
    ] {
        assert_eq!(audience_key(same), pc, "{same}");
    }
    let guid = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
    assert_eq!(audience_key("FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"), guid);
    assert_eq!(audience_key("fa3d9a0c-3FB0-42cc-9193-47C7ecd2edbd/"), guid);
    // Past the host, as written.
    assert_eq!(
        audience_key("HTTPS://API.PartnerCenter.microsoft.com/V1/"),
        "https://api.partnercenter.microsoft.com/V1"
    );
    assert_eq!(audience_key("https://Contoso.example/API?Q=1#F"), "https://contoso.example/API?Q=1#F");
    assert_eq!(audience_key("API://Contoso-Automation/Read"), "api://contoso-automation/Read");
    assert_eq!(audience_key("https://Host.example:8443/p"), "https://host.example:8443/p");
    // Not a URI, not a GUID: as written.
    for exact in ["Contoso-Automation", "urn:Contoso:App", "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbdX"] {
        assert_eq!(audience_key(exact), exact);
    }
    // One trailing slash, as Entra adds it; a second is part of the path.
    assert_eq!(audience_key("https://x.example//"), "https://x.example/");
}

#[test]
fn audiences_compare_by_key() {
    let check = |aud: serde_json::Value, accepted: &[&str]| {
        let accepted: Vec<String> = accepted.iter().map(|a| audience_key(a)).collect();
        checks().check(&claims(with("aud", aud)), &accepted, 1_500).map_err(|e| e.reason().as_str())
    };
    let pc = "https://api.partnercenter.microsoft.com";
    let guid = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
    assert_eq!(check("HTTPS://API.PartnerCenter.microsoft.com/".into(), &[pc]), Ok(()));
    assert_eq!(check("FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD".into(), &[guid]), Ok(()));
    assert_eq!(check(pc.into(), &["HTTPS://API.PARTNERCENTER.MICROSOFT.COM/"]), Ok(()));
    assert_eq!(check(guid.into(), &["FA3D9A0C-3FB0-42CC-9193-47C7ECD2EDBD"]), Ok(()));
    assert_eq!(check(serde_json::json!(["x", "HTTPS://api.partnercenter.microsoft.com"]), &[pc]), Ok(()));
    let v1 = "https://api.partnercenter.microsoft.com/v1";
    assert_eq!(check("https://api.partnercenter.microsoft.com/V1".into(), &[v1]), Err("bad_audience"));
    assert_eq!(check("HTTPS://API.PARTNERCENTER.MICROSOFT.COM/v1/".into(), &[v1]), Ok(()));
    assert_eq!(check("https://api.partnercenter.microsoft.com.evil".into(), &[pc]), Err("bad_audience"));
    assert_eq!(check("Contoso-App".into(), &["contoso-app"]), Err("bad_audience"));
}

#[test]
fn wrong_types_and_duplicates_are_malformed() {
    for payload in [
        r#"{"exp":"2000"}"#,
        r#"{"aud":["a",1]}"#,
        r#"{"amr":"mfa"}"#,
        r#"{"exp":1,"exp":2}"#,
        r#"{"amr":["pwd"],"amr":["mfa"]}"#,
        r#"[1]"#,
    ] {
        assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
    }
    assert_eq!(Claims::parse(br#"{"exp":1.9e3}"#).unwrap().exp, Some(1900));
    assert_eq!(Claims::parse(br#"{"exp":null,"nbf":18446744073709551615}"#).unwrap().exp, None);
    assert_eq!(Claims::parse(br#"{"nbf":18446744073709551615}"#).unwrap().nbf, Some(i64::MAX));
    for payload in [r#"{"exp":true}"#, r#"{"exp":[1]}"#, r#"{"aud":{"a":1}}"#, r#"{"aud":5}"#, r#"{"nbf":"1"}"#] {
        assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
    }
    for payload in [r#"{"wids":[1]}"#, r#"{"xms_cc":{"a":1}}"#, r#"{"wids":["a"],"wids":["b"]}"#] {
        assert!(Claims::parse(payload.as_bytes()).is_err(), "{payload}");
    }
}

#[test]
fn list_claims_accept_one_string() {
    let c =
        Claims::parse(br#"{"xms_cc":"cp1","wids":["62e90394-69f5-4237-9190-012177145e10"],"acrs":["c1"]}"#).unwrap();
    assert_eq!(c.xms_cc.as_deref(), Some(&["cp1".to_string()][..]));
    assert_eq!(c.wids.unwrap().len(), 1);
    assert_eq!(c.acrs.unwrap(), ["c1"]);
    let c = Claims::parse(br#"{"unique_name":"u@x","preferred_username":"p@x"}"#).unwrap();
    assert_eq!(c.user_name(), Some("u@x"));
}

#[test]
fn tenant_allowlist() {
    let mut c = checks();
    c.tenants.insert("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into());
    let aud = vec!["https://api.partnercenter.microsoft.com".to_string()];
    let r = c.check(&claims(base()), &aud, 1_500);
    assert_eq!(r.unwrap_err().reason().as_str(), "tenant_not_allowed");
    c.tenants.insert(TID.into());
    assert!(c.check(&claims(base()), &aud, 1_500).is_ok());
}

#[test]
fn guid_shape() {
    assert!(is_guid(TID));
    assert!(is_guid("DF845F1A-1111-2222-3333-444455556666"));
    assert!(!is_guid("df845f1a11112222333344445555666677"));
    assert!(!is_guid("df845f1a-1111-2222-3333-44445555666g"));
    assert!(!is_guid("../../../../etc/passwd-aaaaaaaaaaaaa"));
}
