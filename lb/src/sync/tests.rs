//! Tests of the glue ([`open`], [`seal`]): the order authenticate, decode, replay; the drop
//! reasons and their names; sealed batches within the bound; and a fuzz run of garbage,
//! truncated, bit-flipped and mutated datagrams (no panic, no forged datagram accepted, and
//! what decodes re-encodes to the same bytes).

use super::testutil::{key, record, records, BACKUP, MASTER};
use super::*;
use crate::admin::metrics::assert_counter_names;
use crate::packet::testutil::Rng;

/// The MASTER's datagram `seq` of epoch `epoch`, sealed towards the BACKUP.
fn sealed(epoch: u64, seq: u64, body: Body) -> Vec<u8> {
    let m = Message {
        stamp: Stamp { epoch, seq },
        body,
    };
    seal(Some(&key(MASTER, BACKUP)), m.encode())
}

#[test]
fn a_sealed_message_opens_once_at_its_peer_only() {
    let to_backup = key(MASTER, BACKUP);
    let to_master = key(BACKUP, MASTER);
    let body = Body::Records(records(3));
    let d = sealed(9, 0, body.clone());
    // Reflected to the MASTER, it is checked with the BACKUP → MASTER key.
    let mut master_window = Window::new();
    assert_eq!(
        open(Some(&to_master), &mut master_window, &d),
        Err(Refused::Unauthenticated)
    );
    let mut w = Window::new();
    let m = open(Some(&to_backup), &mut w, &d).unwrap();
    assert_eq!(m.stamp, Stamp { epoch: 9, seq: 0 });
    assert_eq!(m.body, body);
    assert_eq!(
        open(Some(&to_backup), &mut w, &d),
        Err(Refused::Replay(Replay::Duplicate))
    );
    // Unauthenticated sync: the bare payload, with the same replay rules.
    let bare = Message {
        stamp: Stamp { epoch: 1, seq: 0 },
        body: Body::BulkRequest { request: 4 },
    }
    .encode();
    let mut w = Window::new();
    assert!(open(None, &mut w, &bare).is_ok());
    assert_eq!(
        open(None, &mut w, &bare),
        Err(Refused::Replay(Replay::Duplicate))
    );
    // A tagged datagram read without a key is not a valid payload.
    assert_eq!(
        open(None, &mut Window::new(), &d),
        Err(Refused::Wire(WireError::CountMismatch(3)))
    );
}

#[test]
fn only_authentic_well_formed_datagrams_move_the_window() {
    let k = key(MASTER, BACKUP);
    let mut w = Window::new();
    // A forged datagram from a far epoch: refused, and the window has not moved.
    let mut forged = sealed(u64::MAX, u64::MAX, Body::BulkRequest { request: 1 });
    forged[5] ^= 1;
    assert_eq!(
        open(Some(&k), &mut w, &forged),
        Err(Refused::Unauthenticated)
    );
    assert_eq!(w.epoch(), None);
    // Authentic but malformed (a reserved flag): refused, the window has not moved.
    let mut p = Message {
        stamp: Stamp { epoch: 3, seq: 5 },
        body: Body::Records(vec![]),
    }
    .encode();
    p[23] = 1;
    let malformed = seal(Some(&k), p);
    assert_eq!(
        open(Some(&k), &mut w, &malformed),
        Err(Refused::Wire(WireError::Reserved))
    );
    assert_eq!(w.epoch(), None);
    // The real seq 5 is still new; then the replay rules apply.
    let five = sealed(3, 5, Body::Records(vec![record(1)]));
    assert!(open(Some(&k), &mut w, &five).is_ok());
    assert_eq!(
        open(Some(&k), &mut w, &five),
        Err(Refused::Replay(Replay::Duplicate))
    );
    let early = sealed(3, 4, Body::Records(vec![]));
    assert!(open(Some(&k), &mut w, &early).is_ok());
    let far = sealed(3, 5 + 2 * WINDOW, Body::Records(vec![]));
    assert!(open(Some(&k), &mut w, &far).is_ok());
    assert_eq!(
        open(Some(&k), &mut w, &early),
        Err(Refused::Replay(Replay::TooOld))
    );
    let before_restart = sealed(2, 1_000_000, Body::Records(vec![]));
    assert_eq!(
        open(Some(&k), &mut w, &before_restart),
        Err(Refused::Replay(Replay::Stale))
    );
    let restarted = sealed(4, 0, Body::Records(vec![]));
    assert!(open(Some(&k), &mut w, &restarted).is_ok());
    assert_eq!(w.epoch(), Some(4));
}

#[test]
fn each_wire_error_maps_to_its_drop() {
    let k = key(MASTER, BACKUP);
    let cases: [(&[u8], Refused); 5] = [
        (b"", Refused::Wire(WireError::Truncated)),
        (b"SX\x01", Refused::Wire(WireError::BadMagic)),
        (b"SY\x07", Refused::Wire(WireError::UnknownVersion(7))),
        (
            b"SY\x01\x09\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            Refused::Wire(WireError::UnknownType(9)),
        ),
        (
            b"SY\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\0\0",
            Refused::Wire(WireError::CountMismatch(1)),
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(open(None, &mut Window::new(), payload), Err(want));
        let d = seal(Some(&k), payload.to_vec());
        assert_eq!(open(Some(&k), &mut Window::new(), &d), Err(want));
        // Under a key, the same bytes without a tag are unauthenticated first.
        assert_eq!(
            open(Some(&k), &mut Window::new(), payload),
            Err(Refused::Unauthenticated)
        );
    }
}

#[test]
fn every_drop_has_one_stable_counter_name() {
    let record = RecordError::Mode(7);
    let all = [
        (Refused::Unauthenticated, 0),
        (WireError::Truncated.into(), 1),
        (WireError::BadMagic.into(), 2),
        (WireError::UnknownVersion(2).into(), 3),
        (WireError::UnknownType(9).into(), 4),
        (WireError::Reserved.into(), 5),
        (WireError::CountMismatch(1).into(), 5),
        (
            WireError::BadRecord {
                index: 0,
                why: record,
            }
            .into(),
            5,
        ),
        (Replay::Stale.into(), 6),
        (Replay::Duplicate.into(), 7),
        (Replay::TooOld.into(), 8),
    ];
    for (drop, index) in all {
        assert_eq!(drop.index(), index, "{drop:?}");
    }
    // The three malformed cases share one counter.
    let mut reasons: Vec<_> = all.iter().map(|(d, _)| (d.index(), d.as_str())).collect();
    reasons.dedup();
    assert_counter_names(Refused::NAMES, &reasons);
    assert_eq!(
        Refused::Wire(WireError::CountMismatch(2)).to_string(),
        "2 records announced, the length says otherwise"
    );
}

#[test]
fn sealed_batches_fit_max_len() {
    let k = key(MASTER, BACKUP);
    for max_len in [100, 1472, 9000] {
        let mut b = Batcher::new(Batch::Records, max_len, tag_len(Some(&k))).unwrap();
        let mut seq = Sequencer::new(1);
        let mut w = Window::new();
        let mut got = Vec::new();
        let flows = records(1000);
        let payloads: Vec<_> = flows.iter().filter_map(|r| b.push(r, &mut seq)).collect();
        for p in payloads.into_iter().chain(b.flush(&mut seq)) {
            let d = seal(Some(&k), p);
            assert!(d.len() <= max_len, "{} > {max_len}", d.len());
            got.extend_from_slice(open(Some(&k), &mut w, &d).unwrap().body.records());
        }
        assert_eq!(got, flows);
    }
}

/// Valid datagrams of every kind, sealed.
fn samples() -> Vec<Vec<u8>> {
    vec![
        sealed(1, 0, Body::Records(records(3))),
        sealed(2, 7, Body::BulkRequest { request: 5 }),
        sealed(
            3,
            8,
            Body::BulkRecords {
                request: 5,
                chunk: 2,
                records: records(2),
            },
        ),
        sealed(
            4,
            9,
            Body::BulkEnd {
                request: 5,
                total: 80,
            },
        ),
    ]
}

#[test]
fn no_bit_flip_or_cut_of_an_authentic_datagram_is_accepted() {
    let k = key(MASTER, BACKUP);
    for d in samples() {
        assert!(open(Some(&k), &mut Window::new(), &d).is_ok());
        for byte in 0..d.len() {
            for bit in 0..8 {
                let mut t = d.clone();
                t[byte] ^= 1 << bit;
                let got = open(Some(&k), &mut Window::new(), &t);
                assert_eq!(got, Err(Refused::Unauthenticated), "byte {byte} bit {bit}");
            }
        }
        for n in 0..d.len() {
            let got = open(Some(&k), &mut Window::new(), &d[..n]);
            assert_eq!(got, Err(Refused::Unauthenticated), "cut at {n}");
        }
    }
}

/// A random edit of `p`: a byte changed, a bit flipped, a cut, bytes appended or a count
/// rewritten (to reach the deeper checks).
fn mutate(rng: &mut Rng, p: &mut Vec<u8>) {
    let at = |rng: &mut Rng, len: usize| rng.below(len.max(1) as u64) as usize;
    match rng.below(5) {
        0 if !p.is_empty() => {
            let i = at(rng, p.len());
            p[i] = rng.next() as u8;
        }
        1 if !p.is_empty() => {
            let i = at(rng, p.len());
            p[i] ^= 1 << rng.below(8);
        }
        2 => p.truncate(at(rng, p.len())),
        3 => {
            let n = at(rng, 3 * RECORD_LEN);
            p.extend(rng.bytes(n));
        }
        _ if p.len() >= 22 => p[20..22].copy_from_slice(&(rng.below(8) as u16).to_be_bytes()),
        _ => {}
    }
}

#[test]
fn garbage_and_mutations_never_panic_and_what_decodes_re_encodes_exactly() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let k = key(MASTER, BACKUP);
    let sealed = samples();
    let plain: Vec<Vec<u8>> = sealed
        .iter()
        .map(|d| d[..d.len() - TAG_LEN].to_vec())
        .collect();
    let mut decoded = 0;
    let mut window = Window::new();
    for round in 0..200_000u64 {
        // Mutations of valid payloads, through decode and an unauthenticated open.
        let mut p = plain[(round % 4) as usize].clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut p);
        }
        if let Ok(m) = decode(&p) {
            decoded += 1;
            assert_eq!(m.encode(), p, "round {round}");
        }
        let _ = open(None, &mut window, &p);
        // Noise of any length, with or without the magic and version in front.
        let len = rng.below(200) as usize;
        let mut noise = rng.bytes(len);
        if round.is_multiple_of(2) && noise.len() >= 4 {
            noise[..3].copy_from_slice(b"SY\x01");
            noise[3] = rng.below(6) as u8;
        }
        let _ = decode(&noise);
        // One round in ten also through an authenticated open: never accepted.
        if round.is_multiple_of(10) {
            assert_eq!(
                open(Some(&k), &mut window, &noise),
                Err(Refused::Unauthenticated)
            );
            let mut d = sealed[(round % 4) as usize].clone();
            mutate(&mut rng, &mut d);
            let got = open(Some(&k), &mut Window::new(), &d);
            assert!(got.is_err() || sealed.contains(&d), "round {round}");
        }
    }
    // The mutations reach the end of decode often enough to mean something.
    assert!(decoded > 10_000, "{decoded}");
}
