//! A digest of a set of installed profiles, so that a node in sync says so in 64 hex digits
//! instead of listing every profile, and the controller checks it without asking for the list.
//!
//! The digest of a set is the sum (mod 2^256) of the sha256 of each `(name, content hash)`
//! member. A sum, not a hash over the sorted list, so that the controller can keep the digest
//! of everything it expects up to date one profile at a time, and take out the few profiles a
//! node reports as exceptions without hashing the whole set again for every node.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::render::ContentHash;

/// The digest of a set of `(profile name, content hash)` pairs; the empty set's is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetDigest([u8; 32]);

impl SetDigest {
    /// The digest of the one-member set `{(name, hash)}`.
    pub fn of_member(name: &str, hash: &ContentHash) -> Self {
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        // Names never hold NUL: no two pairs give the same input.
        h.update([0]);
        h.update(hash.as_str().as_bytes());
        Self(h.finalize().into())
    }

    /// The digest of every pair of `members` (each pair once).
    pub fn of_set<'a>(members: impl IntoIterator<Item = (&'a str, &'a ContentHash)>) -> Self {
        let mut sum = Self::default();
        for (name, hash) in members {
            sum.add(&Self::of_member(name, hash));
        }
        sum
    }

    /// Adds a member's (or a disjoint set's) digest.
    pub fn add(&mut self, other: &Self) {
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(self.0[i]) + u16::from(other.0[i]) + carry;
            self.0[i] = (s & 0xff) as u8;
            carry = s >> 8;
        }
    }

    /// Takes out a member's (or a subset's) digest.
    pub fn remove(&mut self, other: &Self) {
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(self.0[i]) - i16::from(other.0[i]) - borrow;
            borrow = i16::from(d < 0);
            if d < 0 {
                d += 256;
            }
            self.0[i] = d as u8;
        }
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for SetDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a text is not a digest.
#[derive(Debug, thiserror::Error)]
#[error("not a set digest (64 lowercase hex digits): {0:?}")]
pub struct BadDigest(String);

impl std::str::FromStr for SetDigest {
    type Err = BadDigest;

    fn from_str(text: &str) -> Result<Self, BadDigest> {
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(text, &mut bytes) {
            Ok(()) if text.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(Self(bytes)),
            _ => Err(BadDigest(text.to_string())),
        }
    }
}

impl Serialize for SetDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SetDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SetDigest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SetDigest".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(text: &str) -> ContentHash {
        ContentHash::of(text.as_bytes())
    }

    #[test]
    fn the_digest_depends_on_the_set_not_on_the_order() {
        let (a, b) = (h("A"), h("B"));
        let one = SetDigest::of_set([("a", &a), ("b", &b)]);
        let other = SetDigest::of_set([("b", &b), ("a", &a)]);
        assert_eq!(one, other);
        assert_ne!(one, SetDigest::of_set([("a", &a)]));
        assert_ne!(
            one,
            SetDigest::of_set([("a", &b), ("b", &a)]),
            "pairs matter"
        );
        assert_eq!(SetDigest::of_set([]), SetDigest::default());
    }

    #[test]
    fn members_are_added_and_removed_one_at_a_time() {
        let hashes: Vec<ContentHash> = (0..50).map(|i| h(&i.to_string())).collect();
        let names: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
        let all = SetDigest::of_set(names.iter().map(String::as_str).zip(&hashes));
        let mut running = all;
        for (name, hash) in names.iter().zip(&hashes).skip(10) {
            running.remove(&SetDigest::of_member(name, hash));
        }
        assert_eq!(
            running,
            SetDigest::of_set(names.iter().map(String::as_str).zip(&hashes).take(10))
        );
        running.add(&SetDigest::of_member("p10", &hashes[10]));
        assert_eq!(
            running,
            SetDigest::of_set(names.iter().map(String::as_str).zip(&hashes).take(11))
        );
    }

    #[test]
    fn carries_and_borrows_cross_every_byte() {
        let mut max = SetDigest([0xff; 32]);
        let mut one = [0u8; 32];
        one[31] = 1;
        max.add(&SetDigest(one));
        assert_eq!(max, SetDigest::default(), "wraps around mod 2^256");
        max.remove(&SetDigest(one));
        assert_eq!(max, SetDigest([0xff; 32]));
    }

    #[test]
    fn reads_back_what_it_writes_and_nothing_else() {
        let d = SetDigest::of_set([("a", &h("A"))]);
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<SetDigest>(&text).unwrap(), d);
        assert!("abc".parse::<SetDigest>().is_err());
        assert!(d.to_hex().to_uppercase().parse::<SetDigest>().is_err());
    }
}
