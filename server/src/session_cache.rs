//! Sessions are read on every request. This keeps the records in memory in front of the SQLite
//! store: reads come from memory, every write and delete goes to SQLite first, so the database
//! stays the truth and a restart loses nothing.
//!
//! Safe because this process is the only writer of the sessions table while it runs (`pulse
//! rotate-key` requires Pulse to be stopped). Two rules keep a deleted session from coming back:
//! a record loaded from (or saved to) SQLite is only cached when no delete happened meanwhile, and
//! an expired record is never served. Revocation does not depend on this cache at all: revoked
//! bindings are refused by `Core` on every request.
use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};

/// Records kept at most; when full, expired ones go first, then everything (reloaded on demand).
pub const CAPACITY: usize = 10_000;

/// Cloned by the session layer per service; the clones share one cache.
#[derive(Clone)]
pub struct CachedStore<S> {
    inner: S,
    records: Arc<Mutex<HashMap<Id, Record>>>,
    /// Counts deletes, so a read or write that raced with one does not cache a stale record.
    deletes: Arc<AtomicU64>,
    capacity: usize,
}

impl<S> CachedStore<S> {
    pub fn new(inner: S, capacity: usize) -> Self {
        CachedStore {
            inner,
            records: Arc::new(Mutex::new(HashMap::new())),
            deletes: Arc::new(AtomicU64::new(0)),
            capacity,
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Caches `record` unless a delete happened since `deletes_before` was read.
    fn remember(&self, record: &Record, deletes_before: u64) {
        let mut records = self.records();
        if self.deletes.load(Ordering::SeqCst) != deletes_before {
            records.remove(&record.id);
            return;
        }
        if records.len() >= self.capacity && !records.contains_key(&record.id) {
            let now = OffsetDateTime::now_utc();
            records.retain(|_, r| r.expiry_date > now);
            if records.len() >= self.capacity {
                records.clear();
            }
        }
        records.insert(record.id, record.clone());
    }

    fn forget(&self, id: &Id) {
        self.records().remove(id);
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("cached", &self.records().len())
            .finish()
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for CachedStore<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let deletes = self.deletes.load(Ordering::SeqCst);
        self.inner.create(record).await?;
        self.remember(record, deletes);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let deletes = self.deletes.load(Ordering::SeqCst);
        self.inner.save(record).await?;
        self.remember(record, deletes);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let cached = self.records().get(id).cloned();
        if let Some(record) = cached {
            if record.expiry_date > OffsetDateTime::now_utc() {
                return Ok(Some(record));
            }
            self.forget(id);
            return Ok(None);
        }
        let deletes = self.deletes.load(Ordering::SeqCst);
        let loaded = self.inner.load(id).await?;
        if let Some(record) = &loaded {
            self.remember(record, deletes);
        }
        Ok(loaded)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.forget(id);
        let result = self.inner.delete(id).await;
        // A load that started before the delete reached SQLite may have cached the record since.
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.forget(id);
        result
    }
}

#[cfg(test)]
mod tests {
    use tower_sessions::MemoryStore;

    use super::*;

    fn record(id: i128, expires_in: time::Duration) -> Record {
        Record {
            id: Id(id),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn reads_come_from_memory_and_writes_reach_the_store() -> session_store::Result<()> {
        let inner = MemoryStore::default();
        let store = CachedStore::new(inner.clone(), 10);
        let mut r = record(1, time::Duration::hours(1));
        store.create(&mut r).await?;
        assert!(inner.load(&r.id).await?.is_some(), "written through");
        // Gone from the store behind the cache's back: the cache still answers (it is the reader).
        inner.delete(&r.id).await?;
        assert!(store.load(&r.id).await?.is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_deleted_session_is_gone_from_both() -> session_store::Result<()> {
        let inner = MemoryStore::default();
        let store = CachedStore::new(inner.clone(), 10);
        let mut r = record(1, time::Duration::hours(1));
        store.create(&mut r).await?;
        store.delete(&r.id).await?;
        assert!(store.load(&r.id).await?.is_none());
        assert!(inner.load(&r.id).await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn an_expired_record_is_never_served() -> session_store::Result<()> {
        let store = CachedStore::new(MemoryStore::default(), 10);
        let mut r = record(1, time::Duration::hours(1));
        store.create(&mut r).await?;
        r.expiry_date = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        store.remember(&r, store.deletes.load(Ordering::SeqCst));
        assert!(store.load(&r.id).await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn a_record_read_while_a_delete_ran_is_not_cached() -> session_store::Result<()> {
        let store = CachedStore::new(MemoryStore::default(), 10);
        let r = record(1, time::Duration::hours(1));
        let before = store.deletes.load(Ordering::SeqCst);
        store.delete(&Id(99)).await?;
        store.remember(&r, before);
        assert!(store.records().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_full_cache_makes_room() -> session_store::Result<()> {
        let store = CachedStore::new(MemoryStore::default(), 2);
        for id in 1..=3 {
            store.create(&mut record(id, time::Duration::hours(1))).await?;
        }
        assert!(store.records().len() <= 2);
        assert!(
            store.load(&Id(1)).await?.is_some(),
            "evicted records load from the store"
        );
        Ok(())
    }
}
