//! Which OCI runtime this node's profiles are judged for: the node's own label wins (it is
//! set per node pool, where the runtime is chosen), then the agent's option (one value for
//! every node of its DaemonSet), then the most conservative runtime seccompd supports. Never
//! one guess for a whole cluster of mixed nodes: a node that says nothing is judged strictly,
//! and its reports say so.

use seccompd_api::RUNTIME_LABEL;
use seccompd_profile::check::NodeRuntime;
use seccompd_profile::runtime::OciRuntime;

/// The runtime chosen and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeChoice {
    /// What profiles are judged for.
    pub runtime: NodeRuntime,
    /// Why this runtime: for the log and the node's report.
    pub source: String,
    /// A label that could not be read, with what to write instead.
    pub problem: Option<String>,
}

/// Chooses from the Node's label value and the agent's option.
pub fn choose(label: Option<&str>, option: Option<OciRuntime>) -> RuntimeChoice {
    let mut problem = None;
    if let Some(value) = label {
        match value.parse::<OciRuntime>() {
            Ok(runtime) => {
                return RuntimeChoice {
                    runtime: NodeRuntime::of(runtime),
                    source: format!("{runtime} (node label {RUNTIME_LABEL})"),
                    problem: None,
                };
            }
            Err(err) => {
                problem = Some(format!(
                    "node label {RUNTIME_LABEL}={value}: {err} (with - for /, e.g. runc-1.5.3)"
                ));
            }
        }
    }
    match option {
        Some(runtime) => RuntimeChoice {
            runtime: NodeRuntime::of(runtime),
            source: format!("{runtime} (agent option --node-runtime)"),
            problem,
        },
        None => RuntimeChoice {
            runtime: NodeRuntime::default(),
            source: format!(
                "{} (assumed: no node label {RUNTIME_LABEL}, no --node-runtime)",
                seccompd_profile::runtime::ASSUMED_RUNTIME
            ),
            problem,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_label_wins_over_the_option() {
        let c = choose(Some("runc-1.5.3"), "runc/1.1.5".parse().ok());
        assert!(c.runtime.flags);
        assert_eq!(c.source, "runc/1.5.3 (node label seccompd.dev/runtime)");
        assert_eq!(c.problem, None);
    }

    #[test]
    fn without_a_label_the_option_decides() {
        let c = choose(None, "crun/1.19".parse().ok());
        assert!(c.runtime.flags && c.runtime.riscv64);
        assert!(c.source.contains("--node-runtime"), "{}", c.source);
    }

    #[test]
    fn a_node_nobody_described_is_judged_strictly_and_says_so() {
        let c = choose(None, None);
        assert!(!c.runtime.flags && !c.runtime.riscv64);
        assert_eq!(c.runtime.runtime, None);
        assert!(c.source.contains("assumed"), "{}", c.source);
    }

    #[test]
    fn an_unreadable_label_falls_back_and_names_the_fix() {
        let c = choose(Some("youki-0.4"), None);
        assert!(!c.runtime.flags);
        let problem = c.problem.unwrap();
        assert!(
            problem.contains("seccompd.dev/runtime=youki-0.4"),
            "{problem}"
        );
        assert!(problem.contains("runc-1.5.3"), "{problem}");
    }
}
