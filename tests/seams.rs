//! Seams between the gateway's parsers and the servers behind it: each
//! request here is one that a lenient upstream (IIS, ASP.NET, Entra) reads in
//! a way a strict parser would not, and each must be judged as the upstream
//! reads it. Trailing dots and spaces in path segments are in
//! `seams/paths.rs`.

mod support;

#[path = "seams/paths.rs"]
mod paths;
