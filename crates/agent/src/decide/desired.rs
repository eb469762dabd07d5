//! From the SeccompProfiles the API has to what this node must hold: resolve bases, check,
//! render. Pure apart from the `check` callback the caller supplies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::plan::{DesiredProfile, Target};
use super::renderings::{RenderCache, Rendering};
use super::retry::RetryBook;
use seccompd_api::{SeccompFloor, SeccompProfile};
use seccompd_profile::check::{NodeCheckError, NodeVerdict};
use seccompd_profile::floor::{Floor, FloorStamp, resolve_with_floors};
use seccompd_profile::limits::MAX_PROFILE_NAME_LEN;
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::{ContentHash, OciProfile, Rendered, render};

/// One SeccompProfile as the agent sees it.
#[derive(Clone, Copy, Debug)]
pub struct ProfileInput<'a> {
    /// metadata.name.
    pub name: &'a str,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// Where the spec comes from: what says whether its last rendering still holds.
    pub origin: Origin<'a>,
    /// The spec.
    pub spec: &'a ProfileSpec,
}

/// Where a profile's spec comes from, which says when its rendering can be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A SeccompProfile object, with its metadata.uid when known. Its spec changes only with
    /// its generation (the API server raises it on every change of the spec of a resource
    /// with a status subresource), and a deleted and recreated object has a new uid.
    Api {
        /// metadata.uid.
        uid: Option<&'a str>,
    },
    /// One of the agent's built-in profiles: fixed for the life of the process.
    Builtin,
}

impl<'a> ProfileInput<'a> {
    /// The input for a SeccompProfile object; `None` for an object without a name.
    pub fn of(profile: &'a SeccompProfile) -> Option<Self> {
        let name = profile.metadata.name.as_deref().filter(|n| !n.is_empty())?;
        Some(Self {
            name,
            generation: profile.metadata.generation,
            origin: Origin::Api {
                uid: profile.metadata.uid.as_deref(),
            },
            spec: &profile.spec.0,
        })
    }
}

/// The floor of a SeccompFloor object; `None` for an object without a name.
pub fn floor_of(floor: &SeccompFloor) -> Option<Floor<'_>> {
    let name = floor.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    Some(Floor {
        name,
        spec: &floor.spec.0,
    })
}

/// Drops what the agent never reads from a SeccompFloor: everything but its name and spec.
pub fn slim_floor(floor: &mut SeccompFloor) {
    floor.status = None;
    let meta = &mut floor.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
}

/// Drops what the agent never reads from a SeccompProfile before its cache keeps it: the
/// status, managed fields, labels and annotations (kubectl's client-side apply keeps a second
/// copy of the whole object in one), so that the agent's memory follows the specs alone; and
/// the spec's spare capacity.
pub fn slim(profile: &mut SeccompProfile) {
    profile.status = None;
    profile.spec.0.shrink_to_fit();
    let meta = &mut profile.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
}

/// What the node check says of a rendering it accepts, as far as the agent keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Length of the compiled program.
    pub instructions: usize,
    /// What the node's runtime or seccomp library does with it (the warnings that depend on
    /// the node): the node's report tells them.
    pub warnings: Vec<String>,
}

impl From<NodeVerdict> for Accepted {
    fn from(verdict: NodeVerdict) -> Self {
        Self {
            instructions: verdict.instructions,
            warnings: verdict.node_warnings,
        }
    }
}

/// Resolves, checks and renders every profile.
///
/// `check` judges a resolved profile for this node (structure and the node's seccomp
/// library); it is called once per distinct rendering, since `cache` remembers verdicts by
/// content hash across calls. A check that could not finish is no verdict: it is tried again
/// once its backoff has passed (at `now` or later). A profile whose spec, bases and floors are
/// those of its last rendering is not rendered again (`cache` keeps the renderings too).
pub fn desired_state(
    profiles: &[ProfileInput<'_>],
    cache: &mut DesiredCache,
    check: impl Fn(&OciProfile) -> Result<Accepted, NodeCheckError>,
    now: Instant,
) -> BTreeMap<String, DesiredProfile> {
    desired_with_floors(profiles, &[], cache, check, now)
}

/// [`desired_state`] with `floors` merged into every profile they do not exempt.
pub fn desired_with_floors(
    profiles: &[ProfileInput<'_>],
    floors: &[Floor<'_>],
    cache: &mut DesiredCache,
    check: impl Fn(&OciProfile) -> Result<Accepted, NodeCheckError>,
    now: Instant,
) -> BTreeMap<String, DesiredProfile> {
    let by_name: HashMap<&str, &ProfileInput<'_>> = profiles.iter().map(|p| (p.name, p)).collect();
    // A floor's stamp hashes its rules: once per pass, not once per profile.
    let stamps: Vec<(&Floor<'_>, FloorStamp)> = floors.iter().map(|f| (f, f.stamp())).collect();
    let desired = profiles
        .iter()
        .map(|p| {
            let mut applying: Vec<FloorStamp> = stamps
                .iter()
                .filter(|(f, _)| !f.exempts(p.name))
                .map(|(_, stamp)| stamp.clone())
                .collect();
            applying.sort();
            applying.dedup_by(|a, b| a.name == b.name);
            let rendering = cache.renderings.get_or_render(p, &by_name, &applying, || {
                render_profile(p, &by_name, floors)
            });
            let resolve = || resolve_for(p, &by_name, floors);
            let (target, instructions) =
                target_for(rendering, resolve, &applying, cache, &check, now);
            let desired = DesiredProfile {
                generation: p.generation,
                floors: applying,
                instructions,
                target,
            };
            (p.name.to_string(), desired)
        })
        .collect();
    cache.renderings.retain(|name| by_name.contains_key(name));
    desired
}

/// The rendering of `p` with its bases and the floors `applying` (those of `floors` that
/// do not exempt it): the file's bytes, or why there is none.
fn render_profile(
    p: &ProfileInput<'_>,
    by_name: &HashMap<&str, &ProfileInput<'_>>,
    floors: &[Floor<'_>],
) -> Rendering {
    let resolved = resolve_for(p, by_name, floors)?;
    let rendered = render(&resolved);
    rendered
        .check_size()
        .map_err(|too_large| format!("spec: {too_large}"))?;
    Ok(rendered)
}

/// `p` resolved with its bases and merged with the floors that do not exempt it.
fn resolve_for(
    p: &ProfileInput<'_>,
    by_name: &HashMap<&str, &ProfileInput<'_>>,
    floors: &[Floor<'_>],
) -> Result<OciProfile, String> {
    if p.name.len() > MAX_PROFILE_NAME_LEN {
        return Err(format!(
            "metadata.name: {} characters; at most {MAX_PROFILE_NAME_LEN} (MAX_PROFILE_NAME_LEN) fit the node's file name <name>.json: shorten it",
            p.name.len()
        ));
    }
    resolve_with_floors(p.name, p.spec, |n| by_name.get(n).map(|b| b.spec), floors)
        .map(|merged| merged.profile)
        .map_err(|e| e.to_string())
}

/// What the node must hold for a profile rendered as `rendering`; `resolve` gives the
/// resolved profile for the node check when the rendering has no verdict yet.
fn target_for(
    rendering: Rendering,
    resolve: impl FnOnce() -> Result<OciProfile, String>,
    applying: &[FloorStamp],
    cache: &mut DesiredCache,
    check: &impl Fn(&OciProfile) -> Result<Accepted, NodeCheckError>,
    now: Instant,
) -> (Target, Option<usize>) {
    let rendered = match rendering {
        Ok(rendered) => rendered,
        Err(reason) => return (Target::Invalid(reason), None),
    };
    let hash = rendered.hash.clone();
    if let Some(verdict) = cache.verdicts.get(&hash) {
        return match verdict {
            Ok(accepted) => (Target::Install(rendered), Some(accepted.instructions)),
            Err(reason) => (Target::Invalid(reason.clone()), None),
        };
    }
    if let Some(reason) = cache.unfinished.deferred(&hash, "", now) {
        let reason = reason.to_string();
        return (Target::Unchecked { hash, reason }, None);
    }
    // Not judged yet: the check needs the resolved profile, which a reused rendering does
    // not keep (it resolves as it did, since nothing it depends on has changed).
    let resolved = match resolve() {
        Ok(resolved) => resolved,
        Err(reason) => return (Target::Invalid(reason), None),
    };
    match check(&resolved) {
        Ok(accepted) => {
            let instructions = accepted.instructions;
            cache.unfinished.succeeded(&hash);
            cache.verdicts.insert(hash, Ok(accepted));
            (Target::Install(rendered), Some(instructions))
        }
        Err(NodeCheckError::Rejected(reason)) => {
            let reason = with_floors_named(reason, applying);
            cache.unfinished.succeeded(&hash);
            cache.verdicts.insert(hash, Err(reason.clone()));
            (Target::Invalid(reason), None)
        }
        Err(NodeCheckError::Unfinished(reason)) => {
            cache.unfinished.failed(&hash, "", reason.clone(), now);
            (Target::Unchecked { hash, reason }, None)
        }
    }
}

/// A rejection of a rendering that carries floors, saying so: the floors' rules count against
/// the kernel's limits like the profile's own (the instruction count in the reason includes
/// them), and the fix may be the floor's administrator's.
fn with_floors_named(reason: String, applying: &[FloorStamp]) -> String {
    if applying.is_empty() {
        return reason;
    }
    let names: Vec<&str> = applying.iter().map(|s| s.name.as_str()).collect();
    format!(
        "{reason} (the rendering includes the rules of SeccompFloor {}; a floor's administrator can exempt this profile)",
        names.join(", ")
    )
}

/// What the desired state of one pass keeps for the next: each profile's rendering with what
/// it was made from, so that a pass renders only what changed; verdicts of the node check by
/// content hash, so that unchanged profiles are not compiled again; and the renderings whose
/// check could not finish, with when to try again. Only verdicts are remembered: a timeout is
/// no reason to refuse a profile for good.
#[derive(Debug, Default)]
pub struct DesiredCache {
    renderings: RenderCache,
    verdicts: HashMap<ContentHash, Result<Accepted, String>>,
    unfinished: RetryBook<ContentHash>,
}

impl DesiredCache {
    /// Forgets every verdict (the node's runtime was described anew); renderings do not
    /// depend on the node and stay.
    pub fn forget_verdicts(&mut self) {
        self.verdicts.clear();
        self.unfinished = RetryBook::default();
    }

    /// Forgets verdicts for renderings no current profile has, keeping the cache bounded.
    pub fn retain_current(&mut self, desired: &BTreeMap<String, DesiredProfile>) {
        let installable: HashSet<&ContentHash> = desired
            .values()
            .filter_map(|d| match &d.target {
                Target::Install(Rendered { hash, .. }) => Some(hash),
                _ => None,
            })
            .collect();
        let unchecked: HashSet<&ContentHash> = desired
            .values()
            .filter_map(|d| match &d.target {
                Target::Unchecked { hash, .. } => Some(hash),
                _ => None,
            })
            .collect();
        self.verdicts
            .retain(|hash, verdict| verdict.is_err() || installable.contains(hash));
        self.unfinished.retain(|hash| unchecked.contains(hash));
        // Rejections are cheap to keep but unbounded over time; cap them.
        if self.verdicts.len() > 4096 {
            self.verdicts.clear();
        }
    }

    /// When the earliest check that could not finish is due again.
    pub fn next_retry(&self) -> Option<Instant> {
        self.unfinished.next_due()
    }

    /// What this node warns of the rendering with `hash`, if the check accepted it (nothing
    /// when it has not been checked).
    pub fn warnings(&self, hash: &ContentHash) -> &[String] {
        match self.verdicts.get(hash) {
            Some(Ok(accepted)) => &accepted.warnings,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::decide::retry::FIRST_RETRY as RETRY_AFTER;
    use seccompd_profile::model::{Action, SyscallRule};

    fn spec(base: Option<&str>, names: &[&str]) -> ProfileSpec {
        ProfileSpec {
            base_profile_name: base.map(str::to_string),
            mode: Default::default(),
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: vec![],
            flags: vec![],
            syscalls: vec![SyscallRule {
                names: names.iter().map(|&n| n.into()).collect(),
                action: Action::Allow,
                errno_ret: None,
                args: vec![],
            }],
        }
    }

    fn input<'a>(name: &'a str, spec: &'a ProfileSpec) -> ProfileInput<'a> {
        ProfileInput {
            name,
            generation: Some(3),
            origin: Origin::Api { uid: None },
            spec,
        }
    }

    #[test]
    fn the_cache_keeps_only_what_the_agent_reads() {
        let mut p: SeccompProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": "p", "generation": 3, "labels": {"a": "b"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"defaultAction": "SCMP_ACT_ALLOW"},
            "status": {"phase": "Installed"},
        }))
        .unwrap();
        let spec = p.spec.clone();
        slim(&mut p);
        let input = ProfileInput::of(&p).unwrap();
        assert_eq!((input.name, input.generation), ("p", Some(3)));
        assert_eq!(p.spec, spec);
        assert!(p.status.is_none() && p.metadata.annotations.is_none());
        assert!(p.metadata.labels.is_none() && p.metadata.managed_fields.is_none());
    }

    #[test]
    fn valid_profiles_are_rendered_with_bases() {
        let base = spec(None, &["read"]);
        let child = spec(Some("base"), &["write"]);
        let out = desired_state(
            &[input("base", &base), input("child", &child)],
            &mut DesiredCache::default(),
            |_| Ok(Accepted::default()),
            Instant::now(),
        );
        let Target::Install(r) = &out["child"].target else {
            panic!("child must be installable")
        };
        let text = String::from_utf8(r.bytes.to_vec()).unwrap();
        assert!(text.find("\"read\"").unwrap() < text.find("\"write\"").unwrap());
        assert_eq!(out["child"].generation, Some(3));
    }

    #[test]
    fn missing_base_and_cycles_are_invalid_not_fatal() {
        let orphan = spec(Some("nowhere"), &["read"]);
        let a = spec(Some("b"), &["a"]);
        let b = spec(Some("a"), &["b"]);
        let fine = spec(None, &["read"]);
        let out = desired_state(
            &[
                input("orphan", &orphan),
                input("a", &a),
                input("b", &b),
                input("fine", &fine),
            ],
            &mut DesiredCache::default(),
            |_| Ok(Accepted::default()),
            Instant::now(),
        );
        assert!(matches!(&out["orphan"].target, Target::Invalid(r) if r.contains("\"nowhere\"")));
        assert!(matches!(&out["a"].target, Target::Invalid(r) if r.contains("cycle")));
        assert!(matches!(&out["b"].target, Target::Invalid(r) if r.contains("cycle")));
        assert!(matches!(&out["fine"].target, Target::Install(_)));
    }

    #[test]
    fn node_check_rejection_is_reported_with_its_reason() {
        let s = spec(None, &["read"]);
        let out = desired_state(
            &[input("p", &s)],
            &mut DesiredCache::default(),
            |_| {
                Err(NodeCheckError::Rejected(
                    "spec.architectures[0]: big-endian".to_string(),
                ))
            },
            Instant::now(),
        );
        assert_eq!(
            out["p"].target,
            Target::Invalid("spec.architectures[0]: big-endian".into())
        );
    }

    /// Checks one profile in three passes, `verdict` each time it is asked; how often it was.
    fn checks_in_three_passes(verdict: Result<Accepted, NodeCheckError>) -> (usize, Target) {
        let s = spec(None, &["read"]);
        let calls = Cell::new(0);
        let mut cache = DesiredCache::default();
        let mut last = None;
        for _ in 0..3 {
            let out = desired_state(
                &[input("p", &s)],
                &mut cache,
                |_| {
                    calls.set(calls.get() + 1);
                    verdict.clone()
                },
                Instant::now(),
            );
            cache.retain_current(&out);
            last = Some(out["p"].target.clone());
        }
        (calls.get(), last.unwrap())
    }

    #[test]
    fn unchanged_profiles_are_checked_once() {
        let (calls, target) = checks_in_three_passes(Ok(Accepted::default()));
        assert_eq!(calls, 1);
        assert!(matches!(target, Target::Install(_)));
    }

    #[test]
    fn overlong_name_is_invalid() {
        let s = spec(None, &["read"]);
        let name = "a".repeat(MAX_PROFILE_NAME_LEN + 1);
        let out = desired_state(
            &[input(&name, &s)],
            &mut DesiredCache::default(),
            |_| Ok(Accepted::default()),
            Instant::now(),
        );
        assert!(matches!(&out[&name].target, Target::Invalid(r) if r.starts_with("metadata.name")));
    }

    #[test]
    fn an_unfinished_check_is_not_a_verdict_and_is_retried_after_a_backoff() {
        let s = spec(None, &["read"]);
        let calls = Cell::new(0);
        let answers = [
            Err(NodeCheckError::Unfinished("timed out".into())),
            Ok(Accepted::default()),
        ];
        let mut cache = DesiredCache::default();
        let t0 = Instant::now();
        let mut at = |now: Instant| {
            let out = desired_state(
                &[input("p", &s)],
                &mut cache,
                |_| {
                    calls.set(calls.get() + 1);
                    answers[calls.get() - 1].clone()
                },
                now,
            );
            cache.retain_current(&out);
            out["p"].target.clone()
        };
        assert!(matches!(at(t0), Target::Unchecked { reason, .. } if reason == "timed out"));
        // Within the backoff: not checked again, still no verdict.
        assert!(matches!(at(t0), Target::Unchecked { .. }));
        assert_eq!(calls.get(), 1);
        // After it: checked again, and this time the verdict sticks.
        assert!(matches!(at(t0 + RETRY_AFTER), Target::Install(_)));
        assert!(matches!(at(t0 + RETRY_AFTER), Target::Install(_)));
        assert_eq!(calls.get(), 2);
        assert_eq!(cache.next_retry(), None);
    }

    #[test]
    fn a_rejection_is_remembered() {
        let (calls, target) = checks_in_three_passes(Err(NodeCheckError::Rejected("no".into())));
        assert_eq!(calls, 1);
        assert_eq!(target, Target::Invalid("no".into()));
    }

    #[test]
    fn a_rendering_over_the_file_bound_is_invalid_before_any_check() {
        let names = (0..70_000)
            .map(|i| format!("name_{i:058}").into())
            .collect();
        let mut s = spec(None, &[]);
        s.syscalls[0].names = names;
        let out = desired_state(
            &[input("big", &s)],
            &mut DesiredCache::default(),
            |_| panic!("not checked"),
            Instant::now(),
        );
        assert!(
            matches!(&out["big"].target, Target::Invalid(r) if r.contains("MAX_FILE_BYTES")),
            "{:?}",
            out["big"].target
        );
    }
}
