//! mfagate: a TLS reverse proxy, and optionally an egress proxy, that lets
//! through only Partner Center and AOBO calls whose bearer token meets
//! Microsoft's partner security requirements.
//!
//! Modules by layer, from the bottom up. Imports point down; a few small
//! files inside a higher module are vocabulary of their own that lower
//! layers name (`error/format.rs`, `egress/error.rs`). `tests/layers.rs`
//! fails on any import circle between files.

// The vocabulary: what the other layers name.
pub mod correlation;
pub mod entra;
pub mod fingerprint;
pub mod host;
pub mod reason;
pub mod rfc3339;

// Tokens and the pure policy.
pub mod auth;
pub mod policy;

// The configuration, read and checked whole.
pub mod config;

// Components: the upstream client, listeners, logs, metrics, TLS.
pub mod audit;
pub mod listener;
pub mod metrics;
pub mod shutdown;
pub mod spool;
pub mod telemetry;
pub mod tls;
pub mod upstream;

// The request pipeline and its answers.
pub mod error;
pub mod limit;
pub mod proxy;
pub mod respond;

// The egress proxy, which hands intercepted requests to the pipeline.
pub mod egress;

// Wiring: the serving state, reloads, the admin listener, commands.
pub mod admin;
pub mod app;
pub mod cli;
pub mod reload;
pub mod serving;
pub mod tools;
