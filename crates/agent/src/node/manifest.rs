//! The manifest: the names of the entries seccompd made in its directory, kept in the
//! directory itself. It is how the agent tells its own files from anyone else's, so that it
//! never removes what it did not write. Pure: the format and the set; [`super::owned`] keeps
//! it on disk.

use std::collections::BTreeSet;
use std::ffi::OsStr;

use thiserror::Error;

use super::dir::is_plain_file_name;

/// The manifest's file name in the directory. A dot-file: never a profile's file name
/// (profile names start with a letter or digit), so no pod can reference it.
pub const MANIFEST_NAME: &str = ".seccompd-manifest";

/// First line of every manifest: the format and its version.
const HEADER: &str = "seccompd-manifest v1";

/// A manifest that cannot be read back.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    /// The first line is not the header: not a manifest of this format.
    #[error("it does not start with {HEADER:?}")]
    NoHeader,
    /// Not UTF-8: seccompd only ever lists UTF-8 names.
    #[error("it is not UTF-8")]
    NotUtf8,
    /// A listed name is no plain file name in the directory.
    #[error("it lists {0:?}, which is no plain file name")]
    BadName(String),
}

/// The names seccompd owns in its directory (file names, not profile names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    names: BTreeSet<String>,
}

impl Manifest {
    /// Whether `name` is listed.
    pub fn contains(&self, name: &OsStr) -> bool {
        name.to_str().is_some_and(|n| self.names.contains(n))
    }

    /// Lists `name`; `Err` for a name the format cannot hold (not UTF-8, a newline, or no
    /// plain file name). Returns whether it was new.
    pub fn insert(&mut self, name: &OsStr) -> Result<bool, ManifestError> {
        let text = name
            .to_str()
            .ok_or_else(|| ManifestError::BadName(name.to_string_lossy().into_owned()))?;
        if !listable(text) {
            return Err(ManifestError::BadName(text.to_string()));
        }
        Ok(self.names.insert(text.to_string()))
    }

    /// Drops `name`; returns whether it was listed.
    pub fn remove(&mut self, name: &OsStr) -> bool {
        name.to_str().is_some_and(|n| self.names.remove(n))
    }

    /// The listed names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &OsStr> {
        self.names.iter().map(OsStr::new)
    }

    /// How many names are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The file's bytes: the header, then one name per line, sorted.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(HEADER.len() + 1 + self.names.len() * 32);
        out.push_str(HEADER);
        out.push('\n');
        for name in &self.names {
            out.push_str(name);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Reads back what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(ManifestError::NoHeader);
        }
        let mut names = BTreeSet::new();
        for line in lines {
            if !listable(line) {
                return Err(ManifestError::BadName(line.to_string()));
            }
            names.insert(line.to_string());
        }
        Ok(Self { names })
    }
}

/// A name one line can hold that stays in the directory, and is not the manifest itself.
fn listable(name: &str) -> bool {
    is_plain_file_name(OsStr::new(name)) && !name.contains(['\n', '\r']) && name != MANIFEST_NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn encode_then_decode_gives_the_same_names() {
        let mut m = Manifest::default();
        assert!(m.insert(os("b.json")).unwrap());
        assert!(m.insert(os("a.json")).unwrap());
        assert!(!m.insert(os("a.json")).unwrap(), "listed once");
        let bytes = m.encode();
        assert_eq!(bytes, b"seccompd-manifest v1\na.json\nb.json\n");
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        assert!(
            Manifest::decode(&Manifest::default().encode())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn names_the_format_cannot_hold_are_refused() {
        let mut m = Manifest::default();
        for bad in ["", ".", "..", "a/b.json", "a\nb.json", MANIFEST_NAME] {
            assert!(m.insert(os(bad)).is_err(), "{bad:?}");
        }
        assert!(m.is_empty());
    }

    #[test]
    fn anything_but_a_manifest_is_refused() {
        assert_eq!(Manifest::decode(b""), Err(ManifestError::NoHeader));
        assert_eq!(
            Manifest::decode(b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}\n"),
            Err(ManifestError::NoHeader)
        );
        assert_eq!(
            Manifest::decode(b"seccompd-manifest v1\n../etc/passwd\n"),
            Err(ManifestError::BadName("../etc/passwd".into()))
        );
        assert_eq!(
            Manifest::decode(b"seccompd-manifest v1\n\xff\n"),
            Err(ManifestError::NotUtf8)
        );
    }

    #[test]
    fn contains_and_remove_follow_the_listed_names() {
        let mut m = Manifest::default();
        m.insert(os("a.json")).unwrap();
        assert!(m.contains(os("a.json")));
        assert!(!m.contains(os("b.json")));
        assert!(m.remove(os("a.json")));
        assert!(!m.remove(os("a.json")));
        assert!(!m.contains(os("a.json")));
    }
}
