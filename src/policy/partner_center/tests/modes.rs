//! Relationships over time, modes, schedules, exemptions, step-up, verdicts and classification.

use super::*;

#[test]
fn relationships_end_at_their_instant() {
    let policy = RoutePolicy { customers: customers(&[(CUSTOMER, APRIL, Status::Live)]), ..strict() };
    let at = |now| decide(&policy, &pc_sample(), Some(CUSTOMER), now);
    assert_eq!(at(APRIL - 1), Decision::Allow);
    assert_eq!(at(APRIL), Decision::Deny(Reason::RelationshipExpired.into()));
}

#[test]
fn modes_schedules_and_exemptions() {
    use Reason::*;
    let no_mfa = with(pc_sample(), json!({"amr": ["pwd"]}));
    let report = RoutePolicy { schedule: Schedule { mode: Mode::ReportOnly, enforce_after: None }, ..strict() };
    assert_eq!(decide(&report, &no_mfa, None, NOW), Decision::WouldDeny(MfaRequired));
    assert_eq!(decide(&report, &pc_sample(), None, NOW), Decision::Allow);

    let staged = RoutePolicy { schedule: Schedule { mode: Mode::Enforce, enforce_after: Some(APRIL) }, ..strict() };
    assert_eq!(decide(&staged, &no_mfa, None, APRIL - 1), Decision::WouldDeny(MfaRequired));
    assert_eq!(decide(&staged, &no_mfa, None, APRIL), Decision::Deny(MfaRequired.into()));

    // Per rule: the rule's own mode wins over the route's, both ways.
    let mut roles_reported =
        RoutePolicy { kind: RouteKind::Aobo, deny_roles: vec![GLOBAL_ADMINISTRATOR.into()], ..strict() };
    roles_reported.rule_modes[Rule::DenyRoles as usize] = Some(Mode::ReportOnly);
    let ga = with(aobo(), json!({"wids": [GLOBAL_ADMINISTRATOR]}));
    assert_eq!(decide(&roles_reported, &ga, None, NOW), Decision::WouldDeny(PrivilegedRole));
    // An enforcing rule that fails later still denies.
    let ga_no_mfa = with(ga.clone(), json!({"amr": ["pwd"]}));
    let mut mfa_reported = roles_reported.clone();
    mfa_reported.rule_modes[Rule::Mfa as usize] = Some(Mode::ReportOnly);
    mfa_reported.rule_modes[Rule::DenyRoles as usize] = None;
    assert_eq!(decide(&mfa_reported, &ga_no_mfa, None, NOW), Decision::Deny(PrivilegedRole.into()));
    let mut mfa_enforced = report.clone();
    mfa_enforced.rule_modes[Rule::Mfa as usize] = Some(Mode::Enforce);
    assert_eq!(decide(&mfa_enforced, &no_mfa, None, NOW), Decision::Deny(MfaRequired.into()));
    let public = with(pc_sample(), json!({"appidacr": "0"}));
    assert_eq!(decide(&mfa_enforced, &public, None, NOW), Decision::WouldDeny(PublicClient));
    assert_eq!(staged.mode(Some(Rule::Mfa), APRIL - 1), Mode::ReportOnly);
    assert_eq!(mfa_enforced.mode(None, NOW), Mode::ReportOnly);

    // Exemptions: active ones forward, expired ones do not, unverified claims never match.
    let exempt = RoutePolicy {
        exemptions: vec![
            Exemption { selector: Selector::Oid(OID.into()), reason: "break-glass".into(), expires: APRIL },
            Exemption { selector: Selector::AppId(PC_APP.into()), reason: "retired".into(), expires: NOW - 1 },
        ],
        ..strict()
    };
    let user = with(no_mfa.clone(), json!({"oid": OID}));
    let eval = |v: &Value, verified: bool, now: i64| {
        let c = claims(v);
        let e = evaluate(&exempt, &Input { claims: &c, verified, customer: None }, now);
        (e.decision, e.exemption.map(|x| x.reason.clone()), e.expired_exemption.map(|x| x.reason.clone()))
    };
    assert_eq!(
        eval(&user, true, NOW),
        (Decision::Exempt(MfaRequired), Some("break-glass".into()), Some("retired".into()))
    );
    assert_eq!(eval(&user, true, APRIL).0, Decision::Deny(MfaRequired.into()));
    assert_eq!(eval(&user, false, NOW).0, Decision::Deny(MfaRequired.into()));
    assert_eq!(eval(&no_mfa, true, NOW), (Decision::Deny(MfaRequired.into()), None, Some("retired".into())));
    let compliant = with(pc_sample(), json!({"oid": OID}));
    assert_eq!(eval(&compliant, true, NOW).0, Decision::Allow, "an exemption is only used when something failed");
    assert_eq!(eval(&compliant, true, NOW).1, None);
}

#[test]
fn step_up_is_offered_on_the_denial() {
    let policy = RoutePolicy { auth_context_id: Some("c1".into()), ..strict() };
    let capable = with(pc_sample(), json!({"amr": ["pwd"], "xms_cc": ["cp1"]}));
    let Decision::Deny(denial) = decide(&policy, &capable, None, NOW) else { panic!() };
    assert_eq!(denial.step_up, Some(StepUp { tenant: PARTNER.into(), auth_context: "c1".into() }));
    let Decision::Deny(denial) = decide(&policy, &with(capable.clone(), json!({"xms_cc": null})), None, NOW) else {
        panic!()
    };
    assert_eq!(denial.step_up, None);
    let report = RoutePolicy { schedule: Schedule { mode: Mode::ReportOnly, enforce_after: None }, ..policy };
    assert_eq!(decide(&report, &capable, None, NOW), Decision::WouldDeny(Reason::MfaRequired));
}

#[test]
fn every_rule_reports_a_verdict() {
    let gdap = RoutePolicy {
        kind: RouteKind::Aobo,
        partner_tenants: vec![PARTNER.into()],
        customers: customers(&[(CUSTOMER, APRIL, Status::Live)]),
        deny_roles: vec![GLOBAL_ADMINISTRATOR.into()],
        ..strict()
    };
    let c = claims(&aobo());
    let e = evaluate(&gdap, &Input { claims: &c, verified: true, customer: None }, NOW);
    let check = |r: Rule| e.checks[r as usize];
    assert_eq!(check(Rule::LegacyAuth), Check::Pass);
    assert_eq!(check(Rule::DeniedApps), Check::Off);
    assert_eq!(check(Rule::Mfa), Check::Pass);
    assert_eq!(check(Rule::CertificateClient), Check::Off);
    assert_eq!(check(Rule::PartnerTenants), Check::Pass);
    assert_eq!(check(Rule::Customers), Check::Pass);
    assert_eq!(check(Rule::DenyRoles), Check::Pass);
    let c = claims(&app_only());
    let e = evaluate(&gdap, &Input { claims: &c, verified: true, customer: None }, NOW);
    assert_eq!(e.checks[Rule::Mfa as usize], Check::Skip);
    assert_eq!(e.checks[Rule::PublicClients as usize], Check::Skip);
    assert_eq!(e.checks[Rule::PartnerTenants as usize], Check::Skip);
    assert_eq!(e.checks[Rule::Customers as usize], Check::Skip);
    for r in Rule::ALL {
        assert_eq!(Rule::parse(r.as_str()), Some(r));
    }
}

#[test]
fn classification() {
    let c = |v: Value| classify(&claims(&v));
    assert_eq!(c(pc_sample()), Principal::Delegated);
    assert_eq!(c(json!({"roles": ["x"]})), Principal::AppOnly);
    assert_eq!(c(json!({})), Principal::AppOnly);
    assert_eq!(c(json!({"idtyp": "app", "scp": "x"})), Principal::AppOnly);
    assert_eq!(ClientType::of(&Claims::parse(br#"{"azpacr":"2"}"#).unwrap()), ClientType::Certificate);
    assert_eq!(TokenVersion::of(&claims(&pc_sample())), TokenVersion::V1);
    assert_eq!(TokenVersion::of(&claims(&v2_sample())), TokenVersion::V2);
    assert_eq!(TokenVersion::of(&claims(&with(pc_sample(), json!({"ver": null})))), TokenVersion::V1);
    assert_eq!(gdap::tenancy(&claims(&pc_sample())), gdap::Tenancy::Home);
    assert_eq!(gdap::tenancy(&claims(&aobo())), gdap::Tenancy::Foreign { idp_tenant: Some(PARTNER) });
}
