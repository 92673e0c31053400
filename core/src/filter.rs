//! Which shards buffer for real: Vitess's `--buffer-keyspace-shards` list.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use core::fmt;

/// A list of keyspaces and `keyspace/shard` pairs whose shards buffer for real.
///
/// Parsed from Vitess's comma-separated syntax: an entry with a `/` (or, as in Vitess's
/// `ParseKeyspaceShard`, a single `:`) names one shard, any other entry a whole keyspace.
/// Unlike Vitess, empty entries, empty names and surrounding white space are rejected instead
/// of silently naming a keyspace called `""`, so a typo cannot disable buffering.
///
/// ```
/// use failover_buffer::ShardFilter;
///
/// let filter: ShardFilter = "commerce,customer/-80".parse()?;
/// assert!(filter.contains("commerce", "0"));
/// assert!(filter.contains("customer", "-80"));
/// assert!(!filter.contains("customer", "80-"));
/// assert!("ks1,ks1/0".parse::<ShardFilter>().is_err()); // overlapping entries
/// # Ok::<(), failover_buffer::FilterError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardFilter {
    keyspaces: BTreeSet<String>,
    shards: BTreeSet<(String, String)>,
}

/// Why a shard filter entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// The entry is not `keyspace` or `keyspace/shard` (e.g. `ks1//0`, `ks/`, an empty entry).
    /// Vitess: "invalid shard path".
    InvalidShardPath(String),
    /// A keyspace is listed both alone and with a shard, which would make the shard entry
    /// meaningless. Vitess: "has overlapping entries".
    Overlapping {
        /// The keyspace listed alone.
        keyspace: String,
        /// The `keyspace/shard` entry inside it.
        shard: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::InvalidShardPath(entry) => write!(f, "invalid shard path: {entry:?}"),
            FilterError::Overlapping { keyspace, shard } => write!(
                f,
                "buffer keyspace/shard list has overlapping entries (keyspace only vs. \
                 keyspace/shard): {keyspace} vs. {shard}; remove one or the other"
            ),
        }
    }
}

impl core::error::Error for FilterError {}

impl ShardFilter {
    /// An empty filter: with buffering enabled, every shard buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a whole keyspace. Returns an error if a shard of it is already listed.
    pub fn add_keyspace(&mut self, keyspace: &str) -> Result<(), FilterError> {
        if keyspace.is_empty() || !is_clean_name(keyspace) {
            return Err(FilterError::InvalidShardPath(keyspace.to_string()));
        }
        if let Some((ks, shard)) = self.shards.iter().find(|(ks, _)| ks == keyspace) {
            return Err(FilterError::Overlapping {
                keyspace: keyspace.to_string(),
                shard: alloc::format!("{ks}/{shard}"),
            });
        }
        self.keyspaces.insert(keyspace.to_string());
        Ok(())
    }

    /// Adds one shard. Returns an error if its keyspace is already listed whole.
    pub fn add_shard(&mut self, keyspace: &str, shard: &str) -> Result<(), FilterError> {
        if keyspace.is_empty()
            || shard.is_empty()
            || !is_clean_name(keyspace)
            || !is_clean_name(shard)
        {
            return Err(FilterError::InvalidShardPath(alloc::format!(
                "{keyspace}/{shard}"
            )));
        }
        if self.keyspaces.contains(keyspace) {
            return Err(FilterError::Overlapping {
                keyspace: keyspace.to_string(),
                shard: alloc::format!("{keyspace}/{shard}"),
            });
        }
        self.shards
            .insert((keyspace.to_string(), shard.to_string()));
        Ok(())
    }

    /// Whether the filter lists nothing.
    pub fn is_empty(&self) -> bool {
        self.keyspaces.is_empty() && self.shards.is_empty()
    }

    /// Whether `keyspace/shard` is listed, alone or through its keyspace.
    pub fn contains(&self, keyspace: &str, shard: &str) -> bool {
        self.keyspaces.contains(keyspace)
            || self
                .shards
                .iter()
                .any(|(ks, sh)| ks == keyspace && sh == shard)
    }

    /// The keyspaces listed whole, in order.
    pub fn keyspaces(&self) -> impl Iterator<Item = &str> {
        self.keyspaces.iter().map(String::as_str)
    }

    /// The `(keyspace, shard)` pairs listed, in order.
    pub fn shards(&self) -> impl Iterator<Item = (&str, &str)> {
        self.shards.iter().map(|(k, s)| (k.as_str(), s.as_str()))
    }
}

/// A name with no separators or white space in it.
fn is_clean_name(name: &str) -> bool {
    !name
        .chars()
        .any(|c| c == '/' || c == ':' || c == ',' || c.is_whitespace())
}

impl core::str::FromStr for ShardFilter {
    type Err = FilterError;

    /// Parses Vitess's comma-separated list. The empty string is the empty filter.
    fn from_str(list: &str) -> Result<Self, FilterError> {
        let mut filter = ShardFilter::new();
        if list.is_empty() {
            return Ok(filter);
        }
        for entry in list.split(',') {
            let invalid = || FilterError::InvalidShardPath(entry.to_string());
            let parts = split_exactly_two(entry, '/').or_else(|| split_exactly_two(entry, ':'));
            match parts {
                Some((keyspace, shard)) => {
                    filter.add_shard(keyspace, shard).map_err(|e| match e {
                        FilterError::InvalidShardPath(_) => invalid(),
                        overlap => overlap,
                    })?
                }
                // More than one separator: `add_keyspace` refuses the name.
                None => filter.add_keyspace(entry).map_err(|e| match e {
                    FilterError::InvalidShardPath(_) => invalid(),
                    overlap => overlap,
                })?,
            }
        }
        Ok(filter)
    }
}

/// `a<sep>b` with exactly one separator, as Vitess's `ParseKeyspaceShard` accepts.
fn split_exactly_two(entry: &str, sep: char) -> Option<(&str, &str)> {
    let mut parts = entry.split(sep);
    let first = parts.next()?;
    let second = parts.next()?;
    parts.next().is_none().then_some((first, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keyspaces_and_shards() {
        let f: ShardFilter = "ks1,ks2/-80,ks3:80-".parse().unwrap();
        assert!(f.contains("ks1", "anything"));
        assert!(f.contains("ks2", "-80"));
        assert!(!f.contains("ks2", "80-"));
        assert!(f.contains("ks3", "80-"));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "ks1//0", "ks1/", "/0", ",", "ks1,", "ks 1", "a/b/c", "a:b:c", "ks1/0:1",
        ] {
            assert!(
                matches!(
                    bad.parse::<ShardFilter>(),
                    Err(FilterError::InvalidShardPath(_))
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_overlap_in_either_order() {
        for bad in ["ks1,ks1/0", "ks1/0,ks1"] {
            assert!(matches!(
                bad.parse::<ShardFilter>(),
                Err(FilterError::Overlapping { .. })
            ));
        }
    }

    #[test]
    fn empty_string_is_empty_filter() {
        assert!("".parse::<ShardFilter>().unwrap().is_empty());
    }
}
