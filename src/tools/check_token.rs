//! `mfagate check-token`: Microsoft's "test partner security requirements"
//! done right. Prints the decoded header and claims, how the token is
//! classified, the token checks and every rule's verdict under a route's
//! policy with a hint for each failure, and the decision the gateway would
//! take. The token itself is never printed.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::hints::{Context, hint};
use crate::auth::claims::{ClaimChecks, Claims};
use crate::auth::jwks::KeyStore;
use crate::auth::{AuthError, Authenticator};
use crate::cli::CheckTokenArgs;
use crate::config::{Config, ConfigError, RouteConfig, Source};
use crate::error::Reason;
use crate::metrics::Metrics;
use crate::policy::gdap;
use crate::policy::{self, Check, Input, Mode, RouteKind, Rule};
use crate::rfc3339::unix_now;

/// Exit status for "the gateway would not forward this as compliant".
pub const EXIT_DENY: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Input(String),
    #[error("cannot check the signature: {0} (use --no-verify to check the claims only)")]
    Keys(String),
}

pub fn run(source: &Source, args: &CheckTokenArgs) -> ExitCode {
    match check(source, args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report.to_json()).unwrap_or_default());
            } else {
                print!("{}", report.to_text());
            }
            if report.forwarded_as_compliant() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DENY) }
        }
        Err(e) => {
            eprintln!("check-token: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How far the signature check got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Signature {
    Verified,
    NotChecked(&'static str),
    Failed(Reason),
}

struct RuleLine {
    rule: Rule,
    check: Check,
    mode: Mode,
    hint: String,
}

/// Everything `check-token` found out.
pub struct Report {
    header: Option<Value>,
    claims_json: Option<Value>,
    claims: Option<Arc<Claims>>,
    route: String,
    kind: RouteKind,
    mode: Mode,
    signature: Signature,
    /// Issuer, audience, lifetime, tenant (and well-formedness).
    token: Result<(), (Reason, String)>,
    rules: Vec<RuleLine>,
    exemption: Option<String>,
    decision: &'static str,
    reason: Option<Reason>,
}

impl Report {
    /// `allow` or `exempt`: forwarded, and not only because of report-only mode.
    pub fn forwarded_as_compliant(&self) -> bool {
        matches!(self.decision, "allow" | "exempt")
    }
}

fn check(source: &Source, args: &CheckTokenArgs) -> Result<Report, CheckError> {
    let token = read_token(args.token.as_deref())?;
    let config = Config::load(source)?;
    let (header, claims_json) = decode_for_display(&token);
    let decoded = claims_json.as_ref().and_then(|v| Claims::parse(v.to_string().as_bytes()).ok()).map(Arc::new);
    let route = pick_route(&config, args.route.as_deref(), decoded.as_deref())?;
    let policy = &route.policy;
    let now = unix_now();
    let verify = policy.verify_signature && !args.no_verify;
    let outcome = authenticate(&config, route, &token, verify, now)?;
    let (signature, token_result, claims, verified) = match outcome {
        Ok(claims) => (signed(verify, args.no_verify), Ok(()), Some(claims), verify),
        // Claims come back only once the signature (when checked) verified.
        Err((e, Some(claims))) => (signed(verify, args.no_verify), Err(e.reason()), Some(claims), verify),
        Err((e @ (AuthError::UnknownKey | AuthError::BadSignature | AuthError::DisallowedAlg), None)) => {
            (Signature::Failed(e.reason()), Ok(()), decoded, false)
        }
        Err((e, None)) => (Signature::NotChecked("the token could not be read"), Err(e.reason()), decoded, false),
    };
    let customer = match (policy.needs_path_customer(), args.path.as_deref()) {
        (true, Some(path)) => {
            gdap::customer_in_path(path).map_err(|e| CheckError::Input(format!("--path: {e}")))?.map(|c| c.id)
        }
        _ => None,
    };
    let evaluation = claims
        .as_ref()
        .map(|c| policy::evaluate(policy, &Input { claims: c, verified, customer: customer.as_deref() }, now));
    let cx =
        Context { claims: claims.as_deref(), policy, audiences: &route.audiences, customer: customer.as_deref(), now };
    let rules = evaluation
        .as_ref()
        .map(|e| {
            Rule::ALL
                .iter()
                .map(|&rule| {
                    let check = e.checks[rule as usize];
                    let hint = match check {
                        Check::Fail(r) => hint(r.into(), &cx),
                        Check::Off | Check::Skip | Check::Pass => String::new(),
                    };
                    RuleLine { rule, check, mode: policy.mode(Some(rule), now), hint }
                })
                .collect()
        })
        .unwrap_or_default();
    // The first failure before the rules decides, as in the gateway.
    let early = match &signature {
        Signature::Failed(r) => Some(*r),
        Signature::Verified | Signature::NotChecked(_) => token_result.err(),
    };
    let (decision, reason) = match (early, evaluation.as_ref().map(|e| &e.decision)) {
        (Some(r), _) => match policy::waive(policy, None, now) {
            Some(_) => ("would_deny", Some(r)),
            None => ("deny", Some(r)),
        },
        (None, Some(d)) => (d.as_str(), d.reason().map(Reason::from)),
        (None, None) => ("deny", Some(Reason::MalformedToken)),
    };
    let token_result = token_result.map_err(|r| (r, hint(r, &cx)));
    let exemption = evaluation.as_ref().and_then(|e| e.exemption).map(|e| e.reason.clone());
    Ok(Report {
        header,
        claims_json,
        claims,
        route: route.name.clone(),
        kind: policy.kind,
        mode: policy.schedule.mode_at(now),
        signature,
        token: token_result,
        rules,
        exemption,
        decision,
        reason,
    })
}

fn signed(verify: bool, no_verify: bool) -> Signature {
    match (verify, no_verify) {
        (true, _) => Signature::Verified,
        (false, true) => Signature::NotChecked("--no-verify"),
        (false, false) => Signature::NotChecked("the route has verify_signature = false"),
    }
}

/// The token from the argument, or standard input for `-` or none; a
/// pasted `Bearer ` prefix is dropped.
fn read_token(arg: Option<&str>) -> Result<String, CheckError> {
    let text = match arg {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CheckError::Input(format!("reading standard input: {e}")))?;
            s
        }
    };
    let text = text.trim();
    let token = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => text,
    };
    if token.is_empty() {
        return Err(CheckError::Input("no token given (pass it as an argument or on standard input)".into()));
    }
    Ok(token.to_string())
}

/// Header and claims as JSON, when they decode.
fn decode_for_display(token: &str) -> (Option<Value>, Option<Value>) {
    let mut parts = token.split('.');
    let mut next = || {
        parts.next().and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let header = next();
    (header, next())
}

/// `--route`, else the first route (not a login route) accepting the token's audience, else the first such route.
fn pick_route<'c>(
    config: &'c Config,
    name: Option<&str>,
    claims: Option<&Claims>,
) -> Result<&'c RouteConfig, CheckError> {
    if let Some(name) = name {
        let route = config.routes.iter().find(|r| r.name == name).ok_or_else(|| {
            let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
            CheckError::Input(format!("no route {name:?} (routes: {})", names.join(", ")))
        })?;
        if route.policy.kind == RouteKind::Login {
            return Err(CheckError::Input(format!(
                "route {name:?} is a login route: it checks token requests, not tokens"
            )));
        }
        return Ok(route);
    }
    let api = || config.routes.iter().filter(|r| r.policy.kind != RouteKind::Login);
    let accepts = |r: &RouteConfig| {
        claims.is_some_and(|c| c.aud.iter().any(|a| r.audiences.iter().any(|want| want == a.trim_end_matches('/'))))
    };
    api()
        .find(|r| accepts(r))
        .or_else(|| api().next())
        .ok_or_else(|| CheckError::Input("the configuration has no API route".into()))
}

type Authenticated = Result<Arc<Claims>, crate::auth::AuthFailure>;

/// The gateway's own token checks, with the configured key set when the
/// signature is checked.
fn authenticate(
    config: &Config,
    route: &RouteConfig,
    token: &str,
    verify: bool,
    now: i64,
) -> Result<Authenticated, CheckError> {
    let mut headers = HeaderMap::new();
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => headers.insert(AUTHORIZATION, v),
        Err(_) => return Ok(Err((AuthError::Malformed("the token is not visible ASCII"), None))),
    };
    // A token that does not parse is judged without fetching any key.
    if let Err(e) = crate::auth::token::parse(token) {
        return Ok(Err((e, None)));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CheckError::Keys(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let metrics = Metrics::new().map_err(|e| CheckError::Keys(e.to_string()))?;
        let keys = KeyStore::new(&config.identity, |name| metrics.jwks_source(name))
            .map_err(|e| CheckError::Keys(e.to_string()))?;
        if verify {
            keys.load().await;
            if !keys.is_ready() {
                return Err(CheckError::Keys("no signing keys could be loaded from the configured key sources".into()));
            }
        }
        let checks = ClaimChecks {
            issuers: config.identity.issuers.clone(),
            tenants: config.identity.tenants.clone(),
            skew_secs: config.identity.clock_skew_secs as i64,
        };
        let auth = Authenticator::new(Arc::new(keys), checks, config.identity.max_token_bytes);
        Ok(if verify {
            auth.authenticate(&headers, &route.audiences, now).await.map(|t| t.into_claims())
        } else {
            auth.decode_unverified(&headers, &route.audiences, now)
        })
    })
}

mod render;
