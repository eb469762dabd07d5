//! Every bound seccompd puts on a profile, its name, its file and its check, and on what nodes
//! and the controller say about profiles (node reports, statuses), defined once. The CRDs'
//! schemas and CEL rules, the structural validation, the node check, the agent's file names
//! and reports, the status writer and the CLI all read them from here, and
//! `docs/validation.md` lists the profile bounds from [`bounds`] (a unit test fails when the
//! two differ).
//!
//! No imports from the rest of the profile module: everything else may depend on this.

use std::time::Duration;

/// The longest file name Linux file systems accept, in bytes (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Suffix of an installed profile's file: `<name>.json`.
pub const FILE_SUFFIX: &str = ".json";

/// Longest SeccompProfile name: `<name>.json` must fit a file name.
pub const MAX_PROFILE_NAME_LEN: usize = NAME_MAX - FILE_SUFFIX.len();

/// The name of the built-in profile every agent installs (`seccompd/record.json`): it logs
/// every call, for recording. Reserved: no SeccompProfile may take it, so that the file
/// always is the built-in one.
pub const RECORD_PROFILE: &str = "record";

/// The name of the built-in profile every agent installs (`seccompd/default.json`): the
/// container runtimes' default allow-list (Docker's) with the SeccompFloors merged, for pods
/// that would otherwise use `RuntimeDefault`. Reserved like [`RECORD_PROFILE`].
pub const DEFAULT_PROFILE: &str = "default";

/// Highest errno a rule may return; libseccomp 2.5 rejects 4095 and above.
pub const MAX_ERRNO: u32 = 4094;

/// Highest system call argument index (six arguments, 0 to 5).
pub const MAX_ARG_INDEX: u32 = 5;

/// Most rules one SeccompProfile may hold (bounds the CRD's CEL cost and the compile time).
pub const MAX_RULES: usize = 512;

/// Most names one rule may list.
pub const MAX_NAMES_PER_RULE: usize = 512;

/// Most argument conditions one rule may hold (one per argument).
pub const MAX_ARGS_PER_RULE: usize = 6;

/// Most entries in `architectures`.
pub const MAX_ARCHITECTURES: usize = 32;

/// Most entries in `flags`.
pub const MAX_FLAGS: usize = 8;

/// Longest system call name accepted. The longest real one is about 25 characters; the bound
/// keeps the CEL cost estimate and the validator's work small.
pub const MAX_SYSCALL_NAME_LEN: usize = 64;

/// How many bases a chain may have. Deep chains are almost certainly mistakes and would make
/// every profile change fan out widely.
pub const MAX_BASE_DEPTH: usize = 16;

/// Largest profile file, in bytes: the most a rendered profile may be, and the most the agent
/// reads back from its directory (anything larger is not one of its files). A profile and its
/// bases may each be within the API's object size and still render larger than this.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Largest input the CLI reads, in bytes. The API server stores objects of at most 1.5 MiB.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Upper bound on the compile weight (argument conditions over all (call, rule) pairs).
/// libseccomp 2.5's compile time grows with the square or cube of the program it builds, and
/// argument conditions dominate it (measured here with distinct values: 2000 one-condition
/// (call, rule) pairs 2 s; 1000 two-condition pairs 7 s; 500 four-condition pairs 7 s; 500
/// six-condition pairs 27 s; runc spent over 40 s on 6000 one-condition rules). At this bound
/// the slowest shape takes about 3 s on an idle core (up to 10 s on a 2-core VM under a full
/// build), and a profile above it is almost always over the kernel's instruction limit
/// anyway. Real profiles weigh far less (Docker's default: 7).
pub const MAX_WEIGHT: usize = 1_200;

/// The kernel refuses seccomp programs longer than this (BPF_MAXINSNS).
pub const MAX_BPF_INSTRUCTIONS: usize = 4096;

/// The kernel refuses to attach a filter when the filters of a task would then hold more than
/// this many instructions together, each counting four more for its overhead
/// (MAX_INSNS_PER_PATH). A container's filter is one of them: a runtime or a program inside
/// that stacks filters of its own shares this budget.
pub const MAX_TASK_BPF_INSTRUCTIONS: usize = 32_768;

/// Longest SeccompFloor name: a DNS subdomain.
pub const MAX_FLOOR_NAME_LEN: usize = 253;

/// Most rules one SeccompFloor may hold: every profile on every node carries all of them.
pub const MAX_FLOOR_RULES: usize = 64;

/// Most SeccompFloors one node report describes; the floors beyond them (by name) are not
/// reported, and their status stays Partial. Floors are an administrator's few cluster-wide
/// rules, not one per team.
pub const MAX_REPORT_FLOORS: usize = 32;

/// Longest reason, in characters, that a node report gives for a profile missing a floor
/// (the profile's own exception carries the whole reason): short, so that a report with every
/// floor missing from as many profiles as it names still fits one API object.
pub const MAX_FLOOR_REASON_LEN: usize = 200;

/// Most profiles one SeccompFloor may exempt.
pub const MAX_FLOOR_EXEMPTIONS: usize = 256;

/// Most single values a floor's merge writes as one equality each, where a profile's allow
/// rule narrowed by a floor condition leaves a short run of values between two others (an
/// allow of `socket` for every family but 40, narrowed by a floor on 38, leaves 39 between
/// them). A longer run (which would need two comparisons on one argument, which libseccomp
/// cannot AND) is written as aligned blocks, one masked equality each.
pub const MAX_SPLIT_VALUES: u64 = 16;

/// How long one compile may take before it is abandoned: a backstop well above the slowest
/// profile [`MAX_WEIGHT`] admits, so that a busy node does not turn a heavy but valid profile
/// into a timeout. A timeout is not a verdict: the node tries again later.
pub const COMPILE_BUDGET: Duration = Duration::from_secs(30);

/// Most bytes the API server stores in one object: etcd's default request limit, which the
/// API server also applies to a request's body. A report at every bound below must fit it.
pub const MAX_API_OBJECT_BYTES: usize = 3 * 1024 * 1024 / 2;

/// Longest Kubernetes node name: a node is named by a DNS subdomain, at most 253 characters.
/// Bounds the node names a SeccompProfile's status lists.
pub const MAX_NODE_NAME_LEN: usize = 253;

/// Most exceptions one SeccompNodeReport lists; `exceptionsOmitted` counts the rest. A node
/// with more has a problem of its own (a full disk, a seccomp library that rejects every
/// profile) that the first ones already show, and a larger list would only grow every read of
/// the report. With names of [`MAX_PROFILE_NAME_LEN`] and reasons of [`MAX_REASON_LEN`]
/// characters that JSON escapes at 6 bytes each, a full report still fits
/// [`MAX_API_OBJECT_BYTES`] (about 0.8 MiB), so the agent's write never fails for its size.
pub const MAX_REPORT_EXCEPTIONS: usize = 128;

/// Most profiles whose warnings one SeccompNodeReport lists (what the node's runtime or seccomp
/// library does with a profile it installs, one entry per profile with its warnings joined and
/// cut to [`MAX_WARNING_LEN`]); `warningsOmitted` counts the rest. A node that warns of more
/// has one cause for most of them (a runtime that needs calls many allowlists lack), which
/// the first ones already show; with every other list of the report at its bound, the report
/// still fits [`MAX_API_OBJECT_BYTES`].
pub const MAX_REPORT_WARNINGS: usize = 32;

/// Longest warning, in characters, that a node report gives for one profile and that a
/// SeccompProfile's status repeats for one node: room for runc 1.5's calls after the filter
/// and a list of names the node's libseccomp does not know (about 200 characters each), and
/// short enough that a report with [`MAX_REPORT_WARNINGS`] of them and every other list at its
/// bound fits [`MAX_API_OBJECT_BYTES`]. A longer one is cut with a marker.
pub const MAX_WARNING_LEN: usize = 512;

/// Longest reason, in characters (what the API server's `maxLength` counts), that a node
/// report gives for one profile and that a SeccompProfile's status repeats for one node.
/// Room for a validation error with its fix or a list of pods, and small enough that the
/// status, which repeats up to [`MAX_LISTED_NODES`] of them, stays small; a longer reason is
/// cut with a marker.
pub const MAX_REASON_LEN: usize = 1024;

/// How many unknown entries of the agent's directory a node report, a log line or a refusal
/// names; the rest are only counted.
pub const MAX_NAMED_ENTRIES: usize = 10;

/// How many lagging nodes a SeccompProfile's status lists by name; `omittedNodes` counts the
/// rest. Enough to see a pattern (one zone, one kernel), and it keeps the status, which every
/// agent receives, the same size on a cluster of any size.
pub const MAX_LISTED_NODES: usize = 20;

/// Most (profile, system call, action) entries one node's denial report holds; records of
/// further keys are only counted (`omittedRecords`). A node's recorder keeps no more in
/// memory, whatever its workloads call, and its report stays far below
/// [`MAX_API_OBJECT_BYTES`] (each entry holds at most [`MAX_DENIAL_EXAMPLES`] pods).
pub const MAX_NODE_DENIAL_ENTRIES: usize = 256;

/// How many example pods (and, in a profile's status, nodes) one denial entry names; the
/// count covers all of them.
pub const MAX_DENIAL_EXAMPLES: usize = 3;

/// How many system calls a SeccompProfile's `status.denials` lists (the most counted first);
/// `omittedSyscalls` counts the rest.
pub const MAX_STATUS_DENIAL_SYSCALLS: usize = 20;

/// How many attributed records of not yet known containers (their pod or container status has
/// not reached the recorder's watch) a recorder keeps, by key, until it can tell their
/// profile; records of further keys are counted lost.
pub const MAX_PENDING_DENIAL_KEYS: usize = 4096;

/// How often at most a node writes its denial report (and only when it changed): a node costs
/// the API at most one write per interval whatever its workloads call.
pub const DENIAL_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// How many Events about denials one node's recorder sends per minute at most (one per pod,
/// system call and action; the rest are only counted).
pub const DENIAL_EVENTS_PER_MINUTE: u32 = 30;

/// How many (pod, system call, action) keys a recorder remembers having sent an Event for;
/// beyond it no further Events are sent until pods are forgotten.
pub const MAX_DENIAL_EVENT_KEYS: usize = 4096;
/// Longest Kubernetes container name (a DNS label), as a SeccompProfileBinding names them.
pub const MAX_CONTAINER_NAME_LEN: usize = 63;

/// Most containers one SeccompProfileBinding names (`spec.containers`). The admission policy
/// compares every container of a pod with each of them, so the bound keeps its CEL cost low;
/// a pod with more containers than this is bound whole (no `containers`) or by several
/// bindings of the same profile.
pub const MAX_BINDING_CONTAINERS: usize = 64;

/// Most terms in a SeccompProfileBinding's pod selector: `matchLabels` entries, and
/// `matchExpressions` requirements, each. The admission policy evaluates them in CEL for every
/// pod created in the binding's namespace.
pub const MAX_SELECTOR_TERMS: usize = 32;

/// Most values of one `matchExpressions` requirement of a SeccompProfileBinding.
pub const MAX_SELECTOR_VALUES: usize = 64;

/// Longest label key (a DNS-subdomain prefix of 253 characters, `/` and a name of 63) and
/// longest label value (63), as a SeccompProfileBinding's selector names them.
pub const MAX_LABEL_KEY_LEN: usize = 317;
/// See [`MAX_LABEL_KEY_LEN`].
pub const MAX_LABEL_VALUE_LEN: usize = 63;

/// One bound as `docs/validation.md` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The constant's name in this module.
    pub constant: &'static str,
    /// Its value, in words.
    pub value: String,
    /// What it bounds.
    pub what: &'static str,
    /// Where it is first checked.
    pub checked: &'static str,
}

fn bound(
    constant: &'static str,
    value: impl ToString,
    what: &'static str,
    checked: &'static str,
) -> Bound {
    Bound {
        constant,
        value: value.to_string(),
        what,
        checked,
    }
}

/// Every bound, in the order `docs/validation.md` lists them.
pub fn bounds() -> Vec<Bound> {
    const APPLY: &str = "`kubectl apply` (CRD schema)";
    vec![
        bound(
            "MAX_PROFILE_NAME_LEN",
            MAX_PROFILE_NAME_LEN,
            "characters in `metadata.name` and `baseProfileName` (`<name>.json` fits NAME_MAX, 255 bytes)",
            "`kubectl apply` (CEL)",
        ),
        bound("MAX_RULES", MAX_RULES, "rules in `syscalls`", APPLY),
        bound(
            "MAX_NAMES_PER_RULE",
            MAX_NAMES_PER_RULE,
            "names in one rule",
            APPLY,
        ),
        bound(
            "MAX_SYSCALL_NAME_LEN",
            MAX_SYSCALL_NAME_LEN,
            "characters in one system call name",
            APPLY,
        ),
        bound(
            "MAX_ARGS_PER_RULE",
            MAX_ARGS_PER_RULE,
            "argument conditions in one rule",
            APPLY,
        ),
        bound(
            "MAX_ARG_INDEX",
            MAX_ARG_INDEX,
            "an argument's `index`",
            "`kubectl apply` (CEL)",
        ),
        bound(
            "MAX_ERRNO",
            MAX_ERRNO,
            "`errnoRet` and `defaultErrnoRet`",
            "`kubectl apply` (CEL)",
        ),
        bound(
            "MAX_ARCHITECTURES",
            MAX_ARCHITECTURES,
            "entries in `architectures`",
            APPLY,
        ),
        bound("MAX_FLAGS", MAX_FLAGS, "entries in `flags`", APPLY),
        bound(
            "MAX_BASE_DEPTH",
            MAX_BASE_DEPTH,
            "bases in a `baseProfileName` chain",
            "status writer and node (resolution)",
        ),
        bound(
            "MAX_FILE_BYTES",
            format!("{} MiB", MAX_FILE_BYTES / (1024 * 1024)),
            "the rendered file of a profile with its bases (and what the agent reads back)",
            "status writer and node (rendering), `seccompd validate`",
        ),
        bound(
            "MAX_WEIGHT",
            MAX_WEIGHT,
            "argument conditions over all (call, rule) pairs",
            "node and `seccompd validate` (before compiling)",
        ),
        bound(
            "MAX_BPF_INSTRUCTIONS",
            MAX_BPF_INSTRUCTIONS,
            "instructions of the compiled filter",
            "node and `seccompd validate` (libseccomp compile)",
        ),
        bound(
            "MAX_TASK_BPF_INSTRUCTIONS",
            MAX_TASK_BPF_INSTRUCTIONS,
            "instructions of every filter of one task together (the kernel's limit)",
            "reported as headroom; not checked (the runtime's own filters are not known)",
        ),
        bound(
            "MAX_FLOOR_RULES",
            MAX_FLOOR_RULES,
            "rules in a SeccompFloor's `rules`",
            APPLY,
        ),
        bound(
            "MAX_FLOOR_EXEMPTIONS",
            MAX_FLOOR_EXEMPTIONS,
            "entries in a SeccompFloor's `exemptProfiles`",
            APPLY,
        ),
        bound(
            "MAX_SPLIT_VALUES",
            MAX_SPLIT_VALUES,
            "single values a floor's merge writes as equalities when it narrows an allow rule (longer runs become masked blocks)",
            "node (merge)",
        ),
        bound(
            "COMPILE_BUDGET",
            format!("{} s", COMPILE_BUDGET.as_secs()),
            "one compile (a timeout is retried later, not a verdict)",
            "node and `seccompd validate`",
        ),
        bound(
            "MAX_INPUT_BYTES",
            format!("{} MiB", MAX_INPUT_BYTES / (1024 * 1024)),
            "a file handed to `seccompd validate` or `seccompd import`",
            "CLI",
        ),
    ]
}

/// The Markdown table of [`bounds`], as `docs/validation.md` holds it.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| bound | value | what it limits | first checked |\n| --- | --- | --- | --- |\n",
    );
    for b in bounds() {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            b.constant, b.value, b.what, b.checked
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- bounds:begin (generated from crates/profile/src/limits.rs) -->\n";
    const END: &str = "<!-- bounds:end -->";

    /// `SECCOMPD_REGENERATE_DOCS=1 cargo test -p seccompd-profile limits` rewrites the table in the docs.
    #[test]
    fn docs_list_exactly_these_bounds() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/validation.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let start = docs
            .find(BEGIN)
            .expect("docs/validation.md has the bounds markers")
            + BEGIN.len();
        let end = docs[start..].find(END).expect("end marker") + start;
        if std::env::var_os("SECCOMPD_REGENERATE_DOCS").is_some() {
            let fresh = format!("{}{}{}", &docs[..start], markdown_table(), &docs[end..]);
            std::fs::write(path, fresh).unwrap();
            return;
        }
        assert_eq!(
            &docs[start..end],
            markdown_table(),
            "docs/validation.md lists other bounds than crates/profile/src/limits.rs: run SECCOMPD_REGENERATE_DOCS=1 cargo test -p seccompd-profile limits"
        );
    }

    #[test]
    fn a_profile_file_name_at_the_bound_fits_name_max() {
        assert_eq!(MAX_PROFILE_NAME_LEN + FILE_SUFFIX.len(), NAME_MAX);
    }
}
