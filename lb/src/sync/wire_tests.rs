//! Tests of the sync payload codec: the byte layout pinned, round trips of every kind, each
//! refusal and the order of the checks, stamps, and batching within the size bound.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, ServiceKey};
use crate::sync::batch::{Batch, Batcher};
use crate::sync::testutil::{record, records};

const STAMP: Stamp = Stamp {
    epoch: 0x0102_0304_0506_0708,
    seq: 0x1112_1314_1516_1718,
};

/// A NAT flow of 203.0.113.9:40000 to 192.0.2.1:443/TCP on 10.0.1.7:8443, 1.234 s old.
fn nat_flow() -> Record {
    let vip = [192, 0, 2, 1];
    Record {
        tuple: FiveTuple {
            src: [203, 0, 113, 9],
            dst: vip,
            sport: 40_000,
            dport: 443,
            proto: 6,
        },
        service: ServiceKey {
            vip,
            port: 443,
            proto: 6,
        },
        backend: SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 7), 8443),
        mode: Mode::Nat,
        state: FlowState::Open,
        age: Duration::from_millis(1234),
    }
}

fn message(body: Body) -> Message {
    Message { stamp: STAMP, body }
}

/// A valid `Records` payload of `n` flows, edited by `f`, decoded.
fn edited(n: u32, f: impl FnOnce(&mut Vec<u8>)) -> Result<Message, WireError> {
    let mut p = message(Body::Records(records(n))).encode();
    f(&mut p);
    decode(&p)
}

#[test]
fn the_byte_layout_is_the_documented_one() {
    let m = message(Body::BulkRecords {
        request: 0xa1a2_a3a4,
        chunk: 5,
        records: vec![nat_flow()],
    });
    #[rustfmt::skip]
    let want: &[u8] = &[
        // header: magic, version, type, epoch, seq, count, flags
        b'S', b'Y', 1, 3,
        1, 2, 3, 4, 5, 6, 7, 8,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0, 1, 0, 0,
        // prefix: request id, chunk index
        0xa1, 0xa2, 0xa3, 0xa4, 0, 0, 0, 5,
        // record: src, dst, sport, dport, proto, mode, state, reserved
        203, 0, 113, 9, 192, 0, 2, 1, 0x9c, 0x40, 0x01, 0xbb, 6, 2, 1, 0,
        // service: vip, port, proto, reserved
        192, 0, 2, 1, 0x01, 0xbb, 6, 0,
        // backend: ip, port, reserved; age in ms
        10, 0, 1, 7, 0x20, 0xfb, 0, 0, 0, 0, 0x04, 0xd2,
    ];
    assert_eq!(want.len(), HEADER_LEN + 8 + RECORD_LEN);
    assert_eq!(m.encode(), want);
    assert_eq!(decode(want), Ok(m));
}

#[test]
fn every_kind_round_trips() {
    let bodies = [
        Body::Records(records(40)),
        Body::Records(vec![]),
        Body::BulkRequest { request: 0 },
        Body::BulkRequest { request: u32::MAX },
        Body::BulkRecords {
            request: 7,
            chunk: u32::MAX,
            records: records(3),
        },
        Body::BulkRecords {
            request: 7,
            chunk: 0,
            records: vec![],
        },
        Body::BulkEnd {
            request: 7,
            total: 123_456,
        },
        Body::Ack(vec![0, 1, u64::MAX]),
        Body::Ack(vec![]),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let m = Message {
            stamp: Stamp {
                epoch: u64::MAX - i as u64,
                seq: i as u64,
            },
            body,
        };
        let p = m.encode();
        let prefix = [0, 4, 8, 8, 0][m.body.kind().to_wire() as usize - 1];
        let acked = match &m.body {
            Body::Ack(seqs) => seqs.len(),
            _ => 0,
        };
        assert_eq!(
            p.len(),
            HEADER_LEN + prefix + RECORD_LEN * m.body.records().len() + 8 * acked
        );
        assert_eq!(decode(&p), Ok(m), "body {i}");
    }
}

#[test]
fn the_age_is_whole_milliseconds_saturating() {
    let with_age = |age| Record { age, ..nat_flow() };
    let round = |r: Record| decode(&message(Body::Records(vec![r])).encode()).unwrap();
    let got = round(with_age(Duration::from_micros(1_999)));
    assert_eq!(got.body.records()[0].age, Duration::from_millis(1));
    let max = Duration::from_millis(u64::from(u32::MAX));
    let got = round(with_age(Duration::from_secs(100 * 86_400)));
    assert_eq!(got.body.records()[0].age, max);
    assert_eq!(round(with_age(max)).body.records()[0].age, max);
}

#[test]
fn encode_cuts_bodies_it_cannot_count() {
    let many = records(MAX_COUNT as u32 + 2);
    let p = message(Body::Records(many.clone())).encode();
    assert_eq!(p.len(), HEADER_LEN + MAX_COUNT * RECORD_LEN);
    assert_eq!(decode(&p).unwrap().body.records(), &many[..MAX_COUNT]);
}

#[test]
fn each_refusal_is_reported() {
    use RecordError as R;
    assert_eq!(decode(&[]), Err(WireError::Truncated));
    assert_eq!(decode(b"SY"), Err(WireError::Truncated));
    assert_eq!(
        edited(0, |p| p.truncate(HEADER_LEN - 1)),
        Err(WireError::Truncated)
    );
    assert_eq!(edited(1, |p| p[0] = b's'), Err(WireError::BadMagic));
    assert_eq!(edited(1, |p| p[2] = 0), Err(WireError::UnknownVersion(0)));
    assert_eq!(edited(1, |p| p[2] = 2), Err(WireError::UnknownVersion(2)));
    assert_eq!(edited(1, |p| p[3] = 0), Err(WireError::UnknownType(0)));
    assert_eq!(edited(1, |p| p[3] = 6), Err(WireError::UnknownType(6)));
    assert_eq!(edited(1, |p| p[22] = 0x80), Err(WireError::Reserved));
    assert_eq!(edited(1, |p| p[23] = 1), Err(WireError::Reserved));
    // The count against the length: too high, too low, trailing bytes, a cut record.
    assert_eq!(edited(2, |p| p[21] = 3), Err(WireError::CountMismatch(3)));
    assert_eq!(edited(2, |p| p[21] = 1), Err(WireError::CountMismatch(1)));
    assert_eq!(edited(2, |p| p.push(0)), Err(WireError::CountMismatch(2)));
    assert_eq!(
        edited(2, |p| p.truncate(p.len() - 1)),
        Err(WireError::CountMismatch(2))
    );
    assert_eq!(edited(0, |p| p[20] = 1), Err(WireError::CountMismatch(256)));
    // Kinds without records need a count of 0, and their whole prefix.
    let request = message(Body::BulkRequest { request: 9 }).encode();
    let end = message(Body::BulkEnd {
        request: 9,
        total: 1,
    })
    .encode();
    let mut p = end.clone();
    p[21] = 1;
    p.extend_from_slice(&[0; RECORD_LEN]);
    assert_eq!(decode(&p), Err(WireError::CountMismatch(1)));
    assert_eq!(
        decode(&request[..HEADER_LEN + 3]),
        Err(WireError::Truncated)
    );
    assert_eq!(decode(&end[..HEADER_LEN + 7]), Err(WireError::Truncated));
    let mut bulk = message(Body::BulkRecords {
        request: 1,
        chunk: 0,
        records: vec![],
    })
    .encode();
    bulk.truncate(HEADER_LEN + 4);
    assert_eq!(decode(&bulk), Err(WireError::Truncated));
    assert_eq!(
        decode(&[request.as_slice(), &[0]].concat()),
        Err(WireError::CountMismatch(0))
    );
    // Each record refusal names the record: the third of three here.
    let at = HEADER_LEN + 2 * RECORD_LEN;
    let bad = |off: usize, v: u8| edited(3, |p| p[at + off] = v);
    let refused = |why| Err(WireError::BadRecord { index: 2, why });
    assert_eq!(bad(12, 1), refused(R::Proto(1)));
    assert_eq!(bad(12, 0), refused(R::Proto(0)));
    assert_eq!(bad(13, 3), refused(R::Mode(3)));
    assert_eq!(bad(14, 3), refused(R::State(3)));
    assert_eq!(bad(22, 132), refused(R::ServiceProto(132)));
    for off in [15, 23, 30, 31] {
        assert_eq!(bad(off, 1), refused(R::Reserved), "offset {off}");
    }
    assert_eq!(
        WireError::BadRecord {
            index: 2,
            why: R::Mode(3)
        }
        .to_string(),
        "record 2: unknown mode 3"
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    // The version is read before the header's length: another version may be shorter.
    assert_eq!(decode(b"SY\x02"), Err(WireError::UnknownVersion(2)));
    assert_eq!(decode(b"SX\x02"), Err(WireError::BadMagic));
    // Type before flags before count before records.
    let all_wrong = |p: &mut Vec<u8>| {
        p[3] = 9;
        p[22] = 1;
        p[21] = 7;
        p[HEADER_LEN + 12] = 0;
    };
    assert_eq!(edited(2, all_wrong), Err(WireError::UnknownType(9)));
    assert_eq!(
        edited(2, |p| {
            all_wrong(p);
            p[3] = 1;
        }),
        Err(WireError::Reserved)
    );
    assert_eq!(
        edited(2, |p| {
            all_wrong(p);
            p[3] = 1;
            p[22] = 0;
        }),
        Err(WireError::CountMismatch(7))
    );
    // The first bad record is named; within a record, the protocol comes first.
    let at = HEADER_LEN + RECORD_LEN;
    assert_eq!(
        edited(3, |p| {
            p[at + 12] = 0;
            p[at + 13] = 9;
            p[at + RECORD_LEN + 14] = 9;
        }),
        Err(WireError::BadRecord {
            index: 1,
            why: RecordError::Proto(0)
        })
    );
}

#[test]
fn a_sequencer_counts_up_and_moves_to_the_next_epoch_at_the_end() {
    let mut s = Sequencer::new(42);
    for seq in 0..3 {
        assert_eq!(s.next_stamp(), Stamp { epoch: 42, seq });
    }
    let mut s = Sequencer {
        next: Stamp {
            epoch: 42,
            seq: u64::MAX - 1,
        },
    };
    assert_eq!(s.next_stamp().seq, u64::MAX - 1);
    assert_eq!(s.next_stamp().seq, u64::MAX);
    assert_eq!(s.next_stamp(), Stamp { epoch: 43, seq: 0 });
    let last = Stamp {
        epoch: u64::MAX,
        seq: u64::MAX,
    };
    let mut s = Sequencer { next: last };
    assert_eq!(s.next_stamp(), last);
    assert_eq!(s.next_stamp(), last);
}

#[test]
fn a_later_start_has_a_larger_epoch() {
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert!(epoch_at(t + Duration::from_nanos(1)) > epoch_at(t));
    assert_eq!(epoch_at(t), 1_700_000_000 * 1_000_000_000);
    assert_eq!(epoch_at(UNIX_EPOCH - Duration::from_secs(1)), 0);
    assert!(epoch_at(SystemTime::now()) > epoch_at(t));
}

#[test]
fn a_batcher_never_exceeds_max_len_and_keeps_order_and_chunks() {
    // 1472 bytes (a 1500-byte MTU), 16 of tag: 39 records.
    let b = Batcher::new(Batch::Records, 1472, 16).unwrap();
    assert_eq!(b.room(), (1472 - 16 - HEADER_LEN) / RECORD_LEN);
    assert_eq!(b.room(), 39);
    let flows = records(500);
    for max_len in (HEADER_LEN + 8 + RECORD_LEN + 16..=1600).step_by(7) {
        for batch in [Batch::Records, Batch::Bulk { request: 77 }] {
            let mut b = Batcher::new(batch, max_len, 16).unwrap();
            let mut seq = Sequencer::new(5);
            let mut payloads: Vec<Vec<u8>> =
                flows.iter().filter_map(|r| b.push(r, &mut seq)).collect();
            assert!(b.len() < b.room());
            payloads.extend(b.flush(&mut seq));
            assert!(b.is_empty());
            assert_eq!(b.sent(), 500);
            let mut got = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                assert!(p.len() + 16 <= max_len, "{} > {max_len}", p.len() + 16);
                let m = decode(p).unwrap();
                assert_eq!(
                    m.stamp,
                    Stamp {
                        epoch: 5,
                        seq: i as u64
                    }
                );
                match (batch, &m.body) {
                    (Batch::Records, Body::Records(r)) => got.extend_from_slice(r),
                    (
                        Batch::Bulk { .. },
                        Body::BulkRecords {
                            request,
                            chunk,
                            records,
                        },
                    ) => {
                        assert_eq!((*request, *chunk), (77, i as u32));
                        got.extend_from_slice(records);
                    }
                    other => panic!("unexpected {other:?}"),
                }
                // Every payload but the last is full.
                if i + 1 < payloads.len() {
                    assert_eq!(m.body.records().len(), b.room());
                }
            }
            assert_eq!(got, flows, "max_len {max_len}");
        }
    }
}

#[test]
fn a_batcher_needs_room_for_one_record_and_flushes_nothing_for_free() {
    let least = HEADER_LEN + RECORD_LEN + 16;
    assert!(Batcher::new(Batch::Records, least - 1, 16).is_none());
    assert!(Batcher::new(Batch::Bulk { request: 1 }, least + 7, 16).is_none());
    assert!(Batcher::new(Batch::Records, 10, 16).is_none());
    let mut b = Batcher::new(Batch::Records, least, 16).unwrap();
    assert_eq!(b.room(), 1);
    let mut seq = Sequencer::new(1);
    assert_eq!(b.flush(&mut seq), None);
    // One record fills it: handed out at once, with the first stamp.
    let p = b.push(&record(3), &mut seq).unwrap();
    assert_eq!(p.len(), least - 16);
    assert_eq!(decode(&p).unwrap().stamp.seq, 0);
    // A huge bound is capped by the 16-bit count.
    let b = Batcher::new(Batch::Records, usize::MAX, 16).unwrap();
    assert_eq!(b.room(), MAX_COUNT);
}

#[test]
fn names_are_stable() {
    let kinds = [
        Kind::Records,
        Kind::BulkRequest,
        Kind::BulkRecords,
        Kind::BulkEnd,
    ];
    let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        ["records", "bulk_request", "bulk_records", "bulk_end"]
    );
    for (i, k) in kinds.iter().enumerate() {
        assert_eq!(Kind::from_wire(k.to_wire()), Some(*k));
        assert_eq!(usize::from(k.to_wire()), i + 1);
    }
    let states = [FlowState::HalfOpen, FlowState::Open, FlowState::Closing];
    let names: Vec<_> = states.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["half_open", "open", "closing"]);
}
