//! The client connection a request arrived on.

use http::HeaderValue;
use std::net::SocketAddr;

/// The client connection a request arrived on, with what every request on it forwards.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The address as X-Forwarded-For writes it, formatted once per connection.
    pub forwarded_for: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        Peer {
            forwarded_for: crate::upstream::forwarded_for(addr.ip()),
        }
    }
}
