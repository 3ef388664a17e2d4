//! The `compute_guard` rule's reading of ARM requests: which requests
//! create compute (`arm`), what one resource's body asks for
//! (`resource`), VM size names (`size`), inline templates
//! (`template`), ARM's batch endpoint (`batch`), JSON as ARM reads it
//! (`json`), and the rule's judgement (`guard`). All pure.

pub mod arm;
pub mod batch;
pub mod guard;
pub mod json;
pub mod resource;
pub mod size;
pub mod template;
