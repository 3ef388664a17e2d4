//! Accepting connections, for every listener: one accept loop (`accept`)
//! that hands each connection to its listener with a `Drain`, and one HTTP
//! server builder (`Http`) configured from `[server]`'s HTTP settings.
//!
//! - `accept`: the accept loop and the `Drain` of each connection;
//! - `conn`: the gateway's TLS connections (handshake, lanes, idle close);
//! - `http`: the HTTP/1.1 and HTTP/2 server settings, shared by the
//!   gateway, the egress proxy, its intercepted tunnels and the admin
//!   listener;
//! - `lifecycle`: how a connection lives after its handshake: idle close,
//!   graceful close, HTTP/1.1 parked between requests;
//! - `park`: the stream an idle HTTP/1.1 connection is parked with;
//! - `load`: connections and requests counted against their limits, with
//!   their gauges;
//! - `inspect`: the byte-level framing checks of HTTP/1;
//! - `refusal`: what the listener tells the pipeline to refuse;
//! - `plain`: plain HTTP/1.1 without TLS (admin).
//!
//! What a connection is served with is read from the serving state when it
//! is accepted, and the gateway again for every request, so a reload
//! applies to new requests while requests in flight finish on the
//! configuration they started with.

mod accept;
mod conn;
mod http;
mod inspect;
mod lifecycle;
mod load;
mod park;
mod plain;
mod refusal;

pub use accept::{Drain, accept};
pub use conn::{Endpoint, LiveGateway, Pipeline, serve_gateway};
pub use http::{Http, until_drained};
pub use inspect::{Fault, Inspected, Inspector};
pub use load::{Load, Tracked};
pub use plain::serve_plain;
pub use refusal::Refusal;
