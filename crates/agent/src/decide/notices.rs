//! What the agent announces as Kubernetes Events, decided from one pass to the next so that
//! each situation is announced once, not on every pass. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::pods::PodRef;
use super::suggest::closest_names;

/// How many pods an event names; the rest are counted.
pub const MAX_NAMED_PODS: usize = 10;

/// One thing worth an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Warning on the Node: a deleted profile's file stays because these pods use it.
    Retained {
        /// The deleted SeccompProfile.
        profile: String,
        /// The pods on this node that reference it.
        pods: Vec<PodRef>,
    },
    /// Normal on the Node: the last pod using a deleted profile is gone; its file was removed
    /// (not said when the profile was created again instead).
    Released {
        /// The deleted SeccompProfile.
        profile: String,
    },
    /// Warning on a pod: it references a profile that does not exist.
    Missing {
        /// The pod.
        pod: PodRef,
        /// The profile it asks for.
        profile: String,
        /// Existing profiles with similar names, best first.
        closest: Vec<String>,
    },
}

/// Remembers what was announced.
#[derive(Debug, Default)]
pub struct Announcer {
    retained: BTreeMap<String, Vec<PodRef>>,
    missing: BTreeSet<(String, String)>,
}

impl Announcer {
    /// The notices for this pass.
    ///
    /// * `retained`: deleted profiles whose files stay, with the pods that use them;
    /// * `missing`: referenced profiles that neither exist nor have a file, with their pods;
    /// * `existing`: the names of every SeccompProfile, for suggestions.
    pub fn update<'a>(
        &mut self,
        retained: &BTreeMap<String, Vec<PodRef>>,
        missing: &BTreeMap<String, Vec<PodRef>>,
        existing: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        for (profile, pods) in retained {
            if self.retained.get(profile) != Some(pods) {
                out.push(Notice::Retained {
                    profile: profile.clone(),
                    pods: pods.clone(),
                });
            }
        }
        for profile in self.retained.keys() {
            // Re-created: its file simply follows the API again.
            let recreated = existing.clone().into_iter().any(|n| n == profile);
            if !retained.contains_key(profile) && !recreated {
                out.push(Notice::Released {
                    profile: profile.clone(),
                });
            }
        }
        self.retained = retained.clone();

        let mut now_missing = BTreeSet::new();
        for (profile, pods) in missing {
            for pod in pods {
                let key = (pod.uid.clone(), profile.clone());
                if !self.missing.contains(&key) {
                    let closest = closest_names(profile, existing.clone());
                    out.push(Notice::Missing {
                        pod: pod.clone(),
                        profile: profile.clone(),
                        closest: closest.into_iter().map(str::to_string).collect(),
                    });
                }
                now_missing.insert(key);
            }
        }
        // Forget pods that are gone or whose profile now exists, so a later recurrence is
        // announced again.
        self.missing = now_missing;
        out
    }
}

/// `ns/a, ns/b and 3 more`.
pub fn pod_list(pods: &[PodRef]) -> String {
    bounded_list(pods, MAX_NAMED_PODS)
}

/// The first `max` of `items`, then how many more: `a, b and 3 more`.
pub fn bounded_list<T: ToString>(items: &[T], max: usize) -> String {
    let named: Vec<String> = items.iter().take(max).map(ToString::to_string).collect();
    let rest = items.len().saturating_sub(max);
    if rest > 0 {
        format!("{} and {rest} more", named.join(", "))
    } else {
        named.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> PodRef {
        PodRef {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        }
    }

    fn users(items: &[(&str, &[&str])]) -> BTreeMap<String, Vec<PodRef>> {
        items
            .iter()
            .map(|(p, pods)| (p.to_string(), pods.iter().map(|n| pod(n)).collect()))
            .collect()
    }

    #[test]
    fn retention_is_announced_once_then_on_change_then_released() {
        let mut a = Announcer::default();
        let none = BTreeMap::new();
        let first = a.update(&users(&[("p", &["a", "b"])]), &none, ["q"]);
        assert_eq!(
            first,
            [Notice::Retained {
                profile: "p".into(),
                pods: vec![pod("a"), pod("b")]
            }]
        );
        assert!(
            a.update(&users(&[("p", &["a", "b"])]), &none, ["q"])
                .is_empty()
        );
        let fewer = a.update(&users(&[("p", &["b"])]), &none, ["q"]);
        assert_eq!(
            fewer,
            [Notice::Retained {
                profile: "p".into(),
                pods: vec![pod("b")]
            }]
        );
        let gone = a.update(&none, &none, ["q"]);
        assert_eq!(
            gone,
            [Notice::Released {
                profile: "p".into()
            }]
        );
        assert!(a.update(&none, &none, ["q"]).is_empty());
    }

    #[test]
    fn a_recreated_profile_is_not_announced_as_released() {
        let mut a = Announcer::default();
        let none = BTreeMap::new();
        a.update(&users(&[("p", &["a"])]), &none, ["q"]);
        assert!(a.update(&none, &none, ["p", "q"]).is_empty());
    }

    #[test]
    fn missing_profile_is_announced_once_per_pod_with_suggestions() {
        let mut a = Announcer::default();
        let none = BTreeMap::new();
        let missing = users(&[("nginx-stirct", &["web-1", "web-2"])]);
        let existing = ["nginx-strict", "redis"];
        let first = a.update(&none, &missing, existing);
        assert_eq!(first.len(), 2);
        assert_eq!(
            first[0],
            Notice::Missing {
                pod: pod("web-1"),
                profile: "nginx-stirct".into(),
                closest: vec!["nginx-strict".into()],
            }
        );
        assert!(a.update(&none, &missing, existing).is_empty());
        let more = users(&[("nginx-stirct", &["web-1", "web-2", "web-3"])]);
        let third = a.update(&none, &more, existing);
        assert!(matches!(&third[..], [Notice::Missing { pod: p, .. }] if p.name == "web-3"));
        // The profile appears: nothing to say, and the memory is cleared.
        assert!(a.update(&none, &none, existing).is_empty());
        assert_eq!(a.update(&none, &more, existing).len(), 3);
    }

    #[test]
    fn long_pod_lists_are_cut() {
        let pods: Vec<PodRef> = (0..12).map(|i| pod(&format!("p{i:02}"))).collect();
        let text = pod_list(&pods);
        assert!(text.starts_with("ns/p00, ns/p01"), "{text}");
        assert!(text.ends_with("ns/p09 and 2 more"), "{text}");
        assert_eq!(pod_list(&pods[..1]), "ns/p00");
    }
}
