//! In-flight coalescing: identical queries arriving while one is already
//! being resolved wait for its answer instead of each going upstream.
//!
//! The first query for a key becomes the *leader* and resolves it; later
//! ones are *followers* and wait. The leader's [`Leader::complete`] hands
//! every follower the value. A leader that is dropped first (its client went
//! away and the future was cancelled) releases its followers with `None`, so
//! none is left waiting on an answer that never comes: they then resolve on
//! their own.

use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};
use std::sync::Mutex;

use tokio::sync::oneshot;

/// The keys being resolved, each with the followers waiting for its value.
pub(crate) struct InFlight<K, V> {
    waiting: Mutex<HashMap<K, Vec<oneshot::Sender<V>>>>,
}

/// What joining a key made of the caller.
pub(crate) enum Join<'a, K: Eq + Hash, V> {
    /// Nothing was in flight for the key: the caller resolves it and
    /// completes the guard.
    Leader(Leader<'a, K, V>),
    /// Another caller is resolving the key: wait for its value.
    Follower(Follower<V>),
}

/// The leader's duty to release its followers, by value or, when dropped,
/// empty-handed.
pub(crate) struct Leader<'a, K: Eq + Hash, V> {
    map: &'a InFlight<K, V>,
    /// `None` once completed, so that dropping afterwards does not remove
    /// the entry of a newer leader for the same key.
    key: Option<&'a K>,
}

/// A follower's wait for the leader's value.
pub(crate) struct Follower<V> {
    value: oneshot::Receiver<V>,
}

impl<K: Eq + Hash + Clone, V: Clone> InFlight<K, V> {
    /// An empty map.
    pub(crate) fn new() -> InFlight<K, V> {
        InFlight {
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// Leads the resolution of `key` if none is in flight, or follows the
    /// one that is.
    pub(crate) fn join<'a>(&'a self, key: &'a K) -> Join<'a, K, V> {
        let mut waiting = self.lock();
        match waiting.get_mut(key) {
            Some(followers) => {
                let (tx, rx) = oneshot::channel();
                followers.push(tx);
                Join::Follower(Follower { value: rx })
            }
            None => {
                waiting.insert(key.clone(), Vec::new());
                Join::Leader(Leader {
                    map: self,
                    key: Some(key),
                })
            }
        }
    }
}

impl<K: Eq + Hash, V> InFlight<K, V> {
    /// A panic while the map was held left it consistent (each change is
    /// one insert or remove), so a poisoned lock is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Vec<oneshot::Sender<V>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Eq + Hash, V: Clone> Leader<'_, K, V> {
    /// Hands `value` to every follower and ends the key's flight: the next
    /// query for it leads again.
    pub(crate) fn complete(mut self, value: V) {
        for follower in self.take() {
            // A follower that gave up has dropped its receiver; nothing to do.
            let _ = follower.send(value.clone());
        }
    }
}

impl<K: Eq + Hash, V> Leader<'_, K, V> {
    /// Ends the key's flight, once: the followers it had.
    fn take(&mut self) -> Vec<oneshot::Sender<V>> {
        let Some(key) = self.key.take() else {
            return Vec::new();
        };
        self.map.lock().remove(key).unwrap_or_default()
    }
}

impl<K: Eq + Hash, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        // Dropping the senders wakes the followers with `None`.
        drop(self.take());
    }
}

impl<V> Follower<V> {
    /// The leader's value, or `None` if the leader was dropped without one.
    pub(crate) async fn wait(self) -> Option<V> {
        self.value.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader<'a>(
        map: &'a InFlight<u32, &'static str>,
        key: &'a u32,
    ) -> Leader<'a, u32, &'static str> {
        match map.join(key) {
            Join::Leader(l) => l,
            Join::Follower(_) => panic!("key {key} was already in flight"),
        }
    }

    fn follower(map: &InFlight<u32, &'static str>, key: &u32) -> Follower<&'static str> {
        match map.join(key) {
            Join::Follower(f) => f,
            Join::Leader(_) => panic!("key {key} was not in flight"),
        }
    }

    #[tokio::test]
    async fn followers_get_the_leaders_value() {
        let map = InFlight::new();
        let lead = leader(&map, &1);
        let first = follower(&map, &1);
        let second = follower(&map, &1);
        lead.complete("answer");
        assert_eq!(first.wait().await, Some("answer"));
        assert_eq!(second.wait().await, Some("answer"));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers_empty_handed() {
        let map = InFlight::new();
        let lead = leader(&map, &1);
        let waiting = follower(&map, &1);
        drop(lead);
        assert_eq!(waiting.wait().await, None);
        // The key is free again: a follower that asks on its own leads.
        drop(leader(&map, &1));
    }

    #[tokio::test]
    async fn after_completion_the_next_query_leads_again() {
        let map = InFlight::new();
        leader(&map, &1).complete("first");
        let again = leader(&map, &1);
        let waiting = follower(&map, &1);
        again.complete("second");
        assert_eq!(waiting.wait().await, Some("second"));
    }

    #[tokio::test]
    async fn a_completed_leader_leaves_a_newer_flight_alone() {
        let map = InFlight::new();
        // Another thread may lead between `complete` ending the flight and
        // its guard being dropped: that drop must not end the newer flight.
        let mut old = leader(&map, &1);
        drop(old.take());
        let newer = leader(&map, &1);
        let waiting = follower(&map, &1);
        drop(old);
        newer.complete("newer");
        assert_eq!(waiting.wait().await, Some("newer"));
    }

    #[tokio::test]
    async fn distinct_keys_do_not_coalesce() {
        let map = InFlight::new();
        let one = leader(&map, &1);
        let two = leader(&map, &2);
        let waiting_on_two = follower(&map, &2);
        drop(one);
        two.complete("two");
        assert_eq!(waiting_on_two.wait().await, Some("two"));
    }
}
