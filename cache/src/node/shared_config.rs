//! The node's shared-config task: it follows the members' [`ConfigNote`]s and fetches, merges,
//! validates and installs the newest shared version a live member runs, or refuses it (see
//! `cluster::confdist` for the rules, which are pure, and the fetch).

use std::sync::Arc;

#[cfg(doc)]
use crate::cluster::confdist::ConfigNote;
use crate::cluster::confdist::{announce, fetch, offers, reasons, wanted, RECHECK};
use crate::cluster::Cluster;
use crate::config::shared::{self, Version};
use crate::http::ctx::Ctx;

/// The distribution task: on every note change (and every [`RECHECK`]) fetch and apply the
/// newest version a live member runs, if this node should (see the module doc). Ends with
/// the node's drain.
pub(crate) async fn run(ctx: Arc<Ctx>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return;
    };
    let mut notes = cluster.members.subscribe_notes();
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = notes.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        step(&ctx, cluster).await;
    }
}

/// One look at the members' notes; fetches and applies at most one version.
async fn step(ctx: &Ctx, cluster: &Cluster) {
    let members = cluster.members.members();
    let notes = cluster.members.notes();
    let offers = offers(cluster.members.self_id(), &members, &notes);
    let versions: Vec<Version> = offers.iter().map(|(_, n)| n.applied).collect();
    let own = cluster.config.lock().note();
    let Some(want) = wanted(&own, &versions) else {
        return;
    };
    if want.number == own.applied.number {
        let mut st = cluster.config.lock();
        if st.conflict_logged != Some(want) {
            st.conflict_logged = Some(want);
            tracing::warn!(running = %own.applied, other = %want,
                "two shared config versions with one number (reloads on two nodes at once): the larger hash wins");
        }
    }
    for (member, _) in offers.iter().filter(|(_, n)| n.applied == want) {
        match fetch(cluster, member, want).await {
            Ok(text) => {
                adopt(ctx, cluster, want, text);
                return;
            }
            Err(e) => tracing::warn!(member = %member.id, version = %want, error = %e,
                "shared config version not fetched"),
        }
    }
}

/// Merge `want` (its verified canonical `text`) into this node's file, validate and apply
/// it; or refuse it, keeping the running config. Announces the outcome.
fn adopt(ctx: &Ctx, cluster: &Cluster, want: Version, text: String) {
    let mut st = cluster.config.lock();
    // A reload or another fetch may have moved on meanwhile.
    if want <= st.applied || st.refused.as_ref().is_some_and(|(r, _)| want <= *r) {
        return;
    }
    let outcome = shared::merge(&st.file_text, &text).and_then(|merged| {
        let cfg = crate::config::parse(&merged).map_err(|d| reasons(&d))?;
        crate::node::install(ctx, &cfg, crate::reload::Source::Cluster)
    });
    match outcome {
        Ok(_) => {
            tracing::info!(version = %want, from = "cluster", "shared config applied");
            st.applied = want;
            st.applied_text = Arc::from(text);
            st.refused = None;
        }
        Err(reason) => {
            tracing::warn!(version = %want, %reason,
                "shared config refused; the running config stays");
            ctx.reloads
                .refused(crate::reload::Source::Cluster, vec![reason.clone()]);
            st.refused = Some((want, reason));
        }
    }
    announce(cluster, &st);
}
