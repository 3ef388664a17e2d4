//! Command-line tools that explain decisions: `check-token` (one token,
//! every rule) and `replay` (a decision log under another configuration).

pub mod check_token;
pub mod hints;
pub mod replay;
