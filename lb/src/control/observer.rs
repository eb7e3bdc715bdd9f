//! The director in the cache cluster: joins the gossip as an observer (`cluster::section`)
//! and keeps the `backends = "cluster"` services' backends in step with the members.
//!
//! Contract: [`watch`] re-derives the backends (`cluster::fill`) on every change of the live
//! set and every [`RECHECK`] (a dead member that gossip forgets is no change of the live
//! set); when a cluster service's backend set differs from the running one, it logs the
//! change per service and applies it the way a reload does (`State::reconcile` under
//! `Inner::change`, then `health::restart`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::cluster::{fill, service_changes};
use super::{health, lock, Inner};
use crate::membership::Membership;

/// How often the members are looked at without a change notice.
pub(super) const RECHECK: Duration = Duration::from_secs(5);

impl Inner {
    /// Applies the current members to the cluster services when their backends changed.
    pub(super) fn refresh_cluster(self: &Arc<Self>) {
        let Some(membership) = self.membership.as_ref() else {
            return;
        };
        let members = membership.members();
        {
            let mut running = lock(&self.config);
            let new = fill(&running, &members);
            let changed = service_changes(&running, &new);
            if changed.is_empty() {
                return;
            }
            for (s, c) in &changed {
                tracing::info!(
                    vip = %s.vip,
                    added = ?c.added,
                    drained = ?c.drained,
                    reweighted = ?c.reweighted,
                    removed = ?c.removed,
                    "cluster backends changed"
                );
            }
            let links = self.links.clone();
            self.change("cluster membership", |state| {
                state.reconcile_joining(&new, SystemTime::now(), |m| links.initial_mac(m));
                ((), true)
            });
            *running = new;
        }
        health::restart(self);
    }
}

/// Follows the membership until `stop` (see the module doc).
pub(super) async fn watch(
    inner: Arc<Inner>,
    membership: Membership,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = membership.subscribe();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            changed = changes.changed() => if changed.is_err() {
                return;
            },
            _ = recheck.tick() => {}
        }
        inner.refresh_cluster();
    }
}
