//! Whose fault a failure on the proxied path is: the client's, an origin server's, a peer
//! node's, or this node's own.
//!
//! A [`Fault`] is made where the failure is seen (the client's request body, the origin
//! client, the peer connection) and carried, as this one small `Copy` value, to where it is
//! counted, answered and acted on. Only origin faults touch an origin server's health (passive
//! ejection); only peer faults a peer's. A client's broken, stalled or oversized body is the
//! client's alone: it gets its own status (or a silent close) and its own counter.

use http::StatusCode;

/// The error of a read after a chunk size over the limit (`http::chunk_limit` puts it in an
/// `io::Error`; the origin client's upload finds it there and blames the client).
#[derive(Debug, thiserror::Error)]
#[error("a chunk size declares more than max_request_body")]
pub struct ChunkTooLarge;

/// Whether the read error hyper passes on as a client body's error is [`ChunkTooLarge`].
pub fn is_chunk_too_large(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<ChunkTooLarge>())
}

/// The side a failure is blamed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Origin,
    Peer,
    Node,
}

/// One failure on the proxied path, by where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client's request body broke its framing (a bad chunk, bad trailers).
    ClientBadBody,
    /// The client's request body sent nothing for `limits.body_timeout`.
    ClientBodyTimeout,
    /// The client's request body crossed `limits.max_request_body`.
    ClientBodyTooLarge,
    /// The client went away before its request was complete.
    ClientAborted,
    /// No origin server of the pool could be connected to.
    OriginUnreachable,
    /// The origin server sent no response head within `first_byte_timeout`.
    OriginTimeout,
    /// The origin server answered something that is not HTTP, or reset the connection.
    OriginBroken,
    /// The pool has no server that may take the request (all down, ejected or drained).
    NoServer,
    /// A peer node could not be reached.
    PeerUnreachable,
    /// A peer node answered badly or broke the exchange.
    PeerBroken,
    /// This node could not carry the request on (an internal inconsistency).
    Node,
}

impl Fault {
    /// Who is to blame.
    pub fn side(self) -> Side {
        match self {
            Fault::ClientBadBody
            | Fault::ClientBodyTimeout
            | Fault::ClientBodyTooLarge
            | Fault::ClientAborted => Side::Client,
            Fault::OriginUnreachable
            | Fault::OriginTimeout
            | Fault::OriginBroken
            | Fault::NoServer => Side::Origin,
            Fault::PeerUnreachable | Fault::PeerBroken => Side::Peer,
            Fault::Node => Side::Node,
        }
    }

    /// The status the client gets; None: nobody to answer (the client is gone), close.
    pub fn status(self) -> Option<StatusCode> {
        Some(match self {
            Fault::ClientBadBody => StatusCode::BAD_REQUEST,
            Fault::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Fault::ClientBodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Fault::ClientAborted => return None,
            Fault::OriginUnreachable | Fault::OriginBroken | Fault::PeerBroken => {
                StatusCode::BAD_GATEWAY
            }
            Fault::PeerUnreachable => StatusCode::BAD_GATEWAY,
            Fault::OriginTimeout => StatusCode::GATEWAY_TIMEOUT,
            Fault::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Node => StatusCode::INTERNAL_SERVER_ERROR,
        })
    }

    /// Stable name: the `detail` of `Cache-Status`, logs, and the client-facing message.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::ClientBadBody => "client-bad-body",
            Fault::ClientBodyTimeout => "client-body-timeout",
            Fault::ClientBodyTooLarge => "client-body-too-large",
            Fault::ClientAborted => "client-aborted",
            Fault::OriginUnreachable => "origin-unreachable",
            Fault::OriginTimeout => "origin-timeout",
            Fault::OriginBroken => "origin-broken",
            Fault::NoServer => "no-server",
            Fault::PeerUnreachable => "peer-unreachable",
            Fault::PeerBroken => "peer-broken",
            Fault::Node => "node-error",
        }
    }

    /// What the client reads in an error body: what went wrong, never an address, a name from
    /// the configuration or an error's text (those go to the log, where the fault is seen).
    pub fn message(self) -> &'static str {
        match self {
            Fault::ClientBadBody => "the request body is malformed",
            Fault::ClientBodyTimeout => "the request body stalled",
            Fault::ClientBodyTooLarge => "the request body is too large",
            Fault::ClientAborted => "the request was aborted",
            Fault::OriginUnreachable => "the origin server could not be reached",
            Fault::OriginTimeout => "the origin server did not answer in time",
            Fault::OriginBroken => "the origin server did not answer properly",
            Fault::NoServer => "no origin server is available",
            Fault::PeerUnreachable | Fault::PeerBroken => "another cache node failed",
            Fault::Node => "internal error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Fault; 11] = [
        Fault::ClientBadBody,
        Fault::ClientBodyTimeout,
        Fault::ClientBodyTooLarge,
        Fault::ClientAborted,
        Fault::OriginUnreachable,
        Fault::OriginTimeout,
        Fault::OriginBroken,
        Fault::NoServer,
        Fault::PeerUnreachable,
        Fault::PeerBroken,
        Fault::Node,
    ];

    #[test]
    fn client_faults_get_4xx_or_silence_and_the_others_5xx() {
        for f in ALL {
            match (f.side(), f.status()) {
                (Side::Client, Some(s)) => assert!(s.is_client_error(), "{f:?}"),
                (Side::Client, None) => assert_eq!(f, Fault::ClientAborted),
                (_, Some(s)) => assert!(s.is_server_error(), "{f:?}"),
                (_, None) => panic!("{f:?} must be answered"),
            }
        }
        assert_eq!(
            Fault::ClientBodyTimeout.status(),
            Some(StatusCode::REQUEST_TIMEOUT)
        );
        assert_eq!(
            Fault::ClientBodyTooLarge.status(),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    #[test]
    fn client_messages_name_no_address_pool_or_error_text() {
        for f in ALL {
            let m = f.message();
            assert!(!m.is_empty(), "{f:?}");
            // Static text: nothing from the configuration or the network can be in it.
            assert!(
                m.bytes().all(|b| b.is_ascii_lowercase() || b == b' '),
                "{f:?}: {m}"
            );
        }
    }

    #[test]
    fn names_are_distinct_and_prefixed_by_their_side() {
        let names: std::collections::HashSet<_> = ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names.len(), ALL.len());
        for f in ALL {
            let prefix = match f.side() {
                Side::Client => "client-",
                Side::Origin => "",
                Side::Peer => "peer-",
                Side::Node => "node-",
            };
            assert!(f.as_str().starts_with(prefix), "{f:?}");
        }
    }
}
