//! The listener's verdict on a request it hands on: carried in the
//! request's extensions, turned into an answer by the pipeline.

/// Why the listener asks the gateway to refuse a request; carried in the
/// request's extensions, turned into a response by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The raw bytes of the connection broke a framing rule.
    Malformed(crate::reason::RequestRule),
    /// Over `max_connections` or `max_in_flight`.
    Overloaded,
}
