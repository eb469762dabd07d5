//! The directory seccompd owns on a node (`<kubelet root>/seccomp/seccompd`): listing it,
//! writing files atomically, removing entries. Every operation stays inside the directory and
//! never follows a symlink.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::profile::limits;
use crate::profile::render::{ContentHash, content_hash};

/// Largest file the agent reads back to compare ([`limits::MAX_FILE_BYTES`]). Anything larger
/// cannot be one of ours and is replaced without being read in full.
const MAX_FILE_BYTES: u64 = limits::MAX_FILE_BYTES as u64;

/// Prefix of the temporary files an atomic write creates; a leftover one (after a crash) is a
/// stray the next sync removes.
pub const TEMP_PREFIX: &str = ".seccompd-tmp-";

/// Length of every temporary name: the prefix, the process id in 8 hex digits, `-` and a
/// counter in 16. Fixed, so that it fits NAME_MAX whatever the profile's name.
pub const TEMP_NAME_LEN: usize = TEMP_PREFIX.len() + 8 + 1 + 16;

const _: () = assert!(TEMP_NAME_LEN <= limits::NAME_MAX);

/// Mode of installed profile files: readable by the runtime, writable only by root.
const FILE_MODE: u32 = 0o644;

/// A failed operation on the profile directory, with the path it concerned.
#[derive(Debug, Error)]
pub enum DirError {
    /// The name would leave the directory or is not a plain file name.
    #[error("refusing unsafe file name {0:?}")]
    UnsafeName(OsString),
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What kind of thing sits at a name in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A regular file no larger than [`limits::MAX_FILE_BYTES`], with the hash of its content.
    File {
        /// `sha256:<hex>` of the content.
        hash: ContentHash,
    },
    /// A regular file larger than [`limits::MAX_FILE_BYTES`].
    Oversized,
    /// A symlink, directory, fifo, socket or device: never one of ours.
    NotAFile(EntryKind),
    /// An entry that cannot be inspected or read (for example a file of another user with
    /// mode 000): never one of ours, which are readable by everyone. Replacing or removing it
    /// needs only write access to the directory.
    Unreadable(String),
}

/// The type of a non-regular entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// Anything else: fifo, socket, device.
    Special,
}

/// A write that has reached the disk under a temporary name but is not yet visible under its
/// final name. Dropping it without [`ProfileDir::commit`] leaves the old file untouched, which
/// is exactly what a crash at that point does.
#[derive(Debug)]
pub struct StagedWrite {
    temp: PathBuf,
    target: PathBuf,
}

/// The profile directory of one node.
#[derive(Debug, Clone)]
pub struct ProfileDir {
    path: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DirError + 'a {
    move |source| DirError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl ProfileDir {
    /// Opens the directory at `path`, creating it (but not its parents) if it is missing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DirError> {
        let path = path.into();
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", &path)(e)),
        }
        let meta = fs::symlink_metadata(&path).map_err(io_err("inspect directory", &path))?;
        if !meta.is_dir() {
            return Err(io_err("open directory", &path)(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory (symlinks are not followed)",
            )));
        }
        Ok(Self { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lists every entry with what it is; regular files are hashed. Only a failure to list
    /// the directory fails the scan: an entry that cannot be inspected or read is listed as
    /// [`Entry::Unreadable`], so that one bad entry never hides the others.
    pub fn scan(&self) -> Result<BTreeMap<OsString, Entry>, DirError> {
        let mut out = BTreeMap::new();
        let entries = fs::read_dir(&self.path).map_err(io_err("list", &self.path))?;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.path))?;
            let name = entry.file_name();
            let path = entry.path();
            // An entry may vanish between listing and inspection; it is simply not there.
            let kind = match entry.file_type() {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    out.insert(name, Entry::Unreadable(format!("inspect: {e}")));
                    continue;
                }
            };
            let value = if kind.is_symlink() {
                Entry::NotAFile(EntryKind::Symlink)
            } else if kind.is_dir() {
                Entry::NotAFile(EntryKind::Directory)
            } else if kind.is_file() {
                match read_regular(&path) {
                    Ok(Contents::Bytes(bytes)) => Entry::File {
                        hash: content_hash(&bytes),
                    },
                    Ok(Contents::Oversized) => Entry::Oversized,
                    // Swapped for something else since listing: not ours either way.
                    Ok(Contents::NotRegular) => Entry::NotAFile(EntryKind::Special),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => Entry::Unreadable(format!("read: {e}")),
                }
            } else {
                Entry::NotAFile(EntryKind::Special)
            };
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Reads a regular file's bytes; `None` when nothing readable and ours-sized is there
    /// (missing, a symlink, a fifo, oversized).
    pub fn read(&self, name: &OsStr) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.child(name)?;
        match read_regular(&path) {
            Ok(Contents::Bytes(bytes)) => Ok(Some(bytes)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Writes `bytes` to `name` atomically: readers see the old content or the new, never a
    /// mix, even across a crash.
    pub fn write_atomic(&self, name: &OsStr, bytes: &[u8]) -> Result<(), DirError> {
        let staged = self.stage(name, bytes)?;
        self.commit(staged)
    }

    /// First half of [`write_atomic`](Self::write_atomic): the bytes are written and synced
    /// under a temporary name in the same directory.
    pub fn stage(&self, name: &OsStr, bytes: &[u8]) -> Result<StagedWrite, DirError> {
        let target = self.child(name)?;
        let temp = self.path.join(temp_name());
        let result = write_new_file(&temp, bytes);
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(io_err("write", &temp)(e));
        }
        Ok(StagedWrite { temp, target })
    }

    /// Second half of [`write_atomic`](Self::write_atomic): the temporary file replaces
    /// whatever is at the target name (a file, a symlink, which is replaced and not followed, or
    /// a directory), and the directory is synced so that the rename survives a power loss.
    pub fn commit(&self, staged: StagedWrite) -> Result<(), DirError> {
        let StagedWrite { temp, target } = staged;
        let result = (|| {
            if let Ok(meta) = fs::symlink_metadata(&target)
                && meta.is_dir()
            {
                // rename(2) cannot replace a directory with a file; a directory here is
                // never ours, so it goes.
                fs::remove_dir_all(&target).map_err(io_err("remove directory", &target))?;
            }
            fs::rename(&temp, &target).map_err(io_err("rename into", &target))?;
            self.sync()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes whatever is at `name` (file, symlink itself, fifo or directory tree). A name that
    /// is already gone is not an error.
    pub fn remove(&self, name: &OsStr) -> Result<(), DirError> {
        let path = self.child(name)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("inspect", &path)(e)),
        };
        let removed = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => self.sync(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    fn sync(&self) -> Result<(), DirError> {
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", &self.path))
    }

    /// The path of `name` inside the directory, if `name` is a plain file name.
    fn child(&self, name: &OsStr) -> Result<PathBuf, DirError> {
        if !is_plain_file_name(name) {
            return Err(DirError::UnsafeName(name.to_os_string()));
        }
        Ok(self.path.join(name))
    }
}

/// A fresh temporary name of exactly [`TEMP_NAME_LEN`] bytes, unique within the process and,
/// by the process id, among processes.
fn temp_name() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{:08x}-{n:016x}", std::process::id())
}

/// True for a single path component that stays in the directory: no `/`, not `.` or `..`,
/// not empty, no NUL.
pub fn is_plain_file_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    !bytes.is_empty()
        && bytes != b"."
        && bytes != b".."
        && !bytes.contains(&b'/')
        && !bytes.contains(&0)
}

/// Creates `path` (failing if anything exists there, symlinks included), writes and syncs.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // The process umask may have cleared bits; the runtime must be able to read the file.
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What [`read_regular`] found.
enum Contents {
    Bytes(Vec<u8>),
    Oversized,
    NotRegular,
}

/// Reads a regular file without following symlinks or blocking on a fifo.
fn read_regular(path: &Path) -> io::Result<Contents> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // ELOOP: a symlink is at the name, and O_NOFOLLOW refused it.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Contents::NotRegular),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Contents::NotRegular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Contents::Oversized);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read; never read more than the cap.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Contents::Oversized);
    }
    Ok(Contents::Bytes(bytes))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn dir() -> (tempfile::TempDir, ProfileDir) {
        let tmp = tempfile::tempdir().unwrap();
        let pd = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        (tmp, pd)
    }

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn write_then_scan_reports_the_hash_and_mode_0644() {
        let (_tmp, pd) = dir();
        pd.write_atomic(os("a.json"), b"{}\n").unwrap();
        let scan = pd.scan().unwrap();
        assert_eq!(
            scan.get(os("a.json")),
            Some(&Entry::File {
                hash: content_hash(b"{}\n")
            })
        );
        let mode = fs::metadata(pd.path().join("a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(scan.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn crash_between_write_and_rename_leaves_the_old_file_intact() {
        let (_tmp, pd) = dir();
        pd.write_atomic(os("p.json"), b"old").unwrap();
        let staged = pd.stage(os("p.json"), b"new content").unwrap();
        // The process dies here: the staged write is never committed.
        std::mem::forget(staged);
        assert_eq!(pd.read(os("p.json")).unwrap().unwrap(), b"old");
        let strays: Vec<_> = pd
            .scan()
            .unwrap()
            .into_keys()
            .filter(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert_eq!(
            strays.len(),
            1,
            "the temp file is visible as a stray to remove"
        );
        pd.remove(&strays[0]).unwrap();
        assert_eq!(pd.scan().unwrap().len(), 1);
    }

    #[test]
    fn the_longest_profile_name_can_be_written_and_temporary_names_have_a_fixed_length() {
        let (_tmp, pd) = dir();
        let name = format!("{}.json", "a".repeat(limits::MAX_PROFILE_NAME_LEN));
        assert_eq!(name.len(), limits::NAME_MAX);
        let staged = pd.stage(os(&name), b"{}").unwrap();
        let temp = staged.temp.file_name().unwrap().len();
        assert_eq!(temp, TEMP_NAME_LEN);
        pd.commit(staged).unwrap();
        assert_eq!(pd.read(os(&name)).unwrap().unwrap(), b"{}");
        assert_eq!(temp_name().len(), TEMP_NAME_LEN);
    }

    #[test]
    fn commit_replaces_the_old_content() {
        let (_tmp, pd) = dir();
        pd.write_atomic(os("p.json"), b"old").unwrap();
        let staged = pd.stage(os("p.json"), b"new").unwrap();
        pd.commit(staged).unwrap();
        assert_eq!(pd.read(os("p.json")).unwrap().unwrap(), b"new");
    }

    #[test]
    fn planted_symlink_is_replaced_not_followed() {
        let (tmp, pd) = dir();
        let outside = tmp.path().join("outside.txt");
        fs::write(&outside, b"precious").unwrap();
        symlink(&outside, pd.path().join("p.json")).unwrap();
        assert_eq!(
            pd.scan().unwrap().get(os("p.json")),
            Some(&Entry::NotAFile(EntryKind::Symlink))
        );
        assert_eq!(
            pd.read(os("p.json")).unwrap(),
            None,
            "reads do not follow it"
        );
        pd.write_atomic(os("p.json"), b"profile").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(
            fs::symlink_metadata(pd.path().join("p.json"))
                .unwrap()
                .is_file()
        );
        assert_eq!(pd.read(os("p.json")).unwrap().unwrap(), b"profile");
    }

    #[test]
    fn removing_a_symlink_removes_the_link_only() {
        let (tmp, pd) = dir();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        symlink(&outside, pd.path().join("link.json")).unwrap();
        pd.remove(os("link.json")).unwrap();
        assert!(outside.join("keep").exists());
        assert!(pd.scan().unwrap().is_empty());
    }

    #[test]
    fn planted_directory_is_replaced_by_the_file() {
        let (_tmp, pd) = dir();
        fs::create_dir_all(pd.path().join("p.json/sub")).unwrap();
        assert_eq!(
            pd.scan().unwrap().get(os("p.json")),
            Some(&Entry::NotAFile(EntryKind::Directory))
        );
        pd.write_atomic(os("p.json"), b"profile").unwrap();
        assert_eq!(pd.read(os("p.json")).unwrap().unwrap(), b"profile");
    }

    #[test]
    fn fifo_is_listed_without_blocking_and_can_be_replaced() {
        let (_tmp, pd) = dir();
        let status = std::process::Command::new("mkfifo")
            .arg(pd.path().join("p.json"))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            pd.scan().unwrap().get(os("p.json")),
            Some(&Entry::NotAFile(EntryKind::Special))
        );
        pd.write_atomic(os("p.json"), b"profile").unwrap();
        assert_eq!(pd.read(os("p.json")).unwrap().unwrap(), b"profile");
    }

    #[test]
    fn oversized_file_is_not_read_in_full() {
        let (_tmp, pd) = dir();
        let f = File::create(pd.path().join("big.json")).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            pd.scan().unwrap().get(os("big.json")),
            Some(&Entry::Oversized)
        );
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let (_tmp, pd) = dir();
        for bad in ["", ".", "..", "../x.json", "a/b.json"] {
            assert!(
                matches!(pd.write_atomic(os(bad), b"x"), Err(DirError::UnsafeName(_))),
                "{bad:?} must be refused"
            );
            assert!(matches!(pd.remove(os(bad)), Err(DirError::UnsafeName(_))));
        }
    }

    #[test]
    fn removing_a_missing_name_is_fine() {
        let (_tmp, pd) = dir();
        pd.remove(os("nothing.json")).unwrap();
    }

    #[test]
    fn opening_a_symlinked_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("seccompd")).unwrap();
        assert!(ProfileDir::open(tmp.path().join("seccompd")).is_err());
    }
}
