//! mfagate: a TLS reverse proxy that lets through only Partner Center and
//! AOBO calls whose bearer token meets Microsoft's partner security
//! requirements. Modules in the order a request travels.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod correlation;
pub mod egress;
pub mod entra;
pub mod error;
pub mod fingerprint;
pub mod host;
pub mod limit;
pub mod listener;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod reason;
pub mod reload;
pub mod rfc3339;
pub mod serving;
pub mod shutdown;
pub mod spool;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub mod upstream;
