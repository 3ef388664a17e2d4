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
use http::header::{AUTHORIZATION, HeaderValue};
use http::request::Parts;
use serde_json::Value;

use super::hints::{Context, hint};
use crate::auth::Authenticator;
use crate::auth::claims::{ClaimChecks, Claims, audience_key};
use crate::auth::jwks::KeyStore;
use crate::cli::CheckTokenArgs;
use crate::config::{Config, ConfigError, RouteConfig, Source};
use crate::error::{Reason, RequestRule};
use crate::metrics::Metrics;
use crate::policy::{self, Check, Decision, Facts, Input, Mode, Presented, RouteKind, Rule, StepUp};
use crate::proxy::facts;
use crate::proxy::hygiene::Hygiene;
use crate::proxy::route;
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
    /// The gateway would refuse the request before deciding.
    #[error("the gateway refuses this request before any token check: {2}")]
    Refused(Reason, Option<RequestRule>, #[source] RefusedWhy),
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
        Err(CheckError::Refused(reason, rule, RefusedWhy(why))) => {
            let rule = rule.map(RequestRule::as_str);
            if args.json {
                let answer = serde_json::json!({
                    "decision": "deny", "reason": reason.as_str(), "rule": rule,
                    "status": reason.status().as_u16(), "detail": why,
                });
                println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            } else {
                let rule = rule.map(|r| format!(", rule {r}")).unwrap_or_default();
                println!(
                    "Decision: deny: {} (HTTP {}{rule}), before any token check: {why}",
                    reason.as_str(),
                    reason.status().as_u16()
                );
            }
            ExitCode::from(EXIT_DENY)
        }
        Err(e) => {
            eprintln!("check-token: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the gateway would answer a request it refuses before deciding.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RefusedWhy(String);

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
pub struct TokenReport {
    header: Option<Value>,
    claims_json: Option<Value>,
    claims: Option<Arc<Claims>>,
    route: String,
    kind: RouteKind,
    mode: Mode,
    signature: Signature,
    /// Issuer, audience, lifetime, tenant (and well-formedness).
    token: Result<(), (Reason, String)>,
    /// Rule failures found in the request itself (a legacy scheme).
    findings: Vec<Reason>,
    /// Each auxiliary token's failure, if it failed.
    auxiliary: Vec<Option<Reason>>,
    rules: Vec<RuleLine>,
    exemption: Option<String>,
    decision: &'static str,
    reason: Option<Reason>,
    /// The claims challenge the gateway would answer with (a `cp1` client,
    /// a route with `auth_context_id`).
    step_up: Option<StepUp>,
}

impl TokenReport {
    /// `allow` or `exempt`: forwarded, and not only because of report-only mode.
    pub fn forwarded_as_compliant(&self) -> bool {
        matches!(self.decision, "allow" | "exempt")
    }
}

fn check(source: &Source, args: &CheckTokenArgs) -> Result<TokenReport, CheckError> {
    let token = read_token(args.token.as_deref())?;
    let config = Config::load(source)?;
    let (header, claims_json) = decode_for_display(&token);
    let decoded = claims_json.as_ref().and_then(|v| Claims::parse(v.to_string().as_bytes()).ok()).map(Arc::new);
    let mut parts = request(&token, args)?;
    // The gateway's request checks first: what they refuse, no token check sees.
    if let Err(rule) = Hygiene::new(&config.server.http).check(&mut parts) {
        return Err(CheckError::Refused(Reason::BadRequest, Some(rule), RefusedWhy(rule.sentence().to_string())));
    }
    // A path given is judged under the route the gateway sends it to (its
    // normalised form, as the gateway routes it): never under a route its
    // path_prefix keeps it from.
    let path = args.path.is_some().then_some(&parts);
    let route = pick_route(&config, args.route.as_deref(), decoded.as_deref(), path, names_host(args))?;
    let policy = &route.policy;
    let now = unix_now();
    let verify = policy.verify_signature && !args.no_verify;
    // The gateway's own fact gathering and decision, on the request as given.
    let facts = gather(&config, route, &parts, &token, verify, now)?;
    let outcome = policy::decide(policy, &facts, now);
    let presented = facts.token.clone().unwrap_or(Presented::failed(Reason::MissingToken));
    let (signature, token_result) = match &presented {
        Presented::Checked { .. } => (signed(verify, args.no_verify), Ok(())),
        // Claims come back only once the signature (when checked) verified.
        Presented::Failed { reason, claims: Some(_) } => (signed(verify, args.no_verify), Err(*reason)),
        Presented::Failed {
            reason: r @ (Reason::UnknownKey | Reason::BadSignature | Reason::DisallowedAlg), ..
        } => (Signature::Failed(*r), Ok(())),
        Presented::Failed { reason, .. } => (Signature::NotChecked("the token could not be read"), Err(*reason)),
    };
    // The rules are shown on the claims as far as they could be read; the
    // decision is `decide`'s.
    let (claims, verified) = match presented.claims() {
        Some(c) => (Some(Arc::clone(c)), presented.verified()),
        None => (decoded, false),
    };
    let customer = facts.customer.clone();
    let shown = claims
        .as_ref()
        .map(|c| policy::evaluate(policy, &Input { claims: c, verified, customer: customer.as_deref() }, now));
    let cx =
        Context { claims: claims.as_deref(), policy, audiences: &route.audiences, customer: customer.as_deref(), now };
    let rules = shown
        .as_ref()
        .map(|e| {
            Rule::ALL
                .iter()
                .filter(|rule| rule.judges_tokens())
                .map(|&rule| {
                    let check = e.checks[rule as usize];
                    let hint = match check {
                        Check::Fail(r) => hint(r, &cx),
                        Check::Off | Check::Skip | Check::Pass => String::new(),
                    };
                    RuleLine { rule, check, mode: policy.mode(Some(rule), now), hint }
                })
                .collect()
        })
        .unwrap_or_default();
    let token_result = token_result.map_err(|r| (r, hint(r, &cx)));
    let exemption = outcome.evaluation.as_ref().and_then(|e| e.exemption).map(|e| e.reason.clone());
    Ok(TokenReport {
        header,
        claims_json,
        claims,
        route: route.name.clone(),
        kind: policy.kind,
        mode: policy.schedule.mode_at(now),
        signature,
        token: token_result,
        findings: facts.findings.clone(),
        auxiliary: facts.auxiliary.iter().map(Presented::error).collect(),
        rules,
        exemption,
        decision: outcome.decision.as_str(),
        reason: outcome.decision.reason(),
        step_up: match &outcome.decision {
            Decision::Deny(denial) => denial.step_up.clone(),
            _ => None,
        },
    })
}

/// True when a `--header` names the request's `Host`.
fn names_host(args: &CheckTokenArgs) -> bool {
    args.header.iter().any(|h| h.split_once(':').is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("host")))
}

/// The request `check-token` asks about: `GET --path` with the token as
/// its bearer credential and the `--header` fields after it.
fn request(token: &str, args: &CheckTokenArgs) -> Result<Parts, CheckError> {
    let mut builder = http::Request::builder().method(http::Method::GET).uri(args.path.as_deref().unwrap_or("/"));
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => builder = builder.header(AUTHORIZATION, v),
        Err(_) => return Err(CheckError::Input("the token is not visible ASCII".into())),
    }
    for h in &args.header {
        let (name, value) =
            h.split_once(':').ok_or_else(|| CheckError::Input(format!("--header {h:?}: expected 'Name: value'")))?;
        builder = builder.header(name.trim(), value.trim());
    }
    // As a client of the reverse-proxy listener sends it; the route is the
    // one picked, not one chosen by host.
    if !names_host(args) {
        builder = builder.header(http::header::HOST, "localhost");
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|e| CheckError::Input(format!("--path or --header: not a valid request ({e})")))?
        .into_parts();
    Ok(parts)
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

/// `--route`, else the first route (not a login route) accepting the
/// token's audience, else the first such route. With a path (`request`):
/// with a `Host` given (`host`), the route the gateway picks for that host
/// and path; without, the first route without a host that takes the path,
/// else the above among the routes with a host that take it. A route that
/// cannot take the path is refused as the gateway refuses the request
/// (`no_route`).
fn pick_route<'c>(
    config: &'c Config,
    name: Option<&str>,
    claims: Option<&Claims>,
    request: Option<&Parts>,
    host: bool,
) -> Result<&'c RouteConfig, CheckError> {
    let login = |name: &str| {
        CheckError::Input(format!("route {name:?} is a login route: it checks token requests, not tokens"))
    };
    if let Some(name) = name {
        let route = config.routes.iter().find(|r| r.name == name).ok_or_else(|| {
            let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
            CheckError::Input(format!("no route {name:?} (routes: {})", names.join(", ")))
        })?;
        if route.policy.kind == RouteKind::Login {
            return Err(login(name));
        }
        if let Some(parts) = request
            && !route::path_matches(&route.path_prefix, parts.uri.path())
        {
            let why = format!("route {name:?} does not take this path (path_prefix {:?})", route.path_prefix);
            return Err(CheckError::Refused(Reason::NoRoute, None, RefusedWhy(why)));
        }
        return Ok(route);
    }
    let no_route = |why: &str| CheckError::Refused(Reason::NoRoute, None, RefusedWhy(why.to_string()));
    if let Some(parts) = request
        && host
    {
        let route =
            route::find_config(&config.routes, parts).ok_or_else(|| no_route("no route takes this host and path"))?;
        if route.policy.kind == RouteKind::Login {
            return Err(login(&route.name));
        }
        return Ok(route);
    }
    // Without a host: the reverse-proxy listener sends a path to the first
    // route without a host that takes it, whatever the token's audience.
    // Only when none does may a route with a host be the one (an
    // intercepted tunnel is routed by its CONNECT host), and the path still
    // has to fit it.
    let takes = |r: &RouteConfig| request.is_none_or(|p| route::path_matches(&r.path_prefix, p.uri.path()));
    if !config.routes.iter().any(takes) {
        return Err(no_route("no route takes this path"));
    }
    if request.is_some()
        && let Some(route) = config.routes.iter().find(|r| r.host.is_none() && takes(r))
    {
        if route.policy.kind == RouteKind::Login {
            return Err(login(&route.name));
        }
        return Ok(route);
    }
    let api = || config.routes.iter().filter(|r| r.policy.kind != RouteKind::Login && takes(r));
    if request.is_some()
        && api().next().is_none()
        && let Some(route) = config.routes.iter().find(|r| takes(r))
    {
        return Err(login(&route.name));
    }
    let accepts =
        |r: &RouteConfig| claims.is_some_and(|c| c.aud.iter().any(|a| r.audiences.contains(&audience_key(a))));
    api()
        .find(|r| accepts(r))
        .or_else(|| api().next())
        .ok_or_else(|| CheckError::Input("the configuration has no API route".into()))
}

/// The gateway's facts for the request, with the configured key set when
/// the signature is checked.
fn gather(
    config: &Config,
    route: &RouteConfig,
    parts: &Parts,
    token: &str,
    verify: bool,
    now: i64,
) -> Result<Facts, CheckError> {
    // A token that does not parse needs no keys to be judged.
    let verify = verify && crate::auth::token::parse(token).is_ok();
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
        // As the reverse-proxy listener sends it: behind the route's base path.
        match facts::api(&auth, route, parts, &route.upstream.base_path, verify, now).await {
            Ok(gathered) => Ok(gathered.facts),
            // Refused before any decision (the request itself is malformed).
            Err(reject) => Err(CheckError::Refused(reject.reason(), reject.rule(), RefusedWhy(reject.to_string()))),
        }
    })
}

mod render;
