//! The entries seccompd may change in its directory, and the write-ahead rule that keeps them
//! known across any crash: a name is listed in the manifest (written and synced) before a file
//! can appear under it, and dropped from the manifest only after its file is gone. So whenever
//! the agent stops, every file it made is listed or carries one of its temporary names, and a
//! listed name with nothing behind it is simply forgotten later. Everything else in the
//! directory is someone else's: [`OwnedDir`] refuses to write or remove it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

use super::dir::{DirError, Entry, ProfileDir, is_plain_file_name, is_temp_name};
use super::manifest::{MANIFEST_NAME, Manifest};
use seccompd_profile::limits::MAX_FILE_BYTES;
use seccompd_profile::render::content_hash;

/// The directory with the names seccompd owns in it.
#[derive(Debug)]
pub struct OwnedDir {
    dir: ProfileDir,
    manifest: Manifest,
}

/// The manifest that `scan` (a fresh [`ProfileDir::scan`] of `dir`) found; `None` when the
/// directory has none.
pub fn read_manifest(
    dir: &ProfileDir,
    scan: &BTreeMap<OsString, Entry>,
) -> Result<Option<Manifest>, DirError> {
    let name = OsStr::new(MANIFEST_NAME);
    let bad = |why: String| DirError::BadManifest {
        path: dir.path().join(MANIFEST_NAME),
        why,
    };
    match scan.get(name) {
        None => Ok(None),
        Some(Entry::File { .. }) => {
            let bytes = dir
                .read(name)?
                .ok_or_else(|| bad("it changed while it was read".into()))?;
            Manifest::decode(&bytes)
                .map(Some)
                .map_err(|e| bad(e.to_string()))
        }
        Some(other) => Err(bad(format!("not a readable regular file: {other:?}"))),
    }
}

impl OwnedDir {
    /// The directory as its manifest lists it.
    pub fn listed(dir: ProfileDir, manifest: Manifest) -> Self {
        Self { dir, manifest }
    }

    /// Takes over a directory without a manifest: writes one that lists `names` (entries the
    /// caller recognised as seccompd's; none for an empty directory).
    pub fn adopt(
        dir: ProfileDir,
        names: impl IntoIterator<Item = OsString>,
    ) -> Result<Self, DirError> {
        let mut manifest = Manifest::default();
        for name in names {
            manifest
                .insert(&name)
                .map_err(|_| DirError::UnsafeName(name.clone()))?;
        }
        let owned = Self { dir, manifest };
        owned.save()?;
        Ok(owned)
    }

    /// The names seccompd owns.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Lists `names` before anything is written under them (the manifest is saved when one is
    /// new). A name the manifest cannot hold is skipped: [`write`](Self::write) refuses it.
    /// On failure nothing new is listed, and nothing may be written under them.
    pub fn reserve<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a OsStr>,
    ) -> Result<(), DirError> {
        self.edit_manifest(|m| {
            names.into_iter().fold(false, |changed, name| {
                m.insert(name).unwrap_or(false) | changed
            })
        })
    }

    /// Writes `name` atomically; only a name [`reserve`](Self::reserve) listed.
    pub fn write(&self, name: &OsStr, bytes: &[u8]) -> Result<(), DirError> {
        if !is_plain_file_name(name) {
            return Err(DirError::UnsafeName(name.to_os_string()));
        }
        if !self.manifest.contains(name) {
            return Err(DirError::NotListed(name.to_os_string()));
        }
        self.dir.write_atomic(name, bytes)
    }

    /// Removes what is at `name`: only a listed name or one of seccompd's temporary names, and
    /// never a directory. The name stays listed until [`release`](Self::release).
    pub fn remove(&self, name: &OsStr) -> Result<(), DirError> {
        if !self.manifest.contains(name) && !is_temp_name(name) {
            return Err(DirError::NotListed(name.to_os_string()));
        }
        self.dir.remove(name)
    }

    /// Drops `names`, whose files are gone, from the manifest. On failure they stay listed,
    /// which is harmless: a listed name with nothing behind it is only forgotten later.
    pub fn release<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a OsStr>,
    ) -> Result<(), DirError> {
        self.edit_manifest(|m| {
            names
                .into_iter()
                .fold(false, |changed, name| m.remove(name) | changed)
        })
    }

    /// Writes the manifest again when `on_disk` (what a scan found at its name) is not what
    /// the agent last wrote: deleted, edited or swapped behind its back. Returns whether it
    /// was written.
    pub fn save_if_differs(&self, on_disk: Option<&Entry>) -> Result<bool, DirError> {
        let want = content_hash(&self.manifest.encode());
        if matches!(on_disk, Some(Entry::File { hash }) if *hash == want) {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Applies `edit` (which says whether it changed anything) to a copy of the manifest and,
    /// if it changed, saves the copy and only then takes it as the manifest.
    fn edit_manifest(&mut self, edit: impl FnOnce(&mut Manifest) -> bool) -> Result<(), DirError> {
        let mut next = self.manifest.clone();
        if edit(&mut next) {
            self.save_manifest(&next)?;
            self.manifest = next;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), DirError> {
        self.save_manifest(&self.manifest)
    }

    fn save_manifest(&self, manifest: &Manifest) -> Result<(), DirError> {
        let bytes = manifest.encode();
        if bytes.len() > MAX_FILE_BYTES {
            return Err(DirError::ManifestFull(manifest.len()));
        }
        self.dir.write_atomic(OsStr::new(MANIFEST_NAME), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::node::dir::TEMP_PREFIX;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn owned() -> (tempfile::TempDir, OwnedDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        (tmp, OwnedDir::adopt(dir, []).unwrap())
    }

    fn on_disk(o: &OwnedDir) -> Manifest {
        let scan = o.dir.scan().unwrap();
        read_manifest(&o.dir, &scan).unwrap().unwrap()
    }

    #[test]
    fn a_name_is_listed_on_disk_before_its_file_exists_and_until_it_is_gone() {
        let (_tmp, mut o) = owned();
        assert!(matches!(
            o.write(os("a.json"), b"A"),
            Err(DirError::NotListed(_))
        ));
        assert!(!o.dir.scan().unwrap().contains_key(os("a.json")));

        o.reserve([os("a.json")]).unwrap();
        // A crash here leaves a listed name with no file: harmless.
        assert!(on_disk(&o).contains(os("a.json")));
        assert!(!o.dir.scan().unwrap().contains_key(os("a.json")));
        o.write(os("a.json"), b"A").unwrap();

        o.remove(os("a.json")).unwrap();
        // A crash here too: the name is still listed, its file already gone.
        assert!(on_disk(&o).contains(os("a.json")));
        o.release([os("a.json")]).unwrap();
        assert!(on_disk(&o).is_empty());
    }

    #[test]
    fn names_it_does_not_list_are_never_removed() {
        let (_tmp, o) = owned();
        let theirs = o.dir.path().join("theirs.json");
        fs::write(&theirs, b"{}").unwrap();
        assert!(matches!(
            o.remove(os("theirs.json")),
            Err(DirError::NotListed(_))
        ));
        assert_eq!(fs::read(&theirs).unwrap(), b"{}");
        // One of its own temporary names may go.
        let temp = format!("{TEMP_PREFIX}{}", "a".repeat(25));
        fs::write(o.dir.path().join(&temp), b"partial").unwrap();
        o.remove(os(&temp)).unwrap();
        assert!(!o.dir.path().join(&temp).exists());
    }

    #[test]
    fn a_manifest_deleted_behind_its_back_is_written_again() {
        let (_tmp, mut o) = owned();
        o.reserve([os("a.json")]).unwrap();
        let scan = o.dir.scan().unwrap();
        assert!(!o.save_if_differs(scan.get(os(MANIFEST_NAME))).unwrap());
        fs::remove_file(o.dir.path().join(MANIFEST_NAME)).unwrap();
        assert!(o.save_if_differs(None).unwrap());
        assert!(on_disk(&o).contains(os("a.json")));
    }

    #[test]
    fn a_manifest_that_is_not_seccompds_is_an_error_that_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        fs::write(dir.path().join(MANIFEST_NAME), b"something else").unwrap();
        let err = read_manifest(&dir, &dir.scan().unwrap()).unwrap_err();
        assert!(err.to_string().contains(MANIFEST_NAME), "{err}");
        fs::remove_file(dir.path().join(MANIFEST_NAME)).unwrap();
        fs::create_dir(dir.path().join(MANIFEST_NAME)).unwrap();
        assert!(matches!(
            read_manifest(&dir, &dir.scan().unwrap()),
            Err(DirError::BadManifest { .. })
        ));
        assert_eq!(read_manifest(&dir, &BTreeMap::new()).unwrap(), None);
    }
}
