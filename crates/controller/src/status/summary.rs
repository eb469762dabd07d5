//! Pure status decisions: from every node's report of one profile to the SeccompProfile's
//! status (phase, `n/m`, the mode in force, conditions, the nodes that lag and why, the
//! nodes' warnings).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::progress::Holding;
use seccompd_api::reason::{bounded_reason, bounded_warning};
use seccompd_api::{
    CONDITION_READY, ModeInForce, NodeProblem, NodeProblemState, NodeProfileState, NodeWarning,
    Phase, ProfileReport, ProfileWarning, SeccompProfileStatus, localhost_profile,
};
use seccompd_profile::limits::{MAX_LISTED_NODES, MAX_REPORT_EXCEPTIONS, MAX_REPORT_FLOORS};
use seccompd_profile::model::Mode;
use seccompd_profile::render::ContentHash;

/// What the cluster-side resolution of the profile says the nodes should install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Nodes should report Installed with this content hash.
    Hash(ContentHash),
    /// The profile cannot be installed anywhere (for example a missing base), for this reason.
    Invalid(String),
}

/// What one node has told the cluster, as far as this profile is concerned.
#[derive(Clone, Copy, Debug)]
pub enum NodeView<'a> {
    /// The node has no agent report at all yet.
    NoAgent,
    /// The agent has not finished its first sync.
    Syncing,
    /// The agent has synced.
    Reported {
        /// The profile's entry among the node's exceptions, if it has one.
        exception: Option<&'a ProfileReport>,
        /// What the node's digest says it holds of the profile.
        holding: Holding,
        /// How many exceptions the node's report leaves out (`exceptionsOmitted`): while
        /// there are any, a profile it has not confirmed may be one of them.
        omitted: u32,
        /// What the node warns of the profile, if it lists a warning.
        warning: Option<&'a ProfileWarning>,
    },
}

/// Everything the decision needs about one profile.
#[derive(Debug)]
pub struct ProfileFacts<'a> {
    /// metadata.name.
    pub name: &'a str,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// spec.mode: the mode of what nodes should install.
    pub mode: Mode,
    /// What nodes should install.
    pub expected: Expected,
    /// Every node of the cluster, by name.
    pub nodes: BTreeMap<&'a str, NodeView<'a>>,
    /// The floors merged into what nodes should install, by name.
    pub floors: &'a [String],
}

/// Decides the status. `previous` keeps the Ready condition's lastTransitionTime stable while
/// its status does not change, and tells which mode was in force before (see
/// [`mode_in_force`]); `now` stamps the condition when it changes.
///
/// The status stays bounded whatever the nodes report: it names at most [`MAX_LISTED_NODES`]
/// lagging nodes (`omittedNodes` counts the rest) and as many nodes' warnings
/// (`omittedWarnings`), every reason, like the Ready condition's message, is cut by
/// [`bounded_reason`], and every warning by [`bounded_warning`].
pub fn summarize(
    facts: &ProfileFacts<'_>,
    previous: Option<&SeccompProfileStatus>,
    now: &Time,
) -> SeccompProfileStatus {
    let mut installed = 0u32;
    let mut problems = Vec::new();
    for (node, view) in &facts.nodes {
        match judge_node(&facts.expected, facts.generation, *view) {
            None => installed += 1,
            Some((state, reason)) => problems.push(NodeProblem {
                node_name: node.to_string(),
                state,
                reason: bounded_reason(reason),
            }),
        }
    }
    let mut warnings = node_warnings(facts);
    let total = facts.nodes.len() as u32;
    let phase = phase_of(&facts.expected, installed, total, &problems);
    let mode = mode_in_force(
        facts.mode,
        installed == total,
        previous.and_then(|p| p.mode),
    );
    let message = match (&facts.expected, problems.first()) {
        (Expected::Invalid(reason), _) => reason.clone(),
        (_, None) if total > 0 => format!("installed on all {total} nodes"),
        (_, None) => "no nodes in the cluster".to_string(),
        (_, Some(p)) => format!(
            "installed on {installed}/{total} nodes; {}: {}",
            p.node_name, p.reason
        ),
    };
    let message = match mode.modes() {
        (from, to) if from != to => format!(
            "switching from {} to {}, which the nodes without the current version may not run yet: {message}",
            ModeInForce::settled(from).as_str(),
            ModeInForce::settled(to).as_str()
        ),
        _ => message,
    };
    let omitted = problems.len().saturating_sub(MAX_LISTED_NODES) as u32;
    problems.truncate(MAX_LISTED_NODES);
    let omitted_warnings = warnings.len().saturating_sub(MAX_LISTED_NODES) as u32;
    warnings.truncate(MAX_LISTED_NODES);
    let ready = ready_condition(
        phase,
        bounded_reason(message),
        facts.generation,
        previous,
        now,
    );
    SeccompProfileStatus {
        phase: Some(phase),
        installed: Some(format!("{installed}/{total}")),
        installed_nodes: installed,
        total_nodes: total,
        mode: Some(mode),
        localhost_profile: Some(localhost_profile(facts.name)),
        content_hash: match &facts.expected {
            Expected::Hash(h) => Some(h.clone()),
            Expected::Invalid(_) => None,
        },
        observed_generation: facts.generation,
        conditions: vec![ready],
        nodes: problems,
        omitted_nodes: omitted,
        warnings,
        omitted_warnings,
        floors: facts
            .floors
            .iter()
            .take(MAX_REPORT_FLOORS)
            .cloned()
            .collect(),
        // Written by the denial writer under a field manager of its own.
        denials: None,
    }
}

/// The mode the status shows: what the nodes that have the profile run, as far as the
/// controller can tell. Every node with the current version runs `spec`, the spec's mode
/// (the content hash the nodes confirm is that of the rendering in this mode); a node without
/// it runs an earlier version or none, and which mode that had the controller cannot tell from
/// digests. So the status itself remembers: `previous`, the mode it showed before, names the
/// modes a node without the current version may still run.
///
/// * Every node has the current version (`all_current`): `spec`, settled.
/// * Otherwise, while no other mode may be in force (nothing shown before, as for a new
///   profile, or the same mode settled): `spec`, settled.
/// * Otherwise a switch to `spec` rolls out, and stays shown until every node has the current
///   version, also when the mode is switched back meanwhile (nodes may still run either).
pub fn mode_in_force(spec: Mode, all_current: bool, previous: Option<ModeInForce>) -> ModeInForce {
    let settled = ModeInForce::settled(spec);
    match previous {
        _ if all_current => settled,
        None => settled,
        Some(before) if before.modes() == (spec, spec) => settled,
        Some(_) => ModeInForce::switching_to(spec),
    }
}

/// The warnings of the nodes that give one for the current version (a warning about an
/// earlier rendering is not shown), sorted by node name.
fn node_warnings(facts: &ProfileFacts<'_>) -> Vec<NodeWarning> {
    let Expected::Hash(current) = &facts.expected else {
        return Vec::new();
    };
    facts
        .nodes
        .iter()
        .filter_map(|(node, view)| match view {
            NodeView::Reported {
                warning: Some(w), ..
            } if w.content_hash == *current => Some(NodeWarning {
                node_name: node.to_string(),
                message: bounded_warning(w.message.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// `None` when the node has the expected version, otherwise its state and why.
fn judge_node(
    expected: &Expected,
    generation: Option<i64>,
    view: NodeView<'_>,
) -> Option<(NodeProblemState, String)> {
    let report = match view {
        NodeView::NoAgent => {
            return Some((
                NodeProblemState::Pending,
                "no seccompd agent has reported from this node".into(),
            ));
        }
        NodeView::Syncing => {
            return Some((
                NodeProblemState::Pending,
                "the agent has not finished its first sync".into(),
            ));
        }
        NodeView::Reported {
            exception: None,
            holding: Holding::Current,
            ..
        } => return None,
        NodeView::Reported {
            exception: None,
            holding: Holding::Earlier,
            omitted: 1..,
            ..
        } => {
            return Some((
                NodeProblemState::Outdated,
                format!(
                    "has an earlier version installed; the current one may be among the exceptions this node's report leaves out (it lists at most {MAX_REPORT_EXCEPTIONS}): see its SeccompNodeReport"
                ),
            ));
        }
        NodeView::Reported {
            exception: None,
            holding: Holding::Unconfirmed,
            omitted: 1..,
            ..
        } => {
            return Some((
                NodeProblemState::Pending,
                format!(
                    "not confirmed: this node's report leaves out some exceptions (it lists at most {MAX_REPORT_EXCEPTIONS}), and this profile may be one of them: see its SeccompNodeReport"
                ),
            ));
        }
        NodeView::Reported {
            exception: None,
            holding: Holding::Earlier,
            ..
        } => {
            return Some((
                NodeProblemState::Outdated,
                "has an earlier version installed; the agent has not confirmed the current one yet"
                    .into(),
            ));
        }
        NodeView::Reported {
            exception: None,
            holding: Holding::Unconfirmed,
            ..
        } => {
            return Some((
                NodeProblemState::Pending,
                "the agent has not confirmed this profile yet".into(),
            ));
        }
        NodeView::Reported {
            exception: Some(r), ..
        } => r,
    };
    let current = report.generation >= generation;
    match (report.state, expected) {
        (NodeProfileState::Installed, Expected::Hash(h))
            if report.content_hash.as_ref() == Some(h) =>
        {
            None
        }
        (NodeProfileState::Installed, _) => Some((
            NodeProblemState::Outdated,
            format!(
                "has {} installed, not the current version",
                report
                    .content_hash
                    .as_ref()
                    .map_or("an unknown version", ContentHash::as_str)
            ),
        )),
        (NodeProfileState::Invalid, _) if current => Some((
            NodeProblemState::Invalid,
            report.reason.clone().unwrap_or_else(|| "rejected".into()),
        )),
        (NodeProfileState::Error, _) if current => Some((
            NodeProblemState::Error,
            report.reason.clone().unwrap_or_else(|| "failed".into()),
        )),
        _ => Some((
            NodeProblemState::Pending,
            "the agent has not processed the current generation yet".into(),
        )),
    }
}

fn phase_of(expected: &Expected, installed: u32, total: u32, problems: &[NodeProblem]) -> Phase {
    if matches!(expected, Expected::Invalid(_)) {
        return Phase::Invalid;
    }
    if total > 0 && installed == total {
        return Phase::Installed;
    }
    // A node that rejects the profile makes it Invalid only where no node has it: in a fleet
    // of mixed runtimes, a profile the newer ones accept is Partial, the others named.
    if installed == 0
        && problems
            .iter()
            .any(|p| p.state == NodeProblemState::Invalid)
    {
        return Phase::Invalid;
    }
    if problems.iter().any(|p| p.state == NodeProblemState::Error) {
        return Phase::Error;
    }
    if installed > 0 {
        Phase::Partial
    } else {
        Phase::Pending
    }
}

fn ready_condition(
    phase: Phase,
    message: String,
    generation: Option<i64>,
    previous: Option<&SeccompProfileStatus>,
    now: &Time,
) -> Condition {
    let status = if phase == Phase::Installed {
        "True"
    } else {
        "False"
    };
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == CONDITION_READY))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: CONDITION_READY.into(),
        status: status.into(),
        reason: phase.as_str().into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether a node with `labels` is one the agents' DaemonSet runs on, so that it counts in a
/// status: it has every label of the DaemonSet's `nodeSelector` (`None`: the DaemonSet is not
/// known, and every node counts). The DaemonSet tolerates every taint and sets no affinity.
pub fn runs_agent(
    labels: &BTreeMap<String, String>,
    node_selector: Option<&BTreeMap<String, String>>,
) -> bool {
    node_selector.is_none_or(|selector| {
        selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    const CURRENT: NodeView<'static> = NodeView::Reported {
        exception: None,
        holding: Holding::Current,
        omitted: 0,
        warning: None,
    };
    const EARLIER: NodeView<'static> = NodeView::Reported {
        exception: None,
        holding: Holding::Earlier,
        omitted: 0,
        warning: None,
    };
    const UNCONFIRMED: NodeView<'static> = NodeView::Reported {
        exception: None,
        holding: Holding::Unconfirmed,
        omitted: 0,
        warning: None,
    };

    fn listed(r: &ProfileReport) -> NodeView<'_> {
        NodeView::Reported {
            exception: Some(r),
            holding: Holding::Unconfirmed,
            omitted: 0,
            warning: None,
        }
    }

    fn failed(state: NodeProfileState, generation: i64, why: &str) -> ProfileReport {
        ProfileReport {
            name: "p".into(),
            state,
            generation: Some(generation),
            content_hash: None,
            reason: Some(why.into()),
        }
    }

    fn facts<'a>(nodes: &[(&'a str, NodeView<'a>)]) -> ProfileFacts<'a> {
        ProfileFacts {
            name: "p",
            generation: Some(2),
            mode: Mode::Enforce,
            expected: Expected::Hash("sha256:new".into()),
            nodes: nodes.iter().copied().collect(),
            floors: &[],
        }
    }

    /// Each listed node with its state.
    fn states(s: &SeccompProfileStatus) -> Vec<(&str, NodeProblemState)> {
        s.nodes
            .iter()
            .map(|p| (p.node_name.as_str(), p.state))
            .collect()
    }

    fn ready(s: &SeccompProfileStatus) -> &Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap()
    }

    #[test]
    fn all_nodes_current_is_installed_and_ready() {
        let s = summarize(&facts(&[("n1", CURRENT), ("n2", CURRENT)]), None, &t(10));
        assert_eq!(s.phase, Some(Phase::Installed));
        assert_eq!(s.installed.as_deref(), Some("2/2"));
        assert_eq!(s.localhost_profile.as_deref(), Some("seccompd/p.json"));
        assert_eq!(s.observed_generation, Some(2));
        assert!(s.nodes.is_empty());
        assert_eq!(ready(&s).status, "True");
        assert_eq!(ready(&s).reason, "Installed");
    }

    #[test]
    fn lagging_nodes_are_named_with_their_reason() {
        let s = summarize(
            &facts(&[
                ("n1", CURRENT),
                ("n2", EARLIER),
                ("n3", NodeView::NoAgent),
                ("n4", NodeView::Syncing),
                ("n5", UNCONFIRMED),
            ]),
            None,
            &t(10),
        );
        assert_eq!(s.phase, Some(Phase::Partial));
        assert_eq!(s.installed.as_deref(), Some("1/5"));
        assert_eq!(
            states(&s),
            [
                ("n2", NodeProblemState::Outdated),
                ("n3", NodeProblemState::Pending),
                ("n4", NodeProblemState::Pending),
                ("n5", NodeProblemState::Pending)
            ]
        );
        assert!(s.nodes[0].reason.contains("earlier version"));
        assert!(s.nodes[3].reason.contains("not confirmed this profile"));
        assert_eq!(ready(&s).status, "False");
        assert!(ready(&s).message.contains("n2"));
    }

    #[test]
    fn node_rejection_makes_the_profile_invalid_with_the_nodes_reason() {
        let r = failed(
            NodeProfileState::Invalid,
            2,
            "spec.architectures[0]: big-endian",
        );
        let s = summarize(&facts(&[("n1", listed(&r))]), None, &t(1));
        assert_eq!(s.phase, Some(Phase::Invalid));
        assert_eq!(s.nodes[0].state, NodeProblemState::Invalid);
        assert_eq!(s.nodes[0].reason, "spec.architectures[0]: big-endian");
    }

    #[test]
    fn a_profile_some_nodes_reject_and_others_installed_is_partial() {
        let rejected = failed(
            NodeProfileState::Invalid,
            2,
            "flags: runc/1.1.5 refuses any flag",
        );
        let s = summarize(
            &facts(&[("n1", CURRENT), ("n2", listed(&rejected))]),
            None,
            &t(1),
        );
        assert_eq!(s.phase, Some(Phase::Partial));
        assert_eq!(s.installed.as_deref(), Some("1/2"));
        assert_eq!(s.nodes[0].node_name, "n2");
        assert_eq!(s.nodes[0].state, NodeProblemState::Invalid);
    }

    #[test]
    fn write_failure_is_error() {
        let r = failed(NodeProfileState::Error, 2, "No space left on device");
        let s = summarize(&facts(&[("n1", CURRENT), ("n2", listed(&r))]), None, &t(1));
        assert_eq!(s.phase, Some(Phase::Error));
        assert_eq!(s.installed.as_deref(), Some("1/2"));
    }

    #[test]
    fn a_stale_rejection_of_an_older_generation_is_only_pending() {
        let r = failed(NodeProfileState::Invalid, 1, "old problem");
        let s = summarize(&facts(&[("n1", listed(&r))]), None, &t(1));
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!(s.nodes[0].state, NodeProblemState::Pending);
    }

    #[test]
    fn cluster_side_invalid_wins_and_carries_the_reason() {
        let mut f = facts(&[("n1", NodeView::NoAgent)]);
        f.expected = Expected::Invalid("spec.baseProfileName: missing".into());
        let s = summarize(&f, None, &t(1));
        assert_eq!(s.phase, Some(Phase::Invalid));
        assert_eq!(ready(&s).message, "spec.baseProfileName: missing");
        assert_eq!(s.content_hash, None);
    }

    #[test]
    fn no_nodes_is_pending() {
        let s = summarize(&facts(&[]), None, &t(1));
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!(s.installed.as_deref(), Some("0/0"));
    }

    #[test]
    fn node_list_is_bounded() {
        let names: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
        let nodes: Vec<_> = names
            .iter()
            .map(|n| (n.as_str(), NodeView::NoAgent))
            .collect();
        let s = summarize(&facts(&nodes), None, &t(1));
        assert_eq!(s.nodes.len(), MAX_LISTED_NODES);
        assert_eq!(s.omitted_nodes, 30);
        assert_eq!(s.installed.as_deref(), Some("0/50"));
    }

    #[test]
    fn the_status_stays_bounded_whatever_the_nodes_report() {
        use seccompd_api::reason::CUT_MARKER;
        use seccompd_profile::limits::MAX_REASON_LEN;
        let huge = "z".repeat(100 * 1024);
        let names: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
        let reports: Vec<ProfileReport> = names
            .iter()
            .map(|_| failed(NodeProfileState::Error, 2, &huge))
            .collect();
        let nodes: Vec<_> = names
            .iter()
            .zip(&reports)
            .map(|(n, r)| (n.as_str(), listed(r)))
            .collect();
        let s = summarize(&facts(&nodes), None, &t(1));
        assert_eq!(s.nodes.len(), MAX_LISTED_NODES);
        assert_eq!(s.omitted_nodes, 30);
        for node in &s.nodes {
            assert_eq!(node.reason.chars().count(), MAX_REASON_LEN);
            assert!(node.reason.ends_with(CUT_MARKER));
        }
        assert!(ready(&s).message.chars().count() <= MAX_REASON_LEN);
        assert!(
            ready(&s)
                .message
                .starts_with("installed on 0/50 nodes; n00: zzz")
        );
        let bytes = serde_json::to_vec(&s).unwrap().len();
        assert!(
            bytes < (MAX_LISTED_NODES + 2) * (MAX_REASON_LEN + 100),
            "{bytes} bytes for 50 nodes with 100 KiB reasons"
        );

        let mut f = facts(&[("n1", NodeView::NoAgent)]);
        f.expected = Expected::Invalid(huge);
        let s = summarize(&f, None, &t(1));
        assert_eq!(ready(&s).message.chars().count(), MAX_REASON_LEN);
    }

    #[test]
    fn a_report_that_leaves_out_exceptions_says_so_for_what_it_cannot_confirm() {
        let leaving_out = |holding| NodeView::Reported {
            exception: None,
            holding,
            omitted: 3,
            warning: None,
        };
        let s = summarize(
            &facts(&[
                ("n1", leaving_out(Holding::Current)),
                ("n2", leaving_out(Holding::Earlier)),
                ("n3", leaving_out(Holding::Unconfirmed)),
            ]),
            None,
            &t(1),
        );
        assert_eq!(
            s.installed.as_deref(),
            Some("1/3"),
            "n1 confirmed this version"
        );
        assert_eq!(
            states(&s),
            [
                ("n2", NodeProblemState::Outdated),
                ("n3", NodeProblemState::Pending)
            ]
        );
        assert!(s.nodes.iter().all(|p| p.reason.contains("leaves out")));
    }

    #[test]
    fn transition_time_changes_only_when_readiness_does() {
        let f = facts(&[("n1", CURRENT)]);
        let first = summarize(&f, None, &t(10));
        let again = summarize(&f, Some(&first), &t(20));
        assert_eq!(ready(&again).last_transition_time, t(10));
        assert_eq!(
            first, again,
            "an unchanged situation gives an identical status"
        );
        let lagging = facts(&[("n1", NodeView::NoAgent)]);
        let changed = summarize(&lagging, Some(&again), &t(30));
        assert_eq!(ready(&changed).last_transition_time, t(30));
    }

    #[test]
    fn the_ready_reason_is_the_phase_as_the_api_writes_it() {
        for phase in [
            Phase::Installed,
            Phase::Pending,
            Phase::Partial,
            Phase::Invalid,
            Phase::Error,
        ] {
            let c = ready_condition(phase, String::new(), None, None, &t(1));
            assert_eq!(serde_json::to_value(phase).unwrap(), c.reason.as_str());
            assert_eq!(c.status == "True", phase == Phase::Installed);
        }
    }

    #[test]
    fn the_mode_is_the_specs_once_every_node_has_the_current_version() {
        use ModeInForce::*;
        let cases = [
            // (spec, every node current, shown before) -> shown now
            (
                Mode::Enforce,
                false,
                None,
                Enforce,
                "a new profile: no node runs another mode",
            ),
            (Mode::Audit, true, None, Audit, "a new profile, installed"),
            (
                Mode::Enforce,
                false,
                Some(Audit),
                AuditToEnforce,
                "a switch rolls out",
            ),
            (
                Mode::Enforce,
                true,
                Some(Audit),
                Enforce,
                "a switch done at once",
            ),
            (
                Mode::Enforce,
                false,
                Some(AuditToEnforce),
                AuditToEnforce,
                "still rolling out",
            ),
            (
                Mode::Enforce,
                true,
                Some(AuditToEnforce),
                Enforce,
                "the switch is done",
            ),
            (
                Mode::Enforce,
                false,
                Some(Enforce),
                Enforce,
                "an update in the same mode",
            ),
            (
                Mode::Audit,
                false,
                Some(AuditToEnforce),
                EnforceToAudit,
                "switched back before every node had it: some may enforce",
            ),
            (
                Mode::Audit,
                true,
                Some(AuditToEnforce),
                Audit,
                "switched back, done",
            ),
        ];
        for (spec, all_current, before, want, why) in cases {
            assert_eq!(mode_in_force(spec, all_current, before), want, "{why}");
        }
    }

    #[test]
    fn a_switch_of_mode_shows_in_the_status_until_every_node_has_it() {
        let audit = ProfileFacts {
            mode: Mode::Audit,
            ..facts(&[("n1", CURRENT), ("n2", CURRENT)])
        };
        let before = summarize(&audit, None, &t(1));
        assert_eq!(before.mode, Some(ModeInForce::Audit));

        /// Generation 3 switches to Enforce.
        fn switched<'a>(nodes: &[(&'a str, NodeView<'a>)]) -> ProfileFacts<'a> {
            ProfileFacts {
                generation: Some(3),
                ..facts(nodes)
            }
        }
        let rolling = switched(&[("n1", CURRENT), ("n2", EARLIER)]);
        let during = summarize(&rolling, Some(&before), &t(2));
        assert_eq!(during.mode, Some(ModeInForce::AuditToEnforce));
        assert_eq!(
            serde_json::to_value(&during).unwrap()["mode"],
            "Audit->Enforce",
            "as kubectl shows it"
        );
        assert_eq!(during.installed.as_deref(), Some("1/2"));
        assert!(
            ready(&during)
                .message
                .starts_with("switching from Audit to Enforce, which the nodes without the current version may not run yet: installed on 1/2 nodes; n2: "),
            "{}",
            ready(&during).message
        );
        // The next pass, with nothing new, writes nothing new.
        assert_eq!(summarize(&rolling, Some(&during), &t(3)), during);

        // A node that refuses the new version keeps its old file, in Audit mode.
        let rejected = failed(
            NodeProfileState::Invalid,
            3,
            "flags: runc/1.1.5 refuses any flag",
        );
        let stuck = summarize(
            &switched(&[("n1", CURRENT), ("n2", listed(&rejected))]),
            Some(&during),
            &t(4),
        );
        assert_eq!(stuck.phase, Some(Phase::Partial));
        assert_eq!(stuck.mode, Some(ModeInForce::AuditToEnforce));

        let after = summarize(
            &switched(&[("n1", CURRENT), ("n2", CURRENT)]),
            Some(&during),
            &t(5),
        );
        assert_eq!(after.mode, Some(ModeInForce::Enforce));
        assert_eq!(ready(&after).message, "installed on all 2 nodes");
    }

    fn warned<'a>(w: &'a ProfileWarning) -> NodeView<'a> {
        NodeView::Reported {
            exception: None,
            holding: Holding::Current,
            omitted: 0,
            warning: Some(w),
        }
    }

    fn warning(hash: &str, message: &str) -> ProfileWarning {
        ProfileWarning {
            name: "p".into(),
            content_hash: hash.into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_nodes_warnings_of_the_current_version_are_shown_per_node() {
        let statx = warning(
            "sha256:new",
            "spec.syscalls: this node's runtime (runc/1.5.3) calls statx after loading the filter",
        );
        let stale = warning("sha256:old", "of an earlier version");
        let s = summarize(
            &facts(&[
                ("n1", warned(&statx)),
                ("n2", CURRENT),
                ("n3", warned(&stale)),
            ]),
            None,
            &t(1),
        );
        assert_eq!(
            s.phase,
            Some(Phase::Installed),
            "warnings do not hold it up"
        );
        assert_eq!(
            s.warnings,
            [NodeWarning {
                node_name: "n1".into(),
                message: statx.message.clone(),
            }],
            "only the warning about the current version"
        );
        assert_eq!(s.omitted_warnings, 0);
    }

    #[test]
    fn the_warnings_are_bounded_like_the_lagging_nodes() {
        use seccompd_api::reason::CUT_MARKER;
        use seccompd_profile::limits::MAX_WARNING_LEN;
        let long = warning("sha256:new", &"w".repeat(10 * MAX_WARNING_LEN));
        let names: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
        let nodes: Vec<_> = names.iter().map(|n| (n.as_str(), warned(&long))).collect();
        let s = summarize(&facts(&nodes), None, &t(1));
        assert_eq!(s.warnings.len(), MAX_LISTED_NODES);
        assert_eq!(s.omitted_warnings, 30);
        assert_eq!(s.warnings[0].node_name, "n00");
        assert_eq!(s.warnings[0].message.chars().count(), MAX_WARNING_LEN);
        assert!(s.warnings[0].message.ends_with(CUT_MARKER));
    }

    #[test]
    fn a_node_counts_when_it_has_every_label_of_the_daemonsets_node_selector() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let linux = labels(&[("kubernetes.io/os", "linux")]);
        let node = labels(&[("kubernetes.io/os", "linux"), ("zone", "a")]);
        assert!(runs_agent(&node, Some(&linux)));
        assert!(!runs_agent(
            &labels(&[("kubernetes.io/os", "windows")]),
            Some(&linux)
        ));
        assert!(!runs_agent(&labels(&[]), Some(&linux)), "a missing label");
        let parked = labels(&[("kubernetes.io/os", "linux"), ("park", "yes")]);
        assert!(!runs_agent(&node, Some(&parked)), "every label must match");
        assert!(runs_agent(&node, Some(&labels(&[]))), "an empty selector");
        assert!(runs_agent(&labels(&[]), None), "no DaemonSet known");
    }
}
