//! The gossip datagram check of `crate::fuzzing`, kept here for the module's private parts
//! (the seal, the note codec, foca's settings).

use std::sync::Arc;

use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::gossip::{swim_config, MAX_PAYLOAD, STAMP_LEN};
use super::identity::NodeIdentity;
use super::notes::{Book, Item, NoteHandler};
use super::seal::{self, Rejected, TAG_LEN};
use crate::fuzzing::{Input, GOSSIP_PEER, GOSSIP_SELF, GOSSIP_TIMES};

/// The key of keyed runs.
const KEY: &[u8] = b"fuzzing gossip key, 16+";

/// Gossip: after a mode byte (bit 0: with a key), the rest is a received datagram. `open`
/// returns a payload only for a datagram that is exactly that payload sealed, refuses short
/// and tampered ones, and opens every sealed payload; what passes (after the stamp, within
/// [`MAX_PAYLOAD`]) goes to a fresh foca with the node's settings and note handler, which
/// must refuse or take it without a panic. The bytes as one note item decode and encode
/// back to themselves.
pub fn check_gossip_datagram(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let datagram = input.rest();
    let key = (mode & 1 == 1).then_some(KEY);
    match seal::open(key, datagram) {
        Ok(payload) => {
            assert_eq!(payload, &datagram[..payload.len()]);
            assert_eq!(
                seal::seal(key, payload),
                datagram,
                "opened a datagram not sealed"
            );
        }
        Err(Rejected::Short) => assert!(key.is_some() && datagram.len() < TAG_LEN),
        Err(Rejected::BadTag) => assert!(key.is_some() && datagram.len() >= TAG_LEN),
    }
    let mut sealed = seal::seal(key, datagram);
    assert_eq!(seal::open(key, &sealed), Ok(datagram));
    if key.is_some() {
        let i = usize::from(mode >> 1) % sealed.len();
        sealed[i] ^= 0x80;
        assert_eq!(
            seal::open(key, &sealed),
            Err(Rejected::BadTag),
            "bit {i} flipped"
        );
    }
    if let Ok(item) = Item::decode(datagram) {
        assert_eq!(item.encode(), datagram, "note item");
    }
    let Some((_stamp, payload)) = datagram.split_first_chunk::<STAMP_LEN>() else {
        return;
    };
    if payload.len() > MAX_PAYLOAD {
        return;
    }
    let identity = NodeIdentity {
        id: "fuzz".to_owned(),
        peer: GOSSIP_PEER,
        gossip: GOSSIP_SELF,
        weight: 100,
        bump: 1,
    };
    let mut foca = Foca::with_custom_broadcast(
        identity,
        swim_config(GOSSIP_TIMES.0, GOSSIP_TIMES.1),
        StdRng::seed_from_u64(1),
        PostcardCodec,
        NoteHandler {
            book: Arc::new(Mutex::new(Book::default())),
            self_id: "fuzz".to_owned(),
        },
    );
    let mut rt = AccumulatingRuntime::new();
    let _ = foca.handle_data(payload, &mut rt);
    while let Some((_, out)) = rt.to_send() {
        assert!(
            out.len() <= MAX_PAYLOAD,
            "foca wants to send {} bytes",
            out.len()
        );
    }
}
