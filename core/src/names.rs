//! Shard names, stored once: the `keyspace/shard` a [`ShardId`] stands for, and the lookup
//! from names to ids.
//!
//! Each shard's name is one boxed string; each keyspace's name is stored once for all its
//! shards, with its shards' ids sorted by name, so a lookup is one B-tree search for the
//! keyspace and one binary search among its shards, and a registered shard costs its name,
//! a keyspace index and one id in its keyspace's list (about 40 bytes with a short name),
//! where a map of owned strings would store every name twice.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::shard::ShardId;

/// One shard's name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardName {
    /// Index into `Names::keyspaces`.
    keyspace: u32,
    shard: Box<str>,
}

/// A keyspace's name and its shards.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Keyspace {
    name: Box<str>,
    /// Its shards' ids, sorted by shard name.
    shards: Vec<ShardId>,
}

/// Every registered shard's name, by id, and the ids by name.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Per shard id.
    shards: Vec<ShardName>,
    keyspaces: Vec<Keyspace>,
    /// Keyspace name to its index in `keyspaces`.
    keyspace_index: BTreeMap<Box<str>, u32>,
}

impl Clone for Names {
    fn clone(&self) -> Self {
        let Names {
            shards,
            keyspaces,
            keyspace_index,
        } = self;
        Names {
            shards: shards.clone(),
            keyspaces: keyspaces.clone(),
            keyspace_index: keyspace_index.clone(),
        }
    }

    /// Names are only ever added, so a copy refreshed from the buffer it was taken from
    /// usually has them all already: comparing them is cheaper than allocating every name
    /// again, and they are copied only when they differ.
    fn clone_from(&mut self, source: &Self) {
        let Names {
            shards,
            keyspaces,
            keyspace_index,
        } = self;
        if *shards != source.shards {
            shards.clone_from(&source.shards);
        }
        // The index maps each keyspace's name to its place in `keyspaces`, so the same
        // keyspaces in the same order have the same index.
        if *keyspaces != source.keyspaces {
            keyspaces.clone_from(&source.keyspaces);
            keyspace_index.clone_from(&source.keyspace_index);
        }
    }
}

impl Names {
    /// Room for `additional` more shards without growing the table.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.shards.reserve_exact(additional);
    }

    /// The id of `keyspace/shard`, if registered.
    pub(crate) fn get(&self, keyspace: &str, shard: &str) -> Option<ShardId> {
        let ks = &self.keyspaces[*self.keyspace_index.get(keyspace)? as usize];
        ks.shards
            .binary_search_by(|id| (*self.shards[id.index()].shard).cmp(shard))
            .ok()
            .map(|i| ks.shards[i])
    }

    /// Names the next shard, whose id is `id` (the number of shards named so far): the
    /// caller has checked that `keyspace/shard` is not named yet.
    pub(crate) fn push(&mut self, id: ShardId, keyspace: &str, shard: &str) {
        let k = match self.keyspace_index.get(keyspace) {
            Some(&k) => k,
            None => {
                // Fewer keyspaces than shards, and shard ids fit in a u32.
                let k = self.keyspaces.len() as u32;
                self.keyspaces.push(Keyspace {
                    name: keyspace.into(),
                    shards: Vec::new(),
                });
                self.keyspace_index.insert(keyspace.into(), k);
                k
            }
        };
        self.shards.push(ShardName {
            keyspace: k,
            shard: shard.into(),
        });
        let names = &self.shards;
        let ks = &mut self.keyspaces[k as usize];
        let at = ks
            .shards
            .partition_point(|other| *names[other.index()].shard < *shard);
        ks.shards.insert(at, id);
    }

    /// The `(keyspace, shard)` names of `id`.
    pub(crate) fn name(&self, id: ShardId) -> Option<(&str, &str)> {
        let name = self.shards.get(id.index())?;
        Some((&self.keyspaces[name.keyspace as usize].name, &name.shard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_by_id_and_ids_by_name() {
        let mut names = Names::default();
        let order = [
            ("ks", "80-"),
            ("other", "0"),
            ("ks", "-80"),
            ("ks", "40-80"),
        ];
        for (i, (keyspace, shard)) in order.iter().enumerate() {
            names.push(ShardId::from_index(i as u32), keyspace, shard);
        }
        for (i, &(keyspace, shard)) in order.iter().enumerate() {
            let id = ShardId::from_index(i as u32);
            assert_eq!(names.get(keyspace, shard), Some(id));
            assert_eq!(names.name(id), Some((keyspace, shard)));
        }
        assert_eq!(names.get("ks", "0"), None);
        assert_eq!(names.get("nope", "-80"), None);
        assert_eq!(names.name(ShardId::from_index(4)), None);
    }

    #[test]
    fn a_slash_in_a_name_does_not_alias_another_shard() {
        let mut names = Names::default();
        names.push(ShardId::from_index(0), "a/b", "c");
        names.push(ShardId::from_index(1), "a", "b/c");
        assert_eq!(names.get("a/b", "c"), Some(ShardId::from_index(0)));
        assert_eq!(names.get("a", "b/c"), Some(ShardId::from_index(1)));
    }
}
