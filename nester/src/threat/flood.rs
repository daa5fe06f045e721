//! Banned prefixes that flood. The accept loop refuses a banned client's connections, but
//! each still costs an accept, a reset and a log line; a prefix refused `kernel_after` times
//! within one second goes to the kernel instead (`net::kernel_filter`, on every listener)
//! until its ban ends, and its connections then never reach the nester. Listeners learn the
//! set through a watch channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use tokio::sync::watch;

/// Most prefixes counted at once; past it the counts start over (a flood of spoofed sources
/// cannot exhaust memory).
const MAX_COUNTED: usize = 10_000;

pub struct Floods {
    after: u32,
    state: Mutex<State>,
    tx: watch::Sender<Arc<[IpNet]>>,
}

#[derive(Default)]
struct State {
    /// Refusals per prefix in the current second: (second, count).
    counts: HashMap<IpNet, (i64, u32)>,
    /// Prefixes the kernel drops, and until when (Unix ms).
    dropped: BTreeMap<IpNet, i64>,
}

impl Floods {
    /// Floods of `after` refusals a second go to the kernel; 0 keeps them all in user space.
    pub fn new(after: u32) -> Self {
        Self {
            after,
            state: Mutex::default(),
            tx: watch::channel(Arc::from([])).0,
        }
    }

    /// The set the kernel drops, now and as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<[IpNet]>> {
        self.tx.subscribe()
    }

    /// A connection from `prefix`, banned until `until`, refused at `now_ms`. `true` when
    /// this refusal moved the prefix to the kernel.
    pub fn refused(&self, prefix: IpNet, now_ms: i64, until: i64) -> bool {
        if self.after == 0 {
            return false;
        }
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.dropped.contains_key(&prefix) {
            return false;
        }
        let second = now_ms.div_euclid(1000);
        if state.counts.len() >= MAX_COUNTED {
            state.counts.clear();
        }
        let count = state.counts.entry(prefix).or_insert((second, 0));
        if count.0 != second {
            *count = (second, 0);
        }
        count.1 += 1;
        if count.1 < self.after {
            return false;
        }
        state.counts.remove(&prefix);
        state.dropped.insert(prefix, until);
        self.publish(&state);
        true
    }

    /// Keeps in the kernel only the prefixes `banned_until` still bans (at `now_ms`).
    pub fn retain(&self, now_ms: i64, banned_until: impl Fn(&IpNet) -> Option<i64>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let before = state.dropped.len();
        state.dropped.retain(|prefix, until| {
            *until = banned_until(prefix).unwrap_or(0);
            *until > now_ms
        });
        if state.dropped.len() != before {
            self.publish(&state);
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.dropped.len())
    }

    fn publish(&self, state: &State) {
        let prefixes: Arc<[IpNet]> = state.dropped.keys().copied().collect();
        self.tx.send_replace(prefixes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_refused_often_within_a_second_goes_to_the_kernel_until_its_ban_ends() {
        let floods = Floods::new(3);
        let rx = floods.subscribe();
        let p: IpNet = "192.0.2.7/32".parse().unwrap();
        // Two a second for a while: slow enough for the accept loop.
        for s in 0..5 {
            assert!(!floods.refused(p, s * 1000, 60_000));
            assert!(!floods.refused(p, s * 1000 + 500, 60_000));
        }
        assert!(rx.borrow().is_empty());
        // Three within one second.
        assert!(!floods.refused(p, 9_000, 60_000));
        assert!(!floods.refused(p, 9_100, 60_000));
        assert!(floods.refused(p, 9_200, 60_000));
        assert_eq!(&rx.borrow()[..], [p]);
        assert!(!floods.refused(p, 9_300, 60_000), "moved once");
        // Still banned: stays; lifted or ended: leaves.
        floods.retain(30_000, |_| Some(60_000));
        assert_eq!(floods.len(), 1);
        floods.retain(30_000, |_| None);
        assert!(rx.borrow().is_empty());
        // 0: never.
        let never = Floods::new(0);
        for i in 0..100 {
            assert!(!never.refused(p, i, 60_000));
        }
    }
}
