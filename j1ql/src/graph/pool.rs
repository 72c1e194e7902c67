//! The string pool: every string of a graph (keys, types, classes, verbs, property names
//! and string values) stored once, named by a 32-bit [`Sym`].
//!
//! Interning is what keeps a 100k-user tenant small (the same `_type`, class, state or
//! email domain is one copy) and what makes string equality in a filter a comparison of
//! two integers: a query constant that is not in the pool matches nothing.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// The id of an interned string.
pub(crate) type Sym = u32;

/// One arena of UTF-8 text plus the end offset of each string; the hash table holds ids
/// and hashes into the arena, so no string is stored twice.
#[derive(Default)]
pub(crate) struct StrPool {
    bytes: String,
    ends: Vec<usize>,
    table: HashTable<Sym>,
    hasher: DefaultHashBuilder,
}

impl StrPool {
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        let hash = self.hasher.hash_one(s);
        let Self {
            bytes,
            ends,
            table,
            hasher,
        } = self;
        let found = table.find(hash, |&id| slice(bytes, ends, id) == s);
        if let Some(&id) = found {
            return id;
        }
        // 2^32 distinct strings would need far more memory than any tenant graph holds.
        let id = Sym::try_from(ends.len()).expect("fewer than 2^32 distinct strings");
        bytes.push_str(s);
        ends.push(bytes.len());
        table.insert_unique(hash, id, |&other| {
            hasher.hash_one(slice(bytes, ends, other))
        });
        id
    }

    pub(crate) fn lookup(&self, s: &str) -> Option<Sym> {
        let hash = self.hasher.hash_one(s);
        self.table.find(hash, |&id| self.get(id) == s).copied()
    }

    pub(crate) fn get(&self, id: Sym) -> &str {
        slice(&self.bytes, &self.ends, id)
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
        let hasher = &self.hasher;
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .shrink_to_fit(|&id| hasher.hash_one(slice(bytes, ends, id)));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * std::mem::size_of::<usize>()
            + self.table.capacity() * (std::mem::size_of::<Sym>() + 1)
    }
}

fn slice<'a>(bytes: &'a str, ends: &[usize], id: Sym) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &bytes[start..ends[i]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_one_id_per_distinct_string() {
        let mut pool = StrPool::default();
        let a = pool.intern("jumpcloud_user");
        let b = pool.intern("User");
        let empty = pool.intern("");
        assert_eq!(pool.intern("jumpcloud_user"), a);
        assert_ne!(a, b);
        assert_eq!(pool.get(a), "jumpcloud_user");
        assert_eq!(pool.get(b), "User");
        assert_eq!(pool.get(empty), "");
        assert_eq!(pool.lookup("User"), Some(b));
        assert_eq!(pool.lookup("Person"), None);
        pool.shrink_to_fit();
        assert_eq!(pool.lookup("jumpcloud_user"), Some(a));
    }
}
