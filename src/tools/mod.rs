//! Command-line tools: `check-token` (one token, every rule), `replay` (a
//! decision log under another configuration), `report` (compliance from a
//! decision log) and `demo` (the gateway with a local identity provider).

pub mod check_token;
pub mod demo;
pub mod hints;
pub mod merge;
pub mod replay;
pub mod report;
