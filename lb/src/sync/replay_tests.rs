//! Tests of the replay window: order, reordering, duplicates, the window's edge, jumps,
//! epochs, the ends of `u64`, and a random walk checked against a plain set.

use std::collections::HashSet;

use super::*;
use crate::packet::testutil::Rng;

fn at(epoch: u64, seq: u64) -> Stamp {
    Stamp { epoch, seq }
}

const NEW: Result<(), Replay> = Ok(());
const DUP: Result<(), Replay> = Err(Replay::Duplicate);
const OLD: Result<(), Replay> = Err(Replay::TooOld);
const STALE: Result<(), Replay> = Err(Replay::Stale);

/// Feeds `steps` (epoch, sequence number, what `accept` must answer) to `w`.
fn feed(w: &mut Window, steps: &[(u64, u64, Result<(), Replay>)]) {
    for &(epoch, seq, want) in steps {
        assert_eq!(w.accept(at(epoch, seq)), want, "epoch {epoch} seq {seq}");
    }
}

#[test]
fn in_order_numbers_are_new_once() {
    let mut w = Window::new();
    assert_eq!(w.epoch(), None);
    for seq in 0..5_000 {
        feed(&mut w, &[(7, seq, NEW), (7, seq, DUP)]);
    }
    assert_eq!(w.epoch(), Some(7));
}

#[test]
fn the_first_stamp_may_be_any() {
    let steps = [(3, 123_456, NEW), (3, 123_455, NEW), (3, 123_456, DUP)];
    feed(&mut Window::new(), &steps);
}

#[test]
fn reordered_numbers_inside_the_window_are_accepted_once() {
    let mut w = Window::new();
    feed(&mut w, &[(1, 100, NEW)]);
    for seq in [95, 99, 97, 98, 96, 3] {
        feed(&mut w, &[(1, seq, NEW)]);
    }
    for seq in [95, 99, 100, 3] {
        feed(&mut w, &[(1, seq, DUP)]);
    }
    feed(&mut w, &[(1, 101, NEW)]);
}

#[test]
fn the_window_covers_exactly_1024_numbers() {
    let mut w = Window::new();
    feed(&mut w, &[(1, 5_000, NEW)]);
    assert_eq!(w.check(at(1, 5_000 - (WINDOW - 1))), NEW);
    assert_eq!(w.check(at(1, 5_000 - WINDOW)), OLD);
    assert_eq!(w.check(at(1, 0)), OLD);
    // Every number of the window accepted, in reverse, then all refused.
    for seq in (5_000 - (WINDOW - 1)..5_000).rev() {
        feed(&mut w, &[(1, seq, NEW)]);
    }
    for seq in 5_000 - (WINDOW - 1)..=5_000 {
        assert_eq!(w.check(at(1, seq)), DUP, "{seq}");
    }
}

#[test]
fn a_far_jump_forgets_what_fell_out_of_the_window() {
    let mut w = Window::new();
    for seq in 0..200 {
        feed(&mut w, &[(1, seq, NEW)]);
    }
    feed(&mut w, &[(1, 1_000_000, NEW)]);
    assert_eq!(w.check(at(1, 150)), OLD);
    // Numbers just behind the new top were never seen: new, whatever word they reuse.
    for seq in 1_000_000 - (WINDOW - 1)..1_000_000 {
        assert_eq!(w.check(at(1, seq)), NEW, "{seq}");
    }
    // Moves of exactly 16 and 17 blocks of 64 clear the reused words too.
    for jump in [16 * 64, 17 * 64, 16 * 64 + 63, 1] {
        let mut w = Window::new();
        for seq in 0..1_024 {
            feed(&mut w, &[(1, seq, NEW)]);
        }
        let top = 1_023 + jump;
        feed(&mut w, &[(1, top, NEW)]);
        for seq in top.saturating_sub(WINDOW - 1)..top {
            let want = if seq < 1_024 { DUP } else { NEW };
            assert_eq!(w.check(at(1, seq)), want, "jump {jump} seq {seq}");
        }
    }
}

#[test]
fn check_does_not_record() {
    let mut w = Window::new();
    assert_eq!(w.check(at(1, 5)), NEW);
    assert_eq!(w.check(at(1, 5)), NEW);
    assert_eq!(w.epoch(), None);
    feed(&mut w, &[(1, 5, NEW)]);
    assert_eq!(w.check(at(1, 4)), NEW);
    feed(&mut w, &[(1, 4, NEW)]);
}

#[test]
fn a_higher_epoch_resets_and_a_lower_one_is_stale() {
    let mut w = Window::new();
    for seq in 0..50 {
        feed(&mut w, &[(10, seq, NEW)]);
    }
    #[rustfmt::skip]
    feed(&mut w, &[
        // The peer restarted: its numbers start again.
        (11, 0, NEW), (11, 0, DUP), (11, 49, NEW),
        // Anything from before the restart is refused, even numbers never seen.
        (10, 50, STALE), (10, 1_000_000, STALE), (0, 0, STALE),
        // A far higher epoch is a restart too.
        (u64::MAX, 7, NEW), (u64::MAX - 1, 8, STALE), (u64::MAX, 6, NEW),
    ]);
    assert_eq!(w.epoch(), Some(u64::MAX));
}

#[test]
fn the_ends_of_u64_do_not_overflow() {
    let top = u64::MAX;
    let mut w = Window::new();
    #[rustfmt::skip]
    feed(&mut w, &[
        (0, top - 5, NEW), (0, top, NEW), (0, top, DUP), (0, top - 5, DUP),
        (0, top - (WINDOW - 1), NEW), (0, top - WINDOW, OLD), (0, 0, OLD),
    ]);
    // From 0 to the top in one jump.
    feed(
        &mut Window::new(),
        &[(0, 0, NEW), (0, top, NEW), (0, 0, OLD)],
    );
    // Below the first window: nothing under 0 to fall out.
    feed(&mut Window::new(), &[(0, 3, NEW), (0, 0, NEW), (0, 0, DUP)]);
}

#[test]
fn a_random_walk_agrees_with_a_plain_set() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = Window::new();
    let mut accepted = HashSet::new();
    let mut top = 0u64;
    for step in 0..100_000 {
        let seq = match rng.below(10) {
            // Mostly near the top, either side.
            0..=6 => (top + rng.below(80)).saturating_sub(40),
            // Around the window's edge.
            7 | 8 => (top + rng.below(40)).saturating_sub(WINDOW + 20),
            // A jump.
            _ => top + rng.below(3_000),
        };
        let want = if accepted.is_empty() || seq > top {
            Ok(())
        } else if top - seq >= WINDOW {
            Err(Replay::TooOld)
        } else if accepted.contains(&seq) {
            Err(Replay::Duplicate)
        } else {
            Ok(())
        };
        assert_eq!(
            w.accept(at(1, seq)),
            want,
            "step {step} seq {seq} top {top}"
        );
        if want.is_ok() {
            accepted.insert(seq);
            top = top.max(seq);
        }
    }
}
