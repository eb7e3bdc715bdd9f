use super::*;

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const PEER_HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const PEER_LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(priority: u8, interval: Duration) -> Settings {
    Settings {
        priority,
        advert_interval: interval,
        preempt: true,
        preempt_delay: Duration::ZERO,
        address: US,
    }
}

fn transitions(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn sends(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { priority } => Some(*priority),
            _ => None,
        })
        .collect()
}

#[test]
fn timers_match_the_rfc_formulas() {
    // RFC 5798 §6.1 with priority 100 and the default 1 s: skew 156/256 s.
    assert_eq!(skew_time(100, ms(1000)), Duration::from_micros(609_375));
    assert_eq!(
        master_down_interval(100, ms(1000)),
        Duration::from_micros(3_609_375)
    );
    // 100 ms adverts (keepalived's `advert_int 0.1`).
    assert_eq!(
        master_down_interval(100, ms(100)),
        Duration::from_micros(360_937)
    );
    // 20 ms adverts, priority 254: the fastest takeover the issue asks for.
    assert_eq!(skew_time(254, ms(20)), Duration::from_micros(156));
    assert_eq!(
        master_down_interval(254, ms(20)),
        Duration::from_micros(60_156)
    );
    // Priority 1: the skew is almost a whole interval.
    assert_eq!(skew_time(1, ms(1000)), Duration::from_micros(996_093));
}

#[test]
fn a_backup_alone_becomes_master_after_the_down_interval_and_not_before() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, ms(100)));
    assert_eq!(m.state(), State::Initialize);
    assert_eq!(m.deadline(), None);
    let a = m.start(t0);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Backup)]);
    assert!(sends(&a).is_empty());
    let down = Duration::from_micros(360_937);
    assert_eq!(m.deadline(), Some(t0 + down));
    assert!(m.tick(t0 + down - Duration::from_micros(1)).is_empty());
    assert_eq!(m.state(), State::Backup);
    let a = m.tick(t0 + down);
    assert_eq!(sends(&a), vec![100]);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
    assert!(matches!(
        &a[1],
        Action::Transition { reason: Reason::MasterDown { after }, .. } if *after == down
    ));
    assert_eq!(m.master(), Some(US));
    // As master: an advert every interval.
    assert_eq!(m.deadline(), Some(t0 + down + ms(100)));
    assert_eq!(sends(&m.tick(t0 + down + ms(100))), vec![100]);
    assert_eq!(m.deadline(), Some(t0 + down + ms(200)));
}

#[test]
fn the_address_owner_is_master_at_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(255, ms(1000)));
    let a = m.start(t0);
    assert_eq!(sends(&a), vec![255]);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Master)]);
    assert!(m.start(t0).is_empty(), "start twice does nothing");
}

#[test]
fn a_backup_follows_a_better_master_and_learns_its_interval() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, ms(1000)));
    m.start(t0);
    let t1 = t0 + ms(500);
    assert!(m.advert(t1, PEER_HIGH, 200, ms(20)).is_empty());
    assert_eq!(m.master(), Some(PEER_HIGH));
    assert_eq!(m.master_interval(), ms(20));
    // 3 × 20 ms + (156 × 20 ms)/256.
    assert_eq!(m.deadline(), Some(t1 + Duration::from_micros(72_187)));
    // Adverts keep it backup for as long as they come.
    let mut t = t1;
    for _ in 0..100 {
        t += ms(20);
        assert!(m.tick(t).is_empty());
        m.advert(t, PEER_HIGH, 200, ms(20));
    }
    assert_eq!(m.state(), State::Backup);
    // Then silence: master after the learned down interval.
    let a = m.tick(t + Duration::from_micros(72_187));
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
    // As master it advertises at its own configured interval again.
    assert_eq!(m.master_interval(), ms(1000));
}

#[test]
fn with_preemption_a_better_backup_takes_over_from_a_lower_master() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(200, ms(100)));
    m.start(t0);
    let t1 = t0 + ms(10);
    m.advert(t1, PEER_LOW, 100, ms(100));
    // Discarded: the timer set at start keeps running.
    let down = master_down_interval(200, ms(100));
    assert_eq!(m.deadline(), Some(t0 + down));
    let a = m.tick(t0 + down);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
    // Now the lower router's adverts do not move us.
    assert!(m
        .advert(t0 + down + ms(1), PEER_LOW, 100, ms(100))
        .is_empty());
    assert_eq!(m.state(), State::Master);
}

#[test]
fn without_preemption_a_better_backup_leaves_the_lower_master_alone() {
    let t0 = Instant::now();
    let mut s = settings(200, ms(100));
    s.preempt = false;
    let mut m = Machine::new(s);
    m.start(t0);
    let mut t = t0;
    for _ in 0..50 {
        t += ms(100);
        assert!(m.tick(t).is_empty());
        m.advert(t, PEER_LOW, 100, ms(100));
    }
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.master(), Some(PEER_LOW));
}

#[test]
fn preempt_delay_postpones_the_takeover() {
    let t0 = Instant::now();
    let mut s = settings(200, ms(100));
    s.preempt_delay = ms(1000);
    let mut m = Machine::new(s);
    m.start(t0);
    let down = master_down_interval(200, ms(100));
    let mut t = t0;
    let mut became = None;
    for _ in 0..40 {
        t += ms(100);
        if !transitions(&m.tick(t)).is_empty() {
            became = Some(t);
            break;
        }
        m.advert(t, PEER_LOW, 100, ms(100));
    }
    // First heard at t0+100ms; accepted until t0+1100ms, then the timer runs out
    // down interval after the last accepted advert (t0+1000ms).
    let became = became.expect("preempts after the delay");
    // Last accepted at 1000 ms, down interval 343.75 ms: the tick at 1400 ms takes over.
    assert_eq!(became, t0 + ms(1400));
    assert!(became >= t0 + ms(1100));
    assert!(became <= t0 + ms(1100) + down);
}

#[test]
fn a_resigning_master_is_replaced_after_the_skew_time() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, ms(1000)));
    m.start(t0);
    m.advert(t0 + ms(100), PEER_HIGH, 200, ms(1000));
    let t1 = t0 + ms(200);
    assert!(m.advert(t1, PEER_HIGH, 0, ms(1000)).is_empty());
    let skew = Duration::from_micros(609_375);
    assert_eq!(m.deadline(), Some(t1 + skew));
    let a = m.tick(t1 + skew);
    assert!(matches!(
        &a[1],
        Action::Transition { to: State::Master, reason: Reason::MasterResigned { after }, .. }
            if *after == skew
    ));
}

#[test]
fn a_master_yields_to_a_higher_priority_or_an_equal_one_with_a_higher_address() {
    let t0 = Instant::now();
    for (from, prio, yields) in [
        (PEER_LOW, 150, true),
        (PEER_LOW, 100, false),
        (PEER_HIGH, 100, true),
        (PEER_HIGH, 99, false),
    ] {
        let mut m = Machine::new(settings(100, ms(100)));
        m.start(t0);
        m.tick(t0 + ms(1000));
        assert_eq!(m.state(), State::Master);
        let t1 = t0 + ms(1010);
        let a = m.advert(t1, from, prio, ms(50));
        if yields {
            assert_eq!(
                transitions(&a),
                vec![(State::Master, State::Backup)],
                "{from} {prio}"
            );
            assert_eq!(m.master(), Some(from));
            assert_eq!(m.master_interval(), ms(50));
            assert_eq!(m.deadline(), Some(t1 + master_down_interval(100, ms(50))));
        } else {
            assert!(a.is_empty(), "{from} {prio}");
            assert_eq!(m.state(), State::Master);
        }
    }
}

#[test]
fn a_master_answers_a_resignation_at_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, ms(1000)));
    m.start(t0);
    m.tick(t0 + ms(5000));
    let t1 = t0 + ms(5300);
    assert_eq!(sends(&m.advert(t1, PEER_HIGH, 0, ms(1000))), vec![100]);
    assert_eq!(m.deadline(), Some(t1 + ms(1000)));
}

#[test]
fn shutdown_resigns_only_as_master() {
    let t0 = Instant::now();
    let mut m = Machine::new(settings(100, ms(100)));
    m.start(t0);
    m.tick(t0 + ms(1000));
    let a = m.shutdown();
    assert_eq!(sends(&a), vec![0]);
    assert_eq!(transitions(&a), vec![(State::Master, State::Initialize)]);
    assert_eq!(m.deadline(), None);
    assert!(m.advert(t0 + ms(1100), PEER_HIGH, 200, ms(100)).is_empty());
    assert!(m.shutdown().is_empty());

    let mut b = Machine::new(settings(100, ms(100)));
    b.start(t0);
    let a = b.shutdown();
    assert!(sends(&a).is_empty());
    assert_eq!(transitions(&a), vec![(State::Backup, State::Initialize)]);
}
