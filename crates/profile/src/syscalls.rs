//! System call names: which strings name a system call on at least one architecture.
//!
//! The list lives in [`syscall_names`](super::syscall_names) as a sorted constant so that the
//! pure validator, the fuzz target and the CRD's CEL rule (which embeds it) all agree without
//! linking libseccomp. A unit test recomputes the list from the installed libseccomp and fails
//! when they drift (by what that version should know: exactly the list when it is the version
//! the list was made from); `SECCOMPD_REGENERATE_SYSCALLS=1 cargo test --lib syscalls` rewrites
//! it.

pub use super::syscall_names::{LIBSECCOMP_VERSION, SYSCALL_NAMES};

use super::limits::MAX_SYSCALL_NAME_LEN;

/// Whether `name` has the shape of a system call name: 1 to [`MAX_SYSCALL_NAME_LEN`] characters from
/// `a-z`, `0-9` and `_`.
pub fn is_well_formed(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SYSCALL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// System calls in recent kernels' tables (Linux 6.6 to 6.17) that libseccomp
/// [`LIBSECCOMP_VERSION`] does not know yet. They are accepted so that current profiles (which
/// list them) validate; a node whose libseccomp lacks them skips them, as runc and crun do.
/// The syscalls test fails when libseccomp learns one of them, so the list only shrinks.
pub const NEWER_THAN_LIBSECCOMP: &[&str] = &[
    "file_getattr",
    "file_setattr",
    "getxattrat",
    "listmount",
    "listxattrat",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lsm_set_self_attr",
    "mseal",
    "open_tree_attr",
    "removexattrat",
    "setxattrat",
    "statmount",
    "uretprobe",
];

/// Whether `name` is a system call on at least one architecture: known to libseccomp, or in
/// [`NEWER_THAN_LIBSECCOMP`].
pub fn is_known(name: &str) -> bool {
    SYSCALL_NAMES.binary_search(&name).is_ok() || NEWER_THAN_LIBSECCOMP.contains(&name)
}

/// Whether the libseccomp this binary was built against knows `name`.
pub fn is_known_to_libseccomp(name: &str) -> bool {
    SYSCALL_NAMES.binary_search(&name).is_ok()
}

/// Every accepted name, sorted: [`SYSCALL_NAMES`] and [`NEWER_THAN_LIBSECCOMP`].
pub fn all_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = SYSCALL_NAMES
        .iter()
        .chain(NEWER_THAN_LIBSECCOMP)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The known name closest to `name` by edit distance, when it is close enough to be a likely
/// typo (at most 2 edits, or a case difference).
pub fn suggest(name: &str) -> Option<&'static str> {
    if name.len() > MAX_SYSCALL_NAME_LEN * 2 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    if is_known(&lower) {
        return all_names().into_iter().find(|n| *n == lower);
    }
    all_names()
        .into_iter()
        .map(|known| (edit_distance(&lower, known), known))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance over bytes; inputs are short (bounded by the caller).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;
    use std::collections::BTreeSet;

    use libseccomp::{ScmpArch, ScmpSyscall, ScmpVersion};

    use super::*;

    /// Every architecture libseccomp 2.5 can add to a filter.
    const ARCHES: &[ScmpArch] = &[
        ScmpArch::X86,
        ScmpArch::X8664,
        ScmpArch::X32,
        ScmpArch::Arm,
        ScmpArch::Aarch64,
        ScmpArch::Mips,
        ScmpArch::Mips64,
        ScmpArch::Mips64N32,
        ScmpArch::Mipsel,
        ScmpArch::Mipsel64,
        ScmpArch::Mipsel64N32,
        ScmpArch::Ppc,
        ScmpArch::Ppc64,
        ScmpArch::Ppc64Le,
        ScmpArch::S390,
        ScmpArch::S390X,
        ScmpArch::Parisc,
        ScmpArch::Parisc64,
        ScmpArch::Riscv64,
    ];

    /// Every name libseccomp maps a real system call number to, on any architecture. Numbers
    /// are scanned over the ranges the ABIs use: plain, MIPS o32/n64/n32 (4000/5000/6000),
    /// ARM private calls (0xf0000) and x32 (bit 30).
    fn names_from_libseccomp() -> BTreeSet<String> {
        let ranges = [0..8000, 0xf_0000..0xf_0100, 0x4000_0000..0x4000_1000];
        let mut names = BTreeSet::new();
        for &arch in ARCHES {
            for range in ranges.clone() {
                for nr in range {
                    if let Ok(name) = ScmpSyscall::from(nr).get_name_by_arch(arch) {
                        names.insert(name);
                    }
                }
            }
        }
        names
    }

    fn render_table(names: &BTreeSet<String>, version: &str) -> String {
        let mut out = String::from(
            "//! Generated by `SECCOMPD_REGENERATE_SYSCALLS=1 cargo test --lib syscalls`: every name\n\
             //! that is a system call on at least one architecture, sorted. Do not edit by hand.\n\n\
             /// The libseccomp version the list was generated from.\n",
        );
        out.push_str(&format!(
            "pub const LIBSECCOMP_VERSION: &str = \"{version}\";\n\n"
        ));
        out.push_str("/// Sorted system call names.\npub const SYSCALL_NAMES: &[&str] = &[\n");
        for name in names {
            out.push_str(&format!("    \"{name}\",\n"));
        }
        out.push_str("];\n");
        out
    }

    /// The installed libseccomp's version and the table's, as comparable triples.
    fn versions() -> (ScmpVersion, std::cmp::Ordering) {
        let installed = ScmpVersion::current().expect("libseccomp's version");
        let table: Vec<u32> = LIBSECCOMP_VERSION
            .split('.')
            .map(|n| n.parse().expect("a version number"))
            .collect();
        let order = [installed.major, installed.minor, installed.micro]
            .as_slice()
            .cmp(table.as_slice());
        (installed, order)
    }

    /// How a libseccomp that knows `names` (at `installed`, in `order` to the table's version)
    /// disagrees with a `table` made from [`LIBSECCOMP_VERSION`]: not at all when it is that
    /// version and knows exactly the table; when it is newer, it still knows every name of the
    /// table (libseccomp only adds names) and each name it learned since is in `newer`, so
    /// that seccompd accepts it; when it is older, the table holds all it knows.
    fn drift(
        installed: &str,
        order: Ordering,
        names: &BTreeSet<String>,
        table: &BTreeSet<String>,
        newer: &[&str],
    ) -> Result<(), String> {
        let missing: Vec<_> = names.difference(table).collect();
        let extra: Vec<_> = table.difference(names).collect();
        let regenerate = "run SECCOMPD_REGENERATE_SYSCALLS=1 cargo test --lib syscalls";
        let unlisted: Vec<_> = missing
            .iter()
            .filter(|n| !newer.contains(&n.as_str()))
            .collect();
        match order {
            Ordering::Equal if !missing.is_empty() || !extra.is_empty() => Err(format!(
                "crates/profile/src/syscall_names.rs is out of date with libseccomp {installed}: \
                 missing {missing:?}, extra {extra:?}; {regenerate}"
            )),
            Ordering::Greater if !extra.is_empty() => Err(format!(
                "libseccomp {installed} no longer knows {extra:?} of the table from \
                 {LIBSECCOMP_VERSION}"
            )),
            Ordering::Greater if !unlisted.is_empty() => Err(format!(
                "libseccomp {installed} knows {unlisted:?}, which neither the table from \
                 {LIBSECCOMP_VERSION} nor NEWER_THAN_LIBSECCOMP has, so seccompd refuses them: \
                 list them in NEWER_THAN_LIBSECCOMP, or, when the nodes' libseccomp is \
                 {installed} too, {regenerate}"
            )),
            Ordering::Less if !missing.is_empty() => Err(format!(
                "libseccomp {installed} knows {missing:?}, which the table from the newer \
                 {LIBSECCOMP_VERSION} lacks; {regenerate} with libseccomp {LIBSECCOMP_VERSION}"
            )),
            _ => Ok(()),
        }
    }

    #[test]
    fn table_matches_installed_libseccomp() {
        let (installed, order) = versions();
        let names = names_from_libseccomp();
        if std::env::var_os("SECCOMPD_REGENERATE_SYSCALLS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/syscall_names.rs");
            std::fs::write(path, render_table(&names, &installed.to_string())).unwrap();
        }
        let table: BTreeSet<String> = SYSCALL_NAMES.iter().map(|s| s.to_string()).collect();
        let installed = installed.to_string();
        if let Err(drifted) = drift(&installed, order, &names, &table, NEWER_THAN_LIBSECCOMP) {
            panic!("{drifted}");
        }
    }

    #[test]
    fn drift_is_judged_by_the_installed_version() {
        let set =
            |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
        let table = set(&["read", "write"]);
        let check = |order, names: &[&str]| drift("x", order, &set(names), &table, &["mseal"]);
        assert!(check(Ordering::Equal, &["read", "write"]).is_ok());
        assert!(check(Ordering::Equal, &["read", "write", "mseal"]).is_err());
        assert!(check(Ordering::Equal, &["read"]).is_err());
        assert!(check(Ordering::Greater, &["read", "write", "mseal"]).is_ok());
        assert!(check(Ordering::Greater, &["read", "write", "open_tree"]).is_err());
        assert!(check(Ordering::Greater, &["read", "mseal"]).is_err());
        assert!(check(Ordering::Less, &["read"]).is_ok());
        assert!(check(Ordering::Less, &["read", "mseal"]).is_err());
    }

    #[test]
    fn every_listed_name_resolves_by_name_somewhere() {
        let (installed, order) = versions();
        for name in SYSCALL_NAMES {
            let found = ARCHES.iter().any(|&arch| {
                ScmpSyscall::from_name_by_arch(name, arch)
                    .map(|s| i32::from(s) >= 0)
                    .unwrap_or(false)
            });
            // An older libseccomp than the table's does not know the newest names.
            assert!(
                found || order == Ordering::Less,
                "{name} resolves on no architecture with libseccomp {installed}"
            );
        }
    }

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        assert!(SYSCALL_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert!(NEWER_THAN_LIBSECCOMP.windows(2).all(|w| w[0] < w[1]));
        assert!(all_names().iter().all(|n| is_well_formed(n)));
    }

    /// The names newer than the table are not in it, and the libseccomp the table was made from
    /// (or an older one) does not know them: once libseccomp learns one and the table is
    /// regenerated from it, it leaves the list. A newer libseccomp may know them.
    #[test]
    fn newer_names_are_still_unknown_to_libseccomp() {
        let (installed, order) = versions();
        for name in NEWER_THAN_LIBSECCOMP {
            assert!(
                !SYSCALL_NAMES.contains(name),
                "the table has {name}: remove it from NEWER_THAN_LIBSECCOMP"
            );
            let known = ARCHES
                .iter()
                .any(|&a| ScmpSyscall::from_name_by_arch(name, a).is_ok());
            assert!(
                !known || order == Ordering::Greater,
                "libseccomp {installed} knows {name}: remove it from NEWER_THAN_LIBSECCOMP"
            );
        }
        assert!(is_known("mseal") && !is_known_to_libseccomp("mseal"));
    }

    #[test]
    fn common_names_are_known_and_typos_are_not() {
        for name in [
            "read",
            "execve",
            "openat",
            "clone3",
            "_llseek",
            "socketcall",
        ] {
            assert!(is_known(name), "{name}");
        }
        for name in ["", "opn", "READ", "execve ", "not_a_syscall"] {
            assert!(!is_known(name), "{name}");
        }
    }

    #[test]
    fn shape_check() {
        assert!(is_well_formed("clock_gettime64"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("Read"));
        assert!(!is_well_formed("read\n"));
        assert!(!is_well_formed(&"a".repeat(MAX_SYSCALL_NAME_LEN + 1)));
    }

    #[test]
    fn suggestions_fix_typos_and_case() {
        assert_eq!(suggest("opnat"), Some("openat"));
        assert_eq!(suggest("READ"), Some("read"));
        assert_eq!(suggest("zzzzzzzzzzzz"), None);
    }
}
