//! Every rejection becomes a response here and nowhere else: status, the
//! Partner Center style JSON body, `WWW-Authenticate`, and the correlation
//! headers.
//!
//! The body mirrors Partner Center's error contract
//! (`{"code","description","data","source"}`) so that automation which already
//! handles Partner Center's errors handles ours; `reason` and `correlationId`
//! are added. Descriptions are fixed per reason, with the name of the
//! request check that refused a `bad_request`: nothing from the request is
//! echoed.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PROXY_AUTHENTICATE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::Full;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::AuthError;
use crate::correlation::Correlation;
use crate::egress::EgressError;
use crate::policy::{Denial, StepUp};
use crate::upstream::Body;
use crate::upstream::UpstreamError;

/// `Retry-After` of an `overloaded` answer.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Partner Center's own error code for a call without MFA.
pub const PARTNER_CENTER_MFA_CODE: &str = "900421";

mod format;

pub use crate::reason::{Reason, RequestRule};
pub use format::ErrorFormat;

/// How the answer to a refused request reads.
trait Answer {
    fn code(self) -> &'static str;
    fn challenge(self) -> Option<String>;
}

impl Answer for Reason {
    /// The body's `code`: Partner Center's own for missing MFA, else the reason.
    fn code(self) -> &'static str {
        match self {
            Self::MfaRequired | Self::MfaUnprovableV2 => PARTNER_CENTER_MFA_CODE,
            other => other.as_str(),
        }
    }

    /// RFC 6750 §3: no error code when no token was presented; `invalid_token`
    /// for a token that failed; `insufficient_scope` for a valid token that
    /// may not do this.
    fn challenge(self) -> Option<String> {
        if matches!(self, Self::EgressDenied | Self::TlsRequired) {
            // Refused for where it goes, whatever the credentials.
            return None;
        }
        let error = match self.status() {
            StatusCode::UNAUTHORIZED if matches!(self, Self::MissingToken | Self::LegacyAuth) => {
                return Some(r#"Bearer realm="mfagate""#.to_string());
            }
            StatusCode::UNAUTHORIZED => "invalid_token",
            // A refused token request presented no bearer token to challenge.
            StatusCode::FORBIDDEN if self == Self::PasswordGrant => return None,
            StatusCode::FORBIDDEN => "insufficient_scope",
            _ => return None,
        };
        Some(format!(r#"Bearer realm="mfagate", error="{error}", error_description="{}""#, self.short()))
    }
}

/// A request that is answered by the gateway itself.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("no route matches")]
    NoRoute,
    #[error("bad request: {} ({})", .0.sentence(), .0)]
    BadRequest(RequestRule),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("over the connection or in-flight request limit")]
    Overloaded,
    #[error("the rate-limit store did not answer")]
    StoreUnavailable,
}

impl Reject {
    pub fn reason(&self) -> Reason {
        match self {
            Self::Auth(e) => e.reason(),
            Self::Denied(denial) => denial.reason,
            Self::NoRoute => Reason::NoRoute,
            Self::BadRequest(_) => Reason::BadRequest,
            Self::Upstream(UpstreamError::Timeout) => Reason::UpstreamTimeout,
            Self::Upstream(UpstreamError::Unavailable(_) | UpstreamError::Target) => Reason::UpstreamUnavailable,
            Self::Upstream(UpstreamError::ClientBody) => Reason::BadRequest,
            Self::Egress(e) => e.reason(),
            Self::RateLimited(_) => Reason::RateLimited,
            Self::Overloaded => Reason::Overloaded,
            Self::StoreUnavailable => Reason::RateLimitStoreUnavailable,
        }
    }

    /// The request check that refused a `bad_request`.
    pub fn rule(&self) -> Option<RequestRule> {
        match self {
            Self::BadRequest(rule) => Some(*rule),
            Self::Upstream(UpstreamError::ClientBody) => Some(RequestRule::BrokenBody),
            _ => None,
        }
    }

    /// How long the caller should wait before retrying, when that is known.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(wait) => Some(*wait),
            Self::Overloaded | Self::StoreUnavailable => Some(OVERLOAD_RETRY_AFTER),
            _ => None,
        }
    }

    /// The response for this rejection, its body in `format`; the ids go in
    /// the body, the caller adds the correlation headers.
    pub fn into_response(self, ids: &Correlation, format: ErrorFormat) -> Response<Body> {
        let ids = Answered {
            correlation_id: ids.correlation_str(),
            request_id: ids.request_str(),
            client_request_id: ids.client_request_str(),
        };
        let mut rsp = answer(self.reason(), self.rule(), ids, format);
        if let Self::Denied(Denial { step_up: Some(step_up), .. }) = &self
            && let Ok(challenge) = HeaderValue::from_str(&step_up_challenge(step_up))
        {
            rsp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            // Clients answer a claims challenge on 401 only (a flagged
            // compute request's step-up would otherwise be a 403).
            *rsp.status_mut() = http::StatusCode::UNAUTHORIZED;
        }
        if let Some(wait) = self.retry_after() {
            // RFC 9110 §10.2.3: whole seconds; round up so that a retry at that time succeeds.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            rsp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        rsp
    }
}

impl From<Reason> for Reject {
    fn from(reason: Reason) -> Self {
        Self::Denied(reason.into())
    }
}

/// The claims challenge of Entra's "claims challenge" contract: one
/// `WWW-Authenticate: Bearer` header with `realm`, `authorization_uri`,
/// `error="insufficient_claims"` and the base64 claims request. MSAL clients
/// that declared `cp1` answer it by signing in again for those claims.
pub fn step_up_challenge(step_up: &StepUp) -> String {
    format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/{}/oauth2/authorize", error="insufficient_claims", claims="{}""#,
        step_up.tenant,
        STANDARD.encode(step_up.claims_request())
    )
}

/// The human-readable text of an answer: the reason's sentence, with the
/// rule that refused a `bad_request`.
pub fn description(reason: Reason, rule: Option<RequestRule>) -> Cow<'static, str> {
    match rule {
        Some(rule) => Cow::Owned(format!("{} (rule: {rule}).", reason.description().trim_end_matches('.'))),
        None => Cow::Borrowed(reason.description()),
    }
}

/// The gateway's own answer for `reason`, in Partner Center's format.
pub fn error_response(reason: Reason, correlation_id: &str) -> Response<Body> {
    let ids = Answered { correlation_id, request_id: correlation_id, client_request_id: None };
    answer(reason, None, ids, ErrorFormat::PartnerCenter)
}

/// The ids an answer gives back.
#[derive(Clone, Copy)]
struct Answered<'a> {
    correlation_id: &'a str,
    request_id: &'a str,
    client_request_id: Option<&'a str>,
}

fn answer(reason: Reason, rule: Option<RequestRule>, ids: Answered<'_>, format: ErrorFormat) -> Response<Body> {
    let description = description(reason, rule);
    let body = format.body(&format::Fields {
        reason,
        code: reason.code(),
        description: &description,
        correlation_id: ids.correlation_id,
        request_id: ids.request_id,
        client_request_id: ids.client_request_id,
    });
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut rsp = Response::new(Body::Right(Full::new(Bytes::from(json))));
    *rsp.status_mut() = reason.status();
    let headers = rsp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(challenge) = reason.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    if reason == Reason::KeysUnavailable {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if reason == Reason::ProxyAuthRequired {
        headers.insert(PROXY_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="mfagate", charset="UTF-8""#));
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(correlation_id: &str) -> Correlation {
        let mut headers = http::HeaderMap::new();
        headers.insert(crate::correlation::MS_CORRELATION_ID.clone(), HeaderValue::from_str(correlation_id).unwrap());
        Correlation::of(&headers)
    }

    #[test]
    fn statuses_follow_whose_fault_it_is() {
        assert_eq!(Reason::MfaRequired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Reason::PublicClient.status(), StatusCode::FORBIDDEN);
        assert_eq!(Reason::KeysUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Reason::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(Reason::UpstreamUnavailable.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Reason::UpstreamTimeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(Reason::AudienceHostMismatch.status(), StatusCode::FORBIDDEN);
        assert_eq!(Reason::MisdirectedRequest.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(Reason::ProxyAuthRequired.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    }

    #[test]
    fn egress_refusals_are_never_waived_and_challenge_only_for_tokens() {
        for r in [
            Reason::AudienceHostMismatch,
            Reason::MisdirectedRequest,
            Reason::EgressDenied,
            Reason::TlsRequired,
            Reason::ProxyAuthRequired,
        ] {
            assert!(!r.waivable(), "{}", r.as_str());
            assert!(r.is_decision(), "{}", r.as_str());
        }
        assert!(Reason::AudienceHostMismatch.challenge().unwrap().contains("insufficient_scope"));
        assert!(Reason::EgressDenied.challenge().is_none());
        assert!(Reason::TlsRequired.challenge().is_none());
        let rsp = error_response(Reason::ProxyAuthRequired, "c-1");
        assert_eq!(rsp.headers()[PROXY_AUTHENTICATE], r#"Basic realm="mfagate", charset="UTF-8""#);
        assert!(!rsp.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn challenges() {
        assert_eq!(Reason::MissingToken.challenge().unwrap(), r#"Bearer realm="mfagate""#);
        assert_eq!(
            Reason::MfaRequired.challenge().unwrap(),
            r#"Bearer realm="mfagate", error="invalid_token", error_description="MFA required""#
        );
        assert!(Reason::AppNotAllowed.challenge().unwrap().contains(r#"error="insufficient_scope""#));
        assert!(Reason::KeysUnavailable.challenge().is_none());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let wait = |d: Duration| {
            let rsp = Reject::RateLimited(d).into_response(&ids("c"), ErrorFormat::PartnerCenter);
            rsp.headers()[RETRY_AFTER].to_str().unwrap().to_string()
        };
        assert_eq!(wait(Duration::from_millis(1)), "1");
        assert_eq!(wait(Duration::from_millis(1500)), "2");
        assert_eq!(wait(Duration::from_secs(30)), "30");
        let rsp = Reject::Overloaded.into_response(&ids("c"), ErrorFormat::PartnerCenter);
        assert_eq!(rsp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(rsp.headers()[RETRY_AFTER], "1");
        assert!(
            Reject::NoRoute.into_response(&ids("c"), ErrorFormat::PartnerCenter).headers().get(RETRY_AFTER).is_none()
        );
        assert!(!Reason::RateLimited.waivable() && !Reason::Overloaded.waivable(), "report-only does not waive them");
    }

    #[test]
    fn body_has_partner_center_shape() {
        let rsp = error_response(Reason::MfaRequired, "c-1");
        assert_eq!(rsp.status(), StatusCode::UNAUTHORIZED);
        let Body::Right(full) = rsp.into_body() else { panic!("not a full body") };
        let bytes = futures_executor(full);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], "900421");
        assert_eq!(v["reason"], "mfa_required");
        assert_eq!(v["source"], "mfagate");
        assert_eq!(v["data"], serde_json::json!([]));
        assert_eq!(v["correlationId"], "c-1");
    }

    #[test]
    fn a_bad_request_names_its_rule() {
        let body = |r: Reject| {
            let Body::Right(full) = r.into_response(&ids("c"), ErrorFormat::PartnerCenter).into_body() else {
                panic!("not a full body")
            };
            serde_json::from_slice::<serde_json::Value>(&futures_executor(full)).unwrap()
        };
        let v = body(Reject::BadRequest(RequestRule::DotSegment));
        assert_eq!(
            v["description"],
            "The request is malformed or ambiguous and was not forwarded (rule: dot_segment)."
        );
        assert_eq!((v["reason"].as_str(), v["code"].as_str()), (Some("bad_request"), Some("bad_request")));
        let broken = body(Reject::Upstream(UpstreamError::ClientBody));
        assert!(broken["description"].as_str().unwrap().ends_with("(rule: broken_body)."), "{broken}");
        assert_eq!(Reject::NoRoute.rule(), None);
    }

    #[test]
    fn codes_and_challenges_of_rules() {
        assert_eq!(Reason::MfaUnprovableV2.code(), PARTNER_CENTER_MFA_CODE);
        assert_eq!(Reason::MfaRequired.code(), PARTNER_CENTER_MFA_CODE);
        assert_eq!(Reason::PublicClient.code(), "public_client");
        assert!(Reason::PasswordGrant.challenge().is_none());
        assert!(Reason::PrivilegedRole.challenge().unwrap().contains("insufficient_scope"));
    }

    #[test]
    fn step_up_replaces_the_challenge() {
        let denial = Denial {
            reason: Reason::MfaRequired,
            step_up: Some(StepUp { tenant: "df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50".into(), auth_context: "c1".into() }),
        };
        let rsp = Reject::Denied(denial).into_response(&ids("c-1"), ErrorFormat::PartnerCenter);
        assert_eq!(rsp.status(), StatusCode::UNAUTHORIZED);
        let all: Vec<_> = rsp.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(all.len(), 1, "one challenge header");
        assert_eq!(
            all[0],
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/df845f1a-1e2f-4f5e-9a7c-0b1c2d3e4f50/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19""#
        );
    }

    fn futures_executor(full: Full<Bytes>) -> Bytes {
        use http_body_util::BodyExt;
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(full.collect()).unwrap().to_bytes()
    }
}
