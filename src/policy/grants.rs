//! The grant policy of a login route, judged on the token request itself
//! (read once, leniently, by `legacy::TokenRequest`): which grant types it
//! may ask for (`deny_grants`), whether a confidential client may
//! authenticate with a secret (`require_client_assertion`) and which
//! clients may ask at all (`allowed_token_clients`). Each failure is a
//! finding of its own rule, judged under that rule's mode.

use super::legacy::{ClientAuth, TokenRequest};
pub use super::route::GrantPolicy;
use super::route::PASSWORD;
use super::{Reason, Rule};

/// The grant policy's findings on `request`, in rule order. Only a request
/// that asks for a grant is a token request; the others (the authorize
/// endpoint, discovery) pass, but a secret sent to any of them counts.
pub fn check(policy: &GrantPolicy, request: &TokenRequest) -> Vec<(Rule, Reason)> {
    let mut found = Vec::new();
    let token_request = !request.grant_types.is_empty();
    if policy.deny_grants.iter().any(|g| g != PASSWORD && request.asks_for(g)) {
        found.push((Rule::DenyGrants, Reason::GrantNotAllowed));
    }
    if policy.require_client_assertion && request.client_auth() == ClientAuth::Secret {
        found.push((Rule::RequireClientAssertion, Reason::ClientSecretNotAllowed));
    }
    if token_request && !policy.allowed_token_clients.is_empty() {
        let mut ids = request.every_client_id().peekable();
        // Every client id must be allowed: a duplicate parameter or Basic
        // credentials could otherwise name another one than the one checked.
        let allowed = ids.peek().is_some()
            && ids.all(|id| policy.allowed_token_clients.iter().any(|a| a.eq_ignore_ascii_case(id.trim())));
        if !allowed {
            found.push((Rule::AllowedTokenClients, Reason::TokenClientNotAllowed));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21";
    const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

    fn request(body: &str) -> TokenRequest {
        TokenRequest::parse(None, Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
    }

    fn strict() -> GrantPolicy {
        GrantPolicy {
            deny_grants: vec![PASSWORD.into(), DEVICE_CODE.into()],
            require_client_assertion: true,
            allowed_token_clients: vec![APP.into()],
        }
    }

    fn reasons(policy: &GrantPolicy, body: &str) -> Vec<&'static str> {
        check(policy, &request(body)).into_iter().map(|(_, r)| r.as_str()).collect()
    }

    #[test]
    fn denied_grants_in_every_spelling() {
        let p = strict();
        for body in [
            "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
            "GRANT_TYPE=URN%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
            "grant_type=refresh_token&grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
            "grant%5Ftype=%20urn:ietf:params:oauth:grant-type:device_code%00&client_id=23ec45a3-5f8b-4c3d-9e1a-7b6c5d4e3f21",
        ] {
            assert_eq!(reasons(&p, body), ["grant_not_allowed"], "{body}");
        }
        // The v1 name of the device code grant is the grant, either way round.
        for body in
            [format!("grant_type=device_code&client_id={APP}"), format!("grant_type=%20DEVICE_CODE&client_id={APP}")]
        {
            assert_eq!(reasons(&p, &body), ["grant_not_allowed"], "{body}");
        }
        let short = GrantPolicy { deny_grants: vec!["device_code".into()], ..strict() };
        assert_eq!(reasons(&short, &format!("grant_type={DEVICE_CODE}&client_id={APP}")), ["grant_not_allowed"]);
        assert!(reasons(&p, &format!("grant_type=device_codes&client_id={APP}")).is_empty());
        // The password grant is password_grant's, not this rule's.
        assert!(reasons(&p, &format!("grant_type=password&client_id={APP}")).is_empty());
        assert!(reasons(&GrantPolicy::default(), &format!("grant_type={DEVICE_CODE}")).is_empty(), "off by default");
    }

    #[test]
    fn client_authentication() {
        let auth = |body: &str| request(body).client_auth();
        assert_eq!(auth("grant_type=client_credentials&client_secret=x"), ClientAuth::Secret);
        assert_eq!(auth("grant_type=client_credentials&Client_Secret="), ClientAuth::Secret, "present, even empty");
        let assertion = "grant_type=client_credentials&client_assertion=eyJ.x.y&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
        assert_eq!(auth(assertion), ClientAuth::Assertion);
        assert_eq!(auth(&format!("{assertion}&client_secret=x")), ClientAuth::Secret, "a secret beside it counts");
        assert_eq!(auth("client_assertion=eyJ.x.y&client_assertion_type=other"), ClientAuth::None);
        assert_eq!(auth("grant_type=authorization_code&code=x"), ClientAuth::None);
        let mut basic = request("grant_type=client_credentials");
        basic.basic_client = Some(APP.into());
        assert_eq!(basic.client_auth(), ClientAuth::Secret);
        let p = strict();
        assert_eq!(
            reasons(&p, &format!("grant_type=client_credentials&client_id={APP}&client_secret=s")),
            ["client_secret_not_allowed"]
        );
        assert!(reasons(&p, &format!("{assertion}&client_id={APP}")).is_empty());
    }

    #[test]
    fn every_client_id_must_be_allowed() {
        let p = strict();
        assert!(reasons(&p, &format!("grant_type=authorization_code&client_id={}", APP.to_uppercase())).is_empty());
        let other = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
        for body in [
            format!("grant_type=authorization_code&client_id={other}"),
            format!("grant_type=authorization_code&client_id={APP}&client_id={other}"),
            format!("grant_type=authorization_code&CLIENT_ID={other}&client_id={APP}"),
            "grant_type=authorization_code".to_string(),
        ] {
            assert_eq!(reasons(&p, &body), ["token_client_not_allowed"], "{body}");
        }
        let mut basic = request(&format!("grant_type=authorization_code&client_id={APP}"));
        basic.basic_client = Some(other.into());
        let lax = GrantPolicy { require_client_assertion: false, ..strict() };
        assert_eq!(check(&lax, &basic), [(Rule::AllowedTokenClients, Reason::TokenClientNotAllowed)]);
        assert!(reasons(&p, &format!("client_id={other}")).is_empty(), "not a token request");
    }
}
