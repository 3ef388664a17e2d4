use super::*;

#[test]
fn codes_are_unique_snake_case_and_parse_back() {
    let mut seen = std::collections::HashSet::new();
    for r in Reason::ALL {
        assert!(seen.insert(r.as_str()), "{}", r.as_str());
        assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!r.description().is_empty());
        assert!(!r.short().contains(['"', '\\']));
        assert_eq!(Reason::parse(r.as_str()), Some(r));
    }
    assert_eq!(Reason::parse("nope"), None);
}

#[test]
fn request_rules_are_unique_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for r in RequestRule::ALL {
        assert!(seen.insert(r.as_str()), "{}", r.as_str());
        assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(r.as_str().len() <= 32, "{} is not short", r.as_str());
        assert!(!r.sentence().is_empty());
    }
}

#[test]
fn only_credential_and_rule_failures_are_waivable() {
    for r in Reason::ALL {
        let expected = matches!(r.class(), Class::Credential | Class::Rule(_));
        assert_eq!(r.waivable(), expected, "{}", r.as_str());
    }
    for r in [
        Reason::NoRoute,
        Reason::BadRequest,
        Reason::AudienceHostMismatch,
        Reason::MisdirectedRequest,
        Reason::EgressDenied,
        Reason::TlsRequired,
        Reason::ProxyAuthRequired,
        Reason::RateLimited,
        Reason::Overloaded,
    ] {
        assert!(!r.waivable(), "{} must never be waived", r.as_str());
    }
}

#[test]
fn every_rule_has_a_reason() {
    for rule in Rule::ALL {
        assert!(Reason::ALL.iter().any(|r| r.rule() == Some(rule)), "{}", rule.as_str());
        assert_eq!(Rule::parse(rule.as_str()), Some(rule));
    }
    assert_eq!(Reason::PasswordGrant.rule(), Some(Rule::LegacyAuth));
    assert_eq!(Reason::MfaUnprovableV2.rule(), Some(Rule::Mfa));
    assert_eq!(Reason::Expired.rule(), None);
}
