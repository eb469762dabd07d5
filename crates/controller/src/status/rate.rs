//! The status writer's pacer, so that a profile on its way to many nodes is not rewritten for
//! every node that confirms it (each status write reaches every agent's watch). How fast the
//! writes that remain go out is the API server's to decide (`super::writer`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use seccompd_api::{Phase, SeccompProfileStatus};

/// How often at most the status of a profile still on its way to every node (Pending or
/// Partial, same generation) is rewritten only to move its count.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How long at most, after [`PROGRESS_INTERVAL`] has passed, progress waits while other
/// profiles have news to write ([`ProgressPacer::yield_to_news`]).
pub const PROGRESS_YIELD_LIMIT: Duration = Duration::from_secs(4);

/// Per profile, when its status was last written (or the profile, or its current generation,
/// first seen) and the generation that was for.
#[derive(Clone, Debug, Default)]
pub struct ProgressPacer {
    since: BTreeMap<String, Since>,
}

#[derive(Clone, Copy, Debug)]
struct Since {
    at: Instant,
    /// The generation of the status then; `None` when not known.
    generation: Option<i64>,
}

impl ProgressPacer {
    /// `None` to write `next` now; `Some(due)` when it only tells of a profile on its way
    /// (Pending or Partial) and can wait until `due`, [`PROGRESS_INTERVAL`] after the last
    /// write, or after the profile or its new generation was first seen here: a new profile or
    /// a new version of one usually goes straight to `Installed` within it, and its one write
    /// then does not compete with the agents writing the files. Meanwhile the status keeps its
    /// `observedGeneration` (and its Ready condition's), which tells a reader that it speaks of
    /// the previous generation. Every other change (Installed, Invalid, Error, or a profile
    /// falling back to Partial in the same generation) is written at once.
    pub fn hold(
        &mut self,
        name: &str,
        previous: Option<&SeccompProfileStatus>,
        next: &SeccompProfileStatus,
        now: Instant,
    ) -> Option<Instant> {
        let generation = next.observed_generation;
        let only_progress = Self::only_progress(previous, next);
        let since = self.since.entry(name.to_string()).or_insert(Since {
            at: now,
            generation,
        });
        match since.generation {
            // A write whose generation was not told: the interval runs from it.
            None => since.generation = generation,
            Some(_) if since.generation != generation => {
                *since = Since {
                    at: now,
                    generation,
                }
            }
            Some(_) => {}
        }
        let due = since.at + PROGRESS_INTERVAL;
        (only_progress && due > now).then_some(due)
    }

    /// Whether `next` only tells of a profile on its way (Pending or Partial), after a status
    /// that did too or spoke of another generation.
    pub fn only_progress(
        previous: Option<&SeccompProfileStatus>,
        next: &SeccompProfileStatus,
    ) -> bool {
        let on_the_way =
            |s: &SeccompProfileStatus| matches!(s.phase, Some(Phase::Pending | Phase::Partial));
        on_the_way(next)
            && previous.is_none_or(|previous| {
                previous.observed_generation != next.observed_generation || on_the_way(previous)
            })
    }

    /// For progress of `name` that is due while the same pass has news of other profiles to
    /// write: `Some(when)` to look again, or `None` to write it now. Progress waits another
    /// [`PROGRESS_INTERVAL`], up to [`PROGRESS_YIELD_LIMIT`] past its due time: during a burst
    /// of new profiles the writes that settle profiles go first, most of the waiting ones are
    /// settled meanwhile, and each of those costs one write instead of two.
    pub fn yield_to_news(&self, name: &str, now: Instant) -> Option<Instant> {
        let since = self.since.get(name)?;
        let limit = since.at + PROGRESS_INTERVAL + PROGRESS_YIELD_LIMIT;
        (now < limit).then(|| (now + PROGRESS_INTERVAL).min(limit))
    }

    /// Notes that `name`'s status was written at `now`.
    pub fn written(&mut self, name: &str, now: Instant) {
        let since = self.since.entry(name.to_string()).or_insert(Since {
            at: now,
            generation: None,
        });
        since.at = now;
    }

    /// Forgets the profiles for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.since.retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: Phase, generation: i64) -> SeccompProfileStatus {
        SeccompProfileStatus {
            phase: Some(phase),
            observed_generation: Some(generation),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_generation_waits_from_when_it_is_first_seen() {
        let t0 = Instant::now();
        let mut pacer = ProgressPacer::default();
        let installed = status(Phase::Installed, 2);
        assert_eq!(pacer.hold("p", None, &installed, t0), None);
        pacer.written("p", t0);
        // Long after the last write, the profile is updated.
        let later = t0 + PROGRESS_INTERVAL * 60;
        let pending = status(Phase::Pending, 3);
        assert_eq!(
            pacer.hold("p", Some(&installed), &pending, later),
            Some(later + PROGRESS_INTERVAL),
            "the new generation's Pending waits a moment"
        );
        let soon = later + Duration::from_millis(100);
        assert_eq!(
            pacer.hold("p", Some(&installed), &status(Phase::Partial, 3), soon),
            Some(later + PROGRESS_INTERVAL),
            "from when the generation was first seen, not from each look"
        );
        assert_eq!(
            pacer.hold("p", Some(&installed), &status(Phase::Installed, 3), soon),
            None
        );
        assert_eq!(
            pacer.hold("p", Some(&installed), &pending, later + PROGRESS_INTERVAL),
            None,
            "written once the moment has passed"
        );
        // Another new generation while the previous one was on its way.
        let next = later + PROGRESS_INTERVAL * 2;
        assert_eq!(
            pacer.hold("p", Some(&pending), &status(Phase::Pending, 4), next),
            Some(next + PROGRESS_INTERVAL)
        );
    }

    #[test]
    fn progress_alone_waits_for_its_interval_and_news_does_not() {
        let t0 = Instant::now();
        let mut pacer = ProgressPacer::default();
        let partial = status(Phase::Partial, 2);
        let pending = status(Phase::Pending, 2);
        let soon = t0 + Duration::from_millis(300);
        assert_eq!(
            pacer.hold("new", None, &pending, t0),
            Some(t0 + PROGRESS_INTERVAL),
            "a new profile's Pending waits a moment"
        );
        assert_eq!(
            pacer.hold("new", None, &status(Phase::Installed, 2), soon),
            None,
            "its Installed does not"
        );
        assert_eq!(
            pacer.hold("new", None, &pending, t0 + PROGRESS_INTERVAL),
            None
        );
        pacer.written("p", t0);
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, soon),
            Some(t0 + PROGRESS_INTERVAL)
        );
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, t0 + PROGRESS_INTERVAL),
            None
        );
        for news in [
            status(Phase::Installed, 2),
            status(Phase::Error, 2),
            status(Phase::Invalid, 2),
        ] {
            assert_eq!(
                pacer.hold("p", Some(&partial), &news, soon),
                None,
                "{news:?}"
            );
        }
        assert_eq!(
            pacer.hold("p", Some(&status(Phase::Installed, 2)), &partial, soon),
            None,
            "a fall back from Installed in the same generation is news"
        );
        pacer.retain(|name| name != "p");
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, soon),
            Some(soon + PROGRESS_INTERVAL),
            "forgotten: first seen now"
        );
    }
}
