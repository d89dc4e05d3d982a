//! A short-lived, in-process cache for the hottest reads of tools: API-token authentication,
//! tenancy resolution and project lists.
//!
//! Entries remember the write generation they were read at. Every unsafe request (POST, PUT,
//! PATCH, DELETE) this process answers bumps the generation before its response leaves, so the
//! next request after any write reads the database again: a revoked token, a demoted member or
//! a new project is seen at once. Replicas (`sluice api` ×N) keep it too when they share a bus
//! (Redis or PostgreSQL, `sluice_core::bus`): every write is announced before its response
//! leaves and bumps every replica's generation, and while the bus is down nothing is served
//! from the cache. Without a bus, replicas run with the cache off.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use sluice_core::tenancy::{Principal, TenantScope};

/// Entries older than this are read again even without a write (token expiry and
/// `last_used_at` stay close to the truth).
const TTL: Duration = Duration::from_secs(30);
/// Each map is emptied when it grows past this many entries.
const MAX_ENTRIES: usize = 10_000;

struct Entry<T> {
    generation: u64,
    stored: Instant,
    value: T,
}

/// Which org, as which principal.
pub type ScopeKey = (i64, Option<i64>, String);
/// Which page of which org's list.
pub type ListKey = (i64, Option<u64>, Option<String>);

/// The cache; disabled, it stores nothing and every lookup misses.
pub struct ReadCache {
    enabled: bool,
    /// The bus whose health the cache depends on (replicas).
    bus: std::sync::OnceLock<sluice_core::bus::Bus>,
    generation: AtomicU64,
    principals: Mutex<HashMap<String, Entry<Principal>>>,
    scopes: Mutex<HashMap<ScopeKey, Entry<TenantScope>>>,
    project_lists: Mutex<HashMap<ListKey, Entry<Bytes>>>,
}

impl ReadCache {
    pub fn new(enabled: bool) -> ReadCache {
        ReadCache {
            enabled,
            bus: std::sync::OnceLock::new(),
            generation: AtomicU64::new(0),
            principals: Mutex::new(HashMap::new()),
            scopes: Mutex::new(HashMap::new()),
            project_lists: Mutex::new(HashMap::new()),
        }
    }

    /// The current write generation; read it before reading the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Serves from the cache only while `bus` is connected.
    pub fn follow(&self, bus: sluice_core::bus::Bus) {
        let _ = self.bus.set(bus);
    }

    fn trusted(&self) -> bool {
        self.enabled && self.bus.get().is_none_or(|b| b.healthy())
    }

    /// Whether lookups may be answered from the cache now (on, and its bus connected).
    pub fn trusted_now(&self) -> bool {
        self.trusted()
    }

    /// Whether some token's principal is cached and current (for tests and diagnostics).
    pub fn principal_cached(&self) -> bool {
        let current = self.generation();
        self.trusted()
            && self
                .principals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .values()
                .any(|e| e.generation == current && e.stored.elapsed() < TTL)
    }

    /// Marks everything cached so far as stale (after a write).
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn get<K: Eq + Hash, T: Clone>(&self, map: &Mutex<HashMap<K, Entry<T>>>, key: &K) -> Option<T> {
        if !self.trusted() {
            return None;
        }
        let current = self.generation();
        let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key)
            .filter(|e| e.generation == current && e.stored.elapsed() < TTL)
            .map(|e| e.value.clone())
    }

    fn put<K: Eq + Hash, T>(
        &self,
        map: &Mutex<HashMap<K, Entry<T>>>,
        key: K,
        generation: u64,
        value: T,
    ) {
        if !self.trusted() || generation != self.generation() {
            return;
        }
        let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                generation,
                stored: Instant::now(),
                value,
            },
        );
    }

    /// The principal of a token, by the token's hash (and the Basic-auth email, if any).
    pub fn principal(&self, key: &str) -> Option<Principal> {
        self.get(&self.principals, &key.to_owned())
    }

    pub fn put_principal(&self, key: String, generation: u64, principal: Principal) {
        self.put(&self.principals, key, generation, principal);
    }

    pub fn scope(&self, key: &ScopeKey) -> Option<TenantScope> {
        self.get(&self.scopes, key)
    }

    pub fn put_scope(&self, key: ScopeKey, generation: u64, scope: TenantScope) {
        self.put(&self.scopes, key, generation, scope);
    }

    /// A serialized page of an org's project list.
    pub fn project_list(&self, key: &ListKey) -> Option<Bytes> {
        self.get(&self.project_lists, key)
    }

    pub fn put_project_list(&self, key: ListKey, generation: u64, body: Bytes) {
        self.put(&self.project_lists, key, generation, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_makes_every_earlier_entry_stale() {
        let cache = ReadCache::new(true);
        let key: ListKey = (1, None, None);
        let before = cache.generation();
        cache.put_project_list(key.clone(), before, Bytes::from_static(b"[]"));
        assert_eq!(cache.project_list(&key).as_deref(), Some(&b"[]"[..]));
        cache.bump();
        assert!(cache.project_list(&key).is_none(), "stale after a write");
        // A read that began before the write must not store what it read.
        cache.put_project_list(key.clone(), before, Bytes::from_static(b"old"));
        assert!(cache.project_list(&key).is_none());
    }

    #[test]
    fn a_disabled_cache_stores_nothing() {
        let cache = ReadCache::new(false);
        cache.put_project_list(
            (1, None, None),
            cache.generation(),
            Bytes::from_static(b"[]"),
        );
        assert!(cache.project_list(&(1, None, None)).is_none());
    }
}
