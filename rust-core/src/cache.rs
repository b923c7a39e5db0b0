//! Answer cache: positive answers for their TTL, negative answers per
//! RFC 2308, bounded with least-recently-used eviction, TTLs aged on the way out.
//!
//! Entries are stored as the upstream's wire message with the offsets of
//! every TTL, so serving a hit is a copy and a few 4-byte patches.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

use crate::config::CacheConfig;
use crate::wire::{self, Layout, QuestionKey};

struct Entry {
    bytes: Vec<u8>,
    layout: Layout,
    /// Offsets of TTL fields to age, with the clamped TTL stored there.
    ttls: Vec<(usize, u32)>,
    stored: Instant,
    expires: Instant,
}

/// A cached answer ready to be adapted for a client.
#[derive(Debug, Clone)]
pub(crate) struct CachedAnswer {
    /// The upstream message with TTLs aged (ID still to be set).
    pub bytes: Vec<u8>,
    /// Its layout.
    pub layout: Layout,
}

/// The cache. Cheap to share: one mutex held only for a lookup or insert.
pub(crate) struct Cache {
    entries: Option<Mutex<LruCache<QuestionKey, Entry>>>,
    config: CacheConfig,
}

impl Cache {
    /// A cache with `config`; `max_entries == 0` disables it.
    pub(crate) fn new(config: CacheConfig) -> Cache {
        Cache {
            entries: NonZeroUsize::new(config.max_entries).map(|n| Mutex::new(LruCache::new(n))),
            config,
        }
    }

    /// The answer for `key`, with TTLs decremented by the time it has been
    /// cached; `None` when absent or expired.
    pub(crate) fn get(&self, key: &QuestionKey) -> Option<CachedAnswer> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        let now = Instant::now();
        let entry = entries.get(key)?;
        if now >= entry.expires {
            entries.pop(key);
            return None;
        }
        let elapsed = now.duration_since(entry.stored).as_secs() as u32;
        let mut bytes = entry.bytes.clone();
        for &(at, ttl) in &entry.ttls {
            bytes[at..at + 4].copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
        }
        Some(CachedAnswer {
            bytes,
            layout: entry.layout.clone(),
        })
    }

    /// Stores `response` to `key` if it may be cached: NOERROR with answers
    /// for their smallest TTL; NXDOMAIN or NODATA for the SOA's negative TTL
    /// (RFC 2308 §5); nothing truncated, failed, or without a TTL source.
    pub(crate) fn insert(&self, key: QuestionKey, response: &[u8], layout: &Layout) {
        let Some(entries) = &self.entries else {
            return;
        };
        let Some((ttl, ttls)) = self.cacheable_ttl(response, layout) else {
            return;
        };
        if ttl == 0 {
            return;
        }
        let mut bytes = response.to_vec();
        wire::set_id(&mut bytes, 0);
        for &(at, t) in &ttls {
            bytes[at..at + 4].copy_from_slice(&t.to_be_bytes());
        }
        let now = Instant::now();
        let entry = Entry {
            bytes,
            layout: layout.clone(),
            ttls,
            stored: now,
            expires: now + Duration::from_secs(ttl as u64),
        };
        if let Ok(mut entries) = entries.lock() {
            entries.put(key, entry);
        }
    }

    /// Entries held now (expired ones included until touched).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .as_ref()
            .and_then(|e| e.lock().ok().map(|e| e.len()))
            .unwrap_or(0)
    }

    /// Drops everything (the network changed: answers may be local to it).
    pub(crate) fn clear(&self) {
        if let Some(Ok(mut e)) = self.entries.as_ref().map(|e| e.lock()) {
            e.clear();
        }
    }

    fn clamp(&self, ttl: u32, max: Duration) -> u32 {
        let min = self.config.min_ttl.as_secs().min(u32::MAX as u64) as u32;
        let max = max.as_secs().min(u32::MAX as u64) as u32;
        ttl.max(min).min(max)
    }

    fn cacheable_ttl(&self, msg: &[u8], layout: &Layout) -> Option<(u32, Vec<(usize, u32)>)> {
        if wire::is_truncated(msg) {
            return None;
        }
        let rcode = wire::rcode(msg);
        let ext_rcode = layout.opt_record().map_or(0, |o| o.ttl >> 24);
        if ext_rcode != 0 {
            return None;
        }
        let answers = layout.records.iter().filter(|r| r.section == 1).count();
        let negative = match rcode {
            wire::RCODE_NOERROR if answers > 0 => false,
            wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => true,
            _ => return None,
        };
        let max = if negative {
            self.config.max_negative_ttl.min(self.config.max_ttl)
        } else {
            self.config.max_ttl
        };
        let mut ttls = Vec::with_capacity(layout.records.len());
        let mut entry_ttl = u32::MAX;
        for r in layout.records.iter().filter(|r| r.rtype != wire::TYPE_OPT) {
            let t = self.clamp(r.ttl, max);
            ttls.push((r.ttl_at, t));
            if !negative && r.section == 1 {
                entry_ttl = entry_ttl.min(t);
            }
        }
        if negative {
            // RFC 2308 §5: the negative TTL is the minimum of the SOA's own
            // TTL and its MINIMUM field.
            let soa = layout
                .records
                .iter()
                .find(|r| r.section == 2 && r.rtype == wire::TYPE_SOA)?;
            let minimum_at =
                wire::skip_name(msg, wire::skip_name(msg, soa.rdata_at).ok()?).ok()? + 16;
            if minimum_at + 4 != soa.end() {
                return None;
            }
            let minimum = u32::from_be_bytes(msg.get(minimum_at..minimum_at + 4)?.try_into().ok()?);
            entry_ttl = self.clamp(soa.ttl.min(minimum), max);
        }
        Some((entry_ttl, ttls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(rcode: u8, answer_ttl: Option<u32>, soa: Option<(u32, u32)>) -> Vec<u8> {
        let mut m = vec![0xAB, 0xCD, 0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
        if let Some(ttl) = answer_ttl {
            m[7] = 1;
            m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        }
        if let Some((ttl, minimum)) = soa {
            m[9] = 1;
            m.extend_from_slice(&[0xC0, 14, 0, 6, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 24, 0xC0, 14, 0xC0, 14]);
            for v in [1u32, 3600, 600, 86400, minimum] {
                m.extend_from_slice(&v.to_be_bytes());
            }
        }
        m
    }

    fn key() -> QuestionKey {
        let m = response(0, None, None);
        QuestionKey::of(&m, &Layout::parse(&m).unwrap())
            .unwrap()
            .unwrap()
    }

    fn ttl_of_first_record(c: &CachedAnswer) -> u32 {
        let at = c.layout.records[0].ttl_at;
        u32::from_be_bytes(c.bytes[at..at + 4].try_into().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn positive_answer_ages_and_expires() {
        let cache = Cache::new(CacheConfig::default());
        let m = response(0, Some(300), None);
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert_eq!(ttl_of_first_record(&cache.get(&key()).unwrap()), 300);
        tokio::time::advance(Duration::from_secs(100)).await;
        let hit = cache.get(&key()).unwrap();
        assert_eq!(ttl_of_first_record(&hit), 200);
        assert_eq!(wire::id(&hit.bytes), 0);
        tokio::time::advance(Duration::from_secs(200)).await;
        assert!(cache.get(&key()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn negative_answer_uses_soa_minimum_and_no_soa_is_not_cached() {
        let cache = Cache::new(CacheConfig::default());
        let m = response(wire::RCODE_NXDOMAIN, None, Some((3600, 60)));
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert!(cache.get(&key()).is_some());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.get(&key()).is_none());
        let m = response(wire::RCODE_NXDOMAIN, None, None);
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert!(cache.get(&key()).is_none());
        let m = response(wire::RCODE_SERVFAIL, None, None);
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert!(cache.get(&key()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn ttls_are_clamped() {
        let cache = Cache::new(CacheConfig {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(120),
            ..CacheConfig::default()
        });
        let m = response(0, Some(5), None);
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert_eq!(ttl_of_first_record(&cache.get(&key()).unwrap()), 60);
        let m = response(0, Some(100_000), None);
        cache.insert(key(), &m, &Layout::parse(&m).unwrap());
        assert_eq!(ttl_of_first_record(&cache.get(&key()).unwrap()), 120);
    }

    #[tokio::test(start_paused = true)]
    async fn lru_evicts_least_recently_used() {
        let cache = Cache::new(CacheConfig {
            max_entries: 2,
            ..CacheConfig::default()
        });
        let m = response(0, Some(300), None);
        let layout = Layout::parse(&m).unwrap();
        let k = |t: u16| QuestionKey { qtype: t, ..key() };
        cache.insert(k(1), &m, &layout);
        cache.insert(k(2), &m, &layout);
        assert!(cache.get(&k(1)).is_some()); // 1 is now most recent
        cache.insert(k(3), &m, &layout);
        assert!(cache.get(&k(2)).is_none());
        assert!(cache.get(&k(1)).is_some());
        assert!(cache.get(&k(3)).is_some());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn key_distinguishes_case_insensitively_but_by_do_bit() {
        let a = key();
        let mut upper = response(0, None, None);
        upper[13] = b'A';
        let b = QuestionKey::of(&upper, &Layout::parse(&upper).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        let c = QuestionKey {
            dnssec_ok: true,
            ..a.clone()
        };
        assert_ne!(a, c);
    }
}
