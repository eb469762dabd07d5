//! The directory seccompd owns on a node (`<kubelet root>/seccomp/seccompd`): listing it,
//! writing files atomically, removing entries. Every operation stays inside the directory,
//! never follows a symlink and never removes a directory. Which entries the agent may change
//! at all is [`super::owned`]'s rule.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::own_events::OwnRemovals;
use seccompd_profile::limits;
use seccompd_profile::render::{ContentHash, content_hash};

/// Largest file the agent reads back to compare ([`limits::MAX_FILE_BYTES`]). Anything larger
/// cannot be one of ours and is replaced without being read in full.
const MAX_FILE_BYTES: u64 = limits::MAX_FILE_BYTES as u64;

/// Prefix of the temporary files an atomic write creates; a leftover one (after a crash) is a
/// stray the next sync removes.
pub const TEMP_PREFIX: &str = ".seccompd-tmp-";

/// Random characters after [`TEMP_PREFIX`]: 5 bits each, 125 bits in all, so that no other
/// process can predict a temporary name and plant something there first.
const TEMP_RANDOM_LEN: usize = 25;

/// The characters of a temporary name's random part (32: each stands for 5 random bits).
const TEMP_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// Length of every temporary name. Fixed, so that it fits NAME_MAX whatever the profile's
/// name; the same as that of earlier releases (process id, `-`, counter, in hex), whose
/// leftovers [`is_temp_name`] still recognises.
pub const TEMP_NAME_LEN: usize = TEMP_PREFIX.len() + TEMP_RANDOM_LEN;

/// How many fresh names a write tries when the name it drew is taken: with 125 random bits a
/// second draw is already a formality.
const TEMP_ATTEMPTS: usize = 4;

const _: () = assert!(TEMP_NAME_LEN <= limits::NAME_MAX);

/// Mode of installed profile files: readable by the runtime, writable only by root.
const FILE_MODE: u32 = 0o644;

/// How much older than the moment it was read a file's last change (its ctime) must be for
/// the hash read to be reused while the file's inode facts stay the same. The kernel stamps
/// changes with a coarse clock (a scheduler tick, up to 10 ms): a change in the same tick as
/// the read could leave every fact as it was, so such a file is read again next time.
const SETTLED_AFTER: Duration = Duration::from_millis(50);

/// A failed operation on the profile directory, with the path it concerned.
#[derive(Debug, Error)]
pub enum DirError {
    /// The name would leave the directory or is not a plain file name.
    #[error("refusing unsafe file name {0:?}")]
    UnsafeName(OsString),
    /// The directory itself is a symlink. Following it could hand the agent any directory of
    /// the node, whose entries it would then take for its own.
    #[error(
        "{0} is a symlink, which seccompd does not follow: give the agent the real directory, \
         not a link to it (the DaemonSet's hostPath and --kubelet-root must name the kubelet's \
         own directories)"
    )]
    SymlinkRoot(PathBuf),
    /// A directory is where a file is to be written or removed. seccompd never creates a
    /// directory, and never removes one: its content is someone else's.
    #[error(
        "{0} is a directory, which seccompd did not create and never removes: move it away if \
         the name is needed"
    )]
    DirectoryInTheWay(PathBuf),
    /// The manifest cannot be read back: not a regular file, damaged, or not seccompd's.
    #[error(
        "{path} is not a manifest seccompd wrote ({why}); if the directory holds only \
         seccompd's profile files, delete it: the agent then recognises its files by their \
         content (see docs/node-directory.md)"
    )]
    BadManifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The manifest would grow beyond what the agent reads back.
    #[error("the manifest would list {0} names, more than fit {MAX_FILE_BYTES} bytes")]
    ManifestFull(usize),
    /// A name the manifest does not list was to be written or removed: never one of
    /// seccompd's, so it is left alone.
    #[error("{0:?} is not listed in seccompd's manifest: refusing to change it")]
    NotListed(OsString),
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

/// The hashes earlier scans read, by name, each with the facts of the file it was read from,
/// so that a scan reads only the files that changed since: with 1,000 profiles a pass
/// otherwise reads and hashes every file. Any write to a file, and any replacement of it,
/// changes its ctime (which no caller can set) or its inode; a file changed too recently for
/// its ctime to tell is read again ([`SETTLED_AFTER`]).
#[derive(Debug, Default)]
pub struct KnownHashes {
    by_name: HashMap<OsString, (FileFacts, ContentHash)>,
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileFacts {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileFacts {
    fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the last change is old enough, at `read_at`, for these facts to pin the
    /// content down.
    fn settled(&self, read_at: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let Ok(secs) = u64::try_from(secs) else {
            return false;
        };
        let changed = UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).unwrap_or(0));
        changed + SETTLED_AFTER < read_at
    }
}

/// The profile directory of one node.
#[derive(Debug, Clone)]
pub struct ProfileDir {
    path: PathBuf,
    /// Removals announced to the directory watch, so that they do not wake the agent again.
    removals: OwnRemovals,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DirError + 'a {
    move |source| DirError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl ProfileDir {
    /// Opens the directory at `path`, creating it (but not its parents) if it is missing. A
    /// symlink at `path` is refused, not followed.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DirError> {
        let path = path.into();
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", &path)(e)),
        }
        let meta = fs::symlink_metadata(&path).map_err(io_err("inspect directory", &path))?;
        if meta.file_type().is_symlink() {
            return Err(DirError::SymlinkRoot(path));
        }
        if !meta.is_dir() {
            return Err(io_err("open directory", &path)(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory (symlinks are not followed)",
            )));
        }
        Ok(Self {
            path,
            removals: OwnRemovals::default(),
        })
    }

    /// The removals this directory (and its clones) announce before making them.
    pub fn own_removals(&self) -> OwnRemovals {
        self.removals.clone()
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lists every entry with what it is; regular files are hashed. Only a failure to list
    /// the directory fails the scan: an entry that cannot be inspected or read is listed as
    /// [`Entry::Unreadable`], so that one bad entry never hides the others.
    pub fn scan(&self) -> Result<BTreeMap<OsString, Entry>, DirError> {
        self.scan_with(&mut KnownHashes::default())
    }

    /// [`scan`](Self::scan), reading only the files `known` has no hash for at their
    /// current facts, and remembering what it read in `known` (which keeps only the names
    /// present now).
    pub fn scan_with(
        &self,
        known: &mut KnownHashes,
    ) -> Result<BTreeMap<OsString, Entry>, DirError> {
        let mut out = BTreeMap::new();
        let entries = fs::read_dir(&self.path).map_err(io_err("list", &self.path))?;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.path))?;
            let name = entry.file_name();
            // An entry may vanish between listing and inspection; it is simply not there.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    out.insert(name, Entry::Unreadable(format!("inspect: {e}")));
                    continue;
                }
            };
            let kind = meta.file_type();
            let value = if kind.is_symlink() {
                Entry::NotAFile(EntryKind::Symlink)
            } else if kind.is_dir() {
                Entry::NotAFile(EntryKind::Directory)
            } else if kind.is_file() {
                match known.by_name.get(&name) {
                    Some((facts, hash)) if *facts == FileFacts::of(&meta) => {
                        Entry::File { hash: hash.clone() }
                    }
                    _ => match read_file(&entry.path(), &name, known) {
                        Some(value) => value,
                        None => continue,
                    },
                }
            } else {
                Entry::NotAFile(EntryKind::Special)
            };
            out.insert(name, value);
        }
        known
            .by_name
            .retain(|name, _| matches!(out.get(name), Some(Entry::File { .. })));
        Ok(out)
    }

    /// Reads a regular file's bytes; `None` when nothing readable and ours-sized is there
    /// (missing, a symlink, a fifo, oversized).
    pub fn read(&self, name: &OsStr) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.child(name)?;
        match read_regular(&path) {
            Ok(Contents::Bytes(bytes, _)) => Ok(Some(bytes)),
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
    /// under a fresh, unpredictable temporary name in the same directory, created exclusively
    /// (a name someone else took, even with a dangling symlink, is never opened).
    pub fn stage(&self, name: &OsStr, bytes: &[u8]) -> Result<StagedWrite, DirError> {
        let target = self.child(name)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let temp = self
                .path
                .join(temp_name().map_err(io_err("draw a temporary name in", &self.path))?);
            match write_new_file(&temp, bytes) {
                Ok(()) => return Ok(StagedWrite { temp, target }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < TEMP_ATTEMPTS => {}
                Err(e) => return Err(io_err("write", &temp)(e)),
            }
        }
    }

    /// Second half of [`write_atomic`](Self::write_atomic): the temporary file replaces
    /// whatever is at the target name (a file, or a symlink, which is replaced and not
    /// followed), and the directory is synced so that the rename survives a power loss. A
    /// directory at the target name is left alone: [`DirError::DirectoryInTheWay`].
    pub fn commit(&self, staged: StagedWrite) -> Result<(), DirError> {
        let StagedWrite { temp, target } = staged;
        let result = (|| {
            if let Ok(meta) = fs::symlink_metadata(&target)
                && meta.is_dir()
            {
                // rename(2) cannot replace a directory with a file, and removing one would
                // remove whatever someone keeps in it.
                return Err(DirError::DirectoryInTheWay(target.clone()));
            }
            fs::rename(&temp, &target).map_err(io_err("rename into", &target))?;
            self.sync()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes what is at `name`: a file, a fifo, or a symlink itself (never its target). A
    /// directory is not removed ([`DirError::DirectoryInTheWay`]). A name that is already gone
    /// is not an error.
    pub fn remove(&self, name: &OsStr) -> Result<(), DirError> {
        let path = self.child(name)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("inspect", &path)(e)),
        };
        if meta.is_dir() {
            return Err(DirError::DirectoryInTheWay(path));
        }
        self.removals.announce(name);
        match fs::remove_file(&path) {
            Ok(()) => self.sync(),
            Err(e) => {
                self.removals.withdraw(name);
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(io_err("remove", &path)(e))
                }
            }
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

/// A fresh temporary name of exactly [`TEMP_NAME_LEN`] bytes, its tail drawn from the
/// kernel's random source (getrandom(2)).
fn temp_name() -> io::Result<String> {
    let mut random = [0u8; TEMP_RANDOM_LEN];
    let mut filled = 0;
    while filled < random.len() {
        match rustix::rand::getrandom(&mut random[filled..], rustix::rand::GetRandomFlags::empty())
        {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut name = String::with_capacity(TEMP_NAME_LEN);
    name.push_str(TEMP_PREFIX);
    // 256 is a multiple of 32: the low 5 bits of a uniform byte are uniform.
    name.extend(
        random
            .iter()
            .map(|b| char::from(TEMP_ALPHABET[usize::from(b & 31)])),
    );
    Ok(name)
}

/// Whether `name` is one of seccompd's temporary names, of this release or an earlier one: the
/// prefix, the fixed length, then only lowercase letters, digits and `-`.
pub fn is_temp_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    bytes.len() == TEMP_NAME_LEN
        && bytes.starts_with(TEMP_PREFIX.as_bytes())
        && bytes[TEMP_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
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

/// Creates `path` (`O_CREAT|O_EXCL|O_NOFOLLOW`: failing if anything exists there, symlinks
/// included), writes and syncs. A file it created and could not finish is removed again;
/// whatever was there before is never touched.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let written = (|| {
        // The process umask may have cleared bits; the runtime must be able to read the file.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// What [`read_regular`] found.
enum Contents {
    /// The bytes, and the file's facts as it was opened.
    Bytes(Vec<u8>, Metadata),
    Oversized,
    NotRegular,
}

/// Reads and hashes the regular file `name` at `path` for a scan, remembering its hash in
/// `known` when its facts pin the content down; `None` when it vanished meanwhile.
fn read_file(path: &Path, name: &OsStr, known: &mut KnownHashes) -> Option<Entry> {
    // Taken before the read: a change the facts cannot tell from this read must be older.
    let read_at = SystemTime::now();
    let entry = match read_regular(path) {
        Ok(Contents::Bytes(bytes, meta)) => {
            let hash = content_hash(&bytes);
            let facts = FileFacts::of(&meta);
            if facts.settled(read_at) {
                known
                    .by_name
                    .insert(name.to_os_string(), (facts, hash.clone()));
            } else {
                known.by_name.remove(name);
            }
            Entry::File { hash }
        }
        Ok(Contents::Oversized) => Entry::Oversized,
        // Swapped for something else since listing: not ours either way.
        Ok(Contents::NotRegular) => Entry::NotAFile(EntryKind::Special),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => Entry::Unreadable(format!("read: {e}")),
    };
    Some(entry)
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
    (&file).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Contents::Oversized);
    }
    // The facts from before the read: a write during it changes them, so the next scan
    // does not take this read's bytes for the file's.
    Ok(Contents::Bytes(bytes, meta))
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
    fn a_settled_file_is_hashed_once_and_any_change_to_it_is_seen() {
        let (_tmp, pd) = dir();
        let path = pd.path().join("a.json");
        pd.write_atomic(os("a.json"), b"{\"v\":1}").unwrap();
        let mut known = KnownHashes::default();
        // Just written: its ctime cannot tell a change in the same tick, so it is not kept.
        pd.scan_with(&mut known).unwrap();
        assert!(known.by_name.is_empty(), "a fresh file is read again");
        std::thread::sleep(SETTLED_AFTER * 2);
        let first = pd.scan_with(&mut known).unwrap();
        assert_eq!(
            first[os("a.json")],
            Entry::File {
                hash: content_hash(b"{\"v\":1}")
            }
        );
        // The next scan takes the kept hash without reading: a stand-in hash shows it.
        let stand_in = content_hash(b"kept");
        known.by_name.get_mut(os("a.json")).unwrap().1 = stand_in.clone();
        assert_eq!(
            pd.scan_with(&mut known).unwrap()[os("a.json")],
            Entry::File {
                hash: stand_in.clone()
            }
        );
        // Edited in place to the same size, its modification time put back: the ctime (which
        // nobody can set) still tells, and the file is read again.
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, b"{\"v\":2}").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(
            pd.scan_with(&mut known).unwrap()[os("a.json")],
            Entry::File {
                hash: content_hash(b"{\"v\":2}")
            }
        );
        // Removed: forgotten.
        fs::remove_file(&path).unwrap();
        assert!(pd.scan_with(&mut known).unwrap().is_empty());
        assert!(known.by_name.is_empty());
    }

    #[test]
    fn a_file_swapped_for_another_of_the_same_size_and_times_is_read_again() {
        let (tmp, pd) = dir();
        pd.write_atomic(os("a.json"), b"aaaa").unwrap();
        std::thread::sleep(SETTLED_AFTER * 2);
        let mut known = KnownHashes::default();
        pd.scan_with(&mut known).unwrap();
        assert_eq!(known.by_name.len(), 1);
        let meta = fs::metadata(pd.path().join("a.json")).unwrap();
        let other = tmp.path().join("other");
        fs::write(&other, b"bbbb").unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        fs::rename(&other, pd.path().join("a.json")).unwrap();
        assert_eq!(
            pd.scan_with(&mut known).unwrap()[os("a.json")],
            Entry::File {
                hash: content_hash(b"bbbb")
            }
        );
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
        assert_eq!(temp_name().unwrap().len(), TEMP_NAME_LEN);
    }

    #[test]
    fn temporary_names_are_random_and_recognised_as_seccompds() {
        let names: std::collections::BTreeSet<String> =
            (0..64).map(|_| temp_name().unwrap()).collect();
        assert_eq!(names.len(), 64, "no name drawn twice");
        for name in &names {
            assert!(is_temp_name(os(name)), "{name}");
        }
        // An earlier release's name: process id and counter in hex.
        assert!(is_temp_name(os(".seccompd-tmp-0000002a-0000000000000007")));
        for other in [
            ".seccompd-tmp-",
            ".seccompd-tmp-short",
            ".seccompd-tmp-0000002a-00000000000000070",
            ".seccompd-tmp-0000002A-0000000000000007",
            ".seccompd-tmp-0000002a/0000000000000007",
            "x.seccompd-tmp-0000002a-000000000000007",
            "a.json",
        ] {
            assert!(!is_temp_name(os(other)), "{other}");
        }
    }

    #[test]
    fn a_new_file_never_opens_or_removes_what_is_already_at_its_name() {
        let (tmp, pd) = dir();
        let outside = tmp.path().join("outside.txt");
        fs::write(&outside, b"precious").unwrap();
        let taken = pd.path().join("taken");
        symlink(&outside, &taken).unwrap();
        let err = write_new_file(&taken, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            fs::symlink_metadata(&taken)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
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
    fn a_directory_is_never_replaced_or_removed() {
        let (_tmp, pd) = dir();
        fs::create_dir_all(pd.path().join("p.json/sub")).unwrap();
        fs::write(pd.path().join("p.json/sub/keep"), b"theirs").unwrap();
        assert_eq!(
            pd.scan().unwrap().get(os("p.json")),
            Some(&Entry::NotAFile(EntryKind::Directory))
        );
        assert!(matches!(
            pd.write_atomic(os("p.json"), b"profile"),
            Err(DirError::DirectoryInTheWay(_))
        ));
        assert!(matches!(
            pd.remove(os("p.json")),
            Err(DirError::DirectoryInTheWay(_))
        ));
        assert_eq!(
            fs::read(pd.path().join("p.json/sub/keep")).unwrap(),
            b"theirs"
        );
        assert_eq!(pd.scan().unwrap().len(), 1, "the staged file went too");
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
        let err = ProfileDir::open(tmp.path().join("seccompd")).unwrap_err();
        assert!(matches!(err, DirError::SymlinkRoot(_)), "{err}");
        assert!(err.to_string().contains("is a symlink"), "{err}");
    }
}
