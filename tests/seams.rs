//! Seams between the gateway's parsers and the servers behind it: each
//! request here is one that a lenient upstream (IIS, ASP.NET, Entra) reads in
//! a way a strict parser would not, and each must be judged as the upstream
//! reads it. Token requests on a login route are in `seams/login.rs`,
//! customer ids in Partner Center paths in `seams/customers.rs`, trailing
//! dots and spaces in path segments in `seams/paths.rs`.

mod support;

#[path = "seams/customers.rs"]
mod customers;
#[path = "seams/login.rs"]
mod login;
#[path = "seams/paths.rs"]
mod paths;
