//! Maps keyed by the integer ids traces use. Go numbers strings, stacks, goroutines, procs
//! and threads densely from 0 or 1 up, so most ids index a vector (no hashing on the hot
//! path); an id far beyond the ids seen (a hostile trace can name any u64) goes to a hash
//! map instead, so memory stays proportional to the entries.

use crate::spec::IdMap;

/// Ids below this always index the vector.
const DENSE_MIN: u64 = 1 << 12;

/// An id type: goroutine, proc and thread ids are i64 (negative ones mean none and go to
/// the map), table ids u64.
pub(crate) trait Id: Copy {
    fn raw(self) -> u64;
    fn from_raw(raw: u64) -> Self;
}

impl Id for u64 {
    #[inline]
    fn raw(self) -> u64 {
        self
    }
    #[inline]
    fn from_raw(raw: u64) -> Self {
        raw
    }
}

impl Id for i64 {
    #[inline]
    fn raw(self) -> u64 {
        self as u64
    }
    #[inline]
    fn from_raw(raw: u64) -> Self {
        raw as i64
    }
}

/// `id` as a vector index (always, on 64-bit targets).
#[inline]
fn slot(id: u64) -> Option<usize> {
    usize::try_from(id).ok()
}

/// A map from ids to `V`: a vector for dense ids, a hash map for sparse ones. An id is in
/// exactly one of the two: `id < dense.len()` in the vector, else in the map. The vector
/// grows to hold an id only while it stays under 4 × (insertions + 1) slots (and always to
/// 4,096), so memory is proportional to what the trace declared.
#[derive(Debug, Clone)]
pub(crate) struct IdVec<K, V> {
    dense: Vec<Option<V>>,
    sparse: IdMap<u64, V>,
    /// Insertions ever (removals do not count down): the vector may grow to a few times
    /// this, so ids that keep counting up while few are live (goroutines) stay dense.
    inserted: usize,
    key: std::marker::PhantomData<K>,
}

impl<K, V> Default for IdVec<K, V> {
    fn default() -> Self {
        IdVec {
            dense: Vec::new(),
            sparse: IdMap::default(),
            inserted: 0,
            key: std::marker::PhantomData,
        }
    }
}

impl<K: Id, V> IdVec<K, V> {
    #[inline]
    pub fn get(&self, id: K) -> Option<&V> {
        let id = id.raw();
        if let Some(v) = slot(id).and_then(|i| self.dense.get(i)) {
            return v.as_ref();
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(&id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: K) -> Option<&mut V> {
        let id = id.raw();
        if let Some(i) = slot(id)
            && i < self.dense.len()
        {
            return self.dense[i].as_mut();
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get_mut(&id)
    }

    pub fn contains_key(&self, id: K) -> bool {
        self.get(id).is_some()
    }

    /// Makes the vector hold `id` if that keeps it at most a few times the entries (and
    /// moves the map's entries it now covers into it).
    fn grow_for(&mut self, id: u64) -> bool {
        if id < self.dense.len() as u64 {
            return true;
        }
        let cap = (4 * (self.inserted as u64 + 1)).max(DENSE_MIN);
        if id >= cap {
            return false;
        }
        let new_len = (id + 1).max(2 * self.dense.len() as u64).min(cap) as usize;
        self.dense.resize_with(new_len, || None);
        if !self.sparse.is_empty() {
            let moved: Vec<u64> = self
                .sparse
                .keys()
                .copied()
                .filter(|&k| k < new_len as u64)
                .collect();
            for k in moved {
                if let Some(v) = self.sparse.remove(&k) {
                    self.dense[k as usize] = Some(v);
                }
            }
        }
        true
    }

    /// Inserts; returns the old value.
    pub fn insert(&mut self, id: K, v: V) -> Option<V> {
        let id = id.raw();
        let old = if self.grow_for(id) {
            self.dense[id as usize].replace(v)
        } else {
            self.sparse.insert(id, v)
        };
        if old.is_none() {
            self.inserted += 1;
        }
        old
    }

    /// The entry of `id`, inserted by `f` when absent.
    #[inline]
    pub fn get_or_insert_with(&mut self, id: K, f: impl FnOnce() -> V) -> &mut V {
        let id = id.raw();
        if let Some(i) = slot(id)
            && i < self.dense.len()
        {
            let s = &mut self.dense[i];
            if s.is_none() {
                self.inserted += 1;
            }
            return s.get_or_insert_with(f);
        }
        self.get_or_insert_slow(id, f)
    }

    #[inline(never)]
    fn get_or_insert_slow(&mut self, id: u64, f: impl FnOnce() -> V) -> &mut V {
        if self.grow_for(id) {
            let slot = &mut self.dense[id as usize];
            if slot.is_none() {
                self.inserted += 1;
            }
            slot.get_or_insert_with(f)
        } else {
            let inserted = &mut self.inserted;
            self.sparse.entry(id).or_insert_with(|| {
                *inserted += 1;
                f()
            })
        }
    }

    pub fn remove(&mut self, id: K) -> Option<V> {
        let id = id.raw();
        if let Some(i) = slot(id)
            && i < self.dense.len()
        {
            self.dense[i].take()
        } else if self.sparse.is_empty() {
            None
        } else {
            self.sparse.remove(&id)
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.dense
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (K::from_raw(i as u64), v)))
            .chain(self.sparse.iter().map(|(&k, v)| (K::from_raw(k), v)))
    }

    /// Every id, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.inserted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_agree_with_a_map() {
        let mut v: IdVec<u64, u64> = IdVec::default();
        let mut m = std::collections::HashMap::new();
        // Dense ids, huge ids, ids that become dense as the vector grows, removals.
        let mut x: u64 = 1;
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = match i % 5 {
                0 => x,
                1 => x % 100_000,
                _ => i,
            };
            if i % 7 == 3 {
                assert_eq!(v.remove(id), m.remove(&id));
            } else {
                assert_eq!(v.insert(id, i), m.insert(id, i));
            }
            assert_eq!(v.keys().count(), m.len());
        }
        for (&k, val) in &m {
            assert_eq!(v.get(k), Some(val));
        }
        let mut keys: Vec<u64> = v.keys().collect();
        keys.sort_unstable();
        let mut want: Vec<u64> = m.keys().copied().collect();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v.get(u64::MAX), m.get(&u64::MAX));
        *v.get_or_insert_with(u64::MAX - 1, || 7) += 1;
        assert_eq!(v.get(u64::MAX - 1), Some(&8));
    }
}
