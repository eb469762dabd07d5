use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::status::fixtures::{profile, report, snapshot, stamp};
use crate::status::rate::{PROGRESS_INTERVAL, PROGRESS_YIELD_LIMIT};
use crate::status::tracker::Snapshot;
use seccompd_api::{Phase, SeccompProfile};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pauses of 1 s, 2 s, 4 s, …
fn doubling() -> RetryDelays {
    Box::new(std::iter::successors(Some(ms(1000)), |d| Some(*d * 2)))
}

/// The profiles a plan writes, in order.
fn names(plan: &Plan) -> Vec<&str> {
    plan.writes.iter().map(|w| w.name.as_str()).collect()
}

/// The phase `plan` writes for its only profile.
fn phase(plan: &Plan) -> Option<Phase> {
    match plan.writes.as_slice() {
        [write] => write.status.phase,
        _ => panic!("not one write: {:?}", names(plan)),
    }
}

/// Profile `p` without a status, and the reports of both nodes with it installed.
fn installed_everywhere() -> (SeccompProfile, Snapshot) {
    let p = profile("p", "1", None);
    let (r1, r2) = (report("node1", "1", &[&p]), report("node2", "1", &[&p]));
    let snap = snapshot(&[&p], &[&r1, &r2]);
    (p, snap)
}

/// `snap` with profile `p` replaced by one whose status someone else rewrote.
fn rewritten(snap: &Snapshot, resource_version: &str) -> Snapshot {
    let mut snap = snap.clone();
    let p = profile("p", resource_version, Some(json!({"phase": "Pending"})));
    snap.profiles.insert("p".into(), p.into());
    snap
}

/// `written` as the writer's cache shows it once its watch has seen the write.
fn with_status(written: &StatusWrite, resource_version: &str) -> SeccompProfile {
    let status = serde_json::to_value(&written.status).unwrap();
    profile(&written.name, resource_version, Some(status))
}

#[test]
fn nothing_changed_plans_no_write_not_even_for_the_writers_own_echo() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (_, snap) = installed_everywhere();
    let plan = planner.plan(&snap, t0, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Installed));
    planner.written("p", t0);

    let mut echoed = snap.clone();
    echoed
        .profiles
        .insert("p".into(), with_status(&plan.writes[0], "2").into());
    assert_eq!(
        planner.plan(&echoed, t0 + ms(10), &stamp()),
        Plan::default(),
        "the cache shows what was written"
    );
    assert_eq!(
        planner.plan(&echoed, t0 + ms(20), &stamp()),
        Plan::default()
    );
    assert!(planner.settled());
}

#[test]
fn an_idle_writer_looks_again_after_the_resync_interval_and_writes_nothing() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (_, snap) = installed_everywhere();
    planner.plan(&snap, t0, &stamp());
    planner.written("p", t0);
    let mut now = t0 + ms(10);
    for _ in 0..3 {
        assert_eq!(planner.plan(&snap, now, &stamp()), Plan::default());
        let next = planner.wake_at(now);
        assert_eq!(next, now + RESYNC);
        now = next;
    }
}

#[test]
fn a_failed_write_is_retried_after_a_pause_that_grows_until_it_succeeds() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (_, snap) = installed_everywhere();
    let first = planner.plan(&snap, t0, &stamp());
    assert_eq!(names(&first), ["p"]);
    planner.failed("p", t0);
    assert!(!planner.settled());
    assert_eq!(planner.wake_at(t0), t0 + ms(1000));
    assert_eq!(
        planner.plan(&snap, t0 + ms(500), &stamp()),
        Plan::default(),
        "woken before the retry is due"
    );

    let t1 = t0 + ms(1000);
    assert_eq!(planner.plan(&snap, t1, &stamp()), first, "the same write");
    planner.failed("p", t1);
    assert_eq!(planner.wake_at(t1), t1 + ms(2000), "the pause grows");

    let t2 = t1 + ms(2000);
    assert_eq!(planner.plan(&snap, t2, &stamp()), first);
    planner.written("p", t2);
    assert!(planner.settled());
    assert_eq!(planner.wake_at(t2), t2 + RESYNC);

    // Someone else rewrites the status; a failure now starts from the first pause again.
    let t3 = t2 + ms(10_000);
    let plan = planner.plan(&rewritten(&snap, "2"), t3, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Installed));
    planner.failed("p", t3);
    assert_eq!(planner.wake_at(t3), t3 + ms(1000));
}

#[test]
fn a_change_is_written_at_once_while_a_retry_waits_and_the_pause_keeps_growing() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (_, snap) = installed_everywhere();
    planner.plan(&snap, t0, &stamp());
    planner.failed("p", t0);

    let soon = t0 + ms(200);
    let plan = planner.plan(&rewritten(&snap, "2"), soon, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Installed));
    planner.failed("p", soon);
    assert_eq!(planner.wake_at(soon), soon + ms(2000));
}

#[test]
fn a_burst_is_planned_at_once_however_many_profiles_it_touches() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let profiles: Vec<SeccompProfile> = (0..1000)
        .map(|i| profile(&format!("p{i:04}"), "1", None))
        .collect();
    let all: Vec<&SeccompProfile> = profiles.iter().collect();
    let (r1, r2) = (report("node1", "1", &all), report("node2", "1", &all));
    let plan = planner.plan(&snapshot(&all, &[&r1, &r2]), t0, &stamp());
    assert_eq!(plan.writes.len(), 1000, "no budget holds any back");
    assert!(
        plan.writes
            .iter()
            .all(|w| w.status.phase == Some(Phase::Installed))
    );
    for write in &plan.writes {
        planner.written(&write.name, t0);
    }
    assert!(planner.settled());
}

#[test]
fn progress_is_held_back_and_written_when_due() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let p = profile("p", "1", None);
    let snap = snapshot(&[&p], &[&report("node1", "1", &[&p])]);
    assert_eq!(
        planner.plan(&snap, t0, &stamp()),
        Plan::default(),
        "a new profile's Partial waits a moment"
    );
    assert!(!planner.settled());
    assert_eq!(planner.wake_at(t0), t0 + PROGRESS_INTERVAL);
    assert_eq!(planner.plan(&snap, t0 + ms(500), &stamp()), Plan::default());

    let due = t0 + PROGRESS_INTERVAL;
    let plan = planner.plan(&snap, due, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Partial));
    planner.written("p", due);
    assert!(planner.settled());
}

#[test]
fn due_progress_yields_to_other_profiles_news_for_a_while() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    // Only node1 reports: "slow", new, is Partial (progress). Each "fallen" profile claims to
    // be Installed in its generation and is Partial too: a fall back, news written at once.
    let slow = profile("slow", "1", None);
    let fallen: Vec<SeccompProfile> = (0..8)
        .map(|i| {
            let installed = json!({"phase": "Installed", "observedGeneration": 3});
            profile(&format!("fallen{i}"), "1", Some(installed))
        })
        .collect();
    let r1_slow = report("node1", "1", &[&slow]);
    let alone = snapshot(&[&slow], &[&r1_slow]);
    assert_eq!(planner.plan(&alone, t0, &stamp()), Plan::default());
    let with_news = |i: usize| {
        let r1 = report("node1", &(i + 2).to_string(), &[&slow, &fallen[i]]);
        snapshot(&[&slow, &fallen[i]], &[&r1])
    };
    // From the moment slow's Partial is due, each pass also has news of another profile.
    let mut at = t0 + PROGRESS_INTERVAL;
    let mut i = 0;
    while at < t0 + PROGRESS_INTERVAL + PROGRESS_YIELD_LIMIT {
        let plan = planner.plan(&with_news(i), at, &stamp());
        assert_eq!(names(&plan), [format!("fallen{i}")]);
        assert_eq!(phase(&plan), Some(Phase::Partial));
        planner.written(&plan.writes[0].name, at);
        assert!(!planner.settled(), "slow's progress is still due");
        assert!(planner.wake_at(at) <= at + PROGRESS_INTERVAL);
        at += PROGRESS_INTERVAL;
        i += 1;
    }
    assert!(i >= 2, "slow's progress waited over passes with news");
    // Past the limit it goes out with the news.
    let plan = planner.plan(&with_news(i), at, &stamp());
    let mut written = names(&plan);
    written.sort();
    assert_eq!(written, [format!("fallen{i}"), "slow".to_string()]);

    // Without news, due progress is written at once.
    let mut planner = Planner::new(doubling);
    assert_eq!(planner.plan(&alone, t0, &stamp()), Plan::default());
    let plan = planner.plan(&alone, t0 + PROGRESS_INTERVAL, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Partial));
}

#[test]
fn news_is_written_at_once_and_replaces_the_progress_held_back() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (p, snap) = installed_everywhere();
    let partial = snapshot(&[&p], &[&snap.reports["node1"]]);
    assert_eq!(planner.plan(&partial, t0, &stamp()), Plan::default());

    let soon = t0 + ms(200);
    let plan = planner.plan(&snap, soon, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Installed));
    planner.written("p", soon);
    assert!(planner.settled());
    assert_eq!(planner.wake_at(soon), soon + RESYNC);
    assert_eq!(
        planner.plan(&snap, t0 + PROGRESS_INTERVAL, &stamp()),
        Plan::default(),
        "nothing written again when the held progress would have been due, \
         though the cache does not show the write yet"
    );
}

#[test]
fn several_changes_to_one_profile_make_one_write() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (p, snap) = installed_everywhere();
    let partial = snapshot(&[&p], &[&snap.reports["node1"]]);
    planner.plan(&partial, t0, &stamp());

    // When the held progress is due: node1 reports again, node2 reports for the first time
    // and someone rewrote the status.
    let mut changed = rewritten(&snap, "2");
    changed
        .reports
        .insert("node1".into(), report("node1", "2", &[&p]).into());
    let plan = planner.plan(&changed, t0 + PROGRESS_INTERVAL, &stamp());
    assert_eq!(phase(&plan), Some(Phase::Installed));
}

#[test]
fn a_failed_write_is_retried_once_even_when_the_profile_also_changed() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (_, snap) = installed_everywhere();
    planner.plan(&snap, t0, &stamp());
    planner.failed("p", t0);

    let due = t0 + ms(1000);
    let plan = planner.plan(&rewritten(&snap, "2"), due, &stamp());
    assert_eq!(names(&plan), ["p"]);
}

#[test]
fn a_deleted_profile_leaves_nothing_due() {
    let t0 = Instant::now();
    let mut planner = Planner::new(doubling);
    let (p, q) = (profile("p", "1", None), profile("q", "2", None));
    let (r1, r2) = (
        report("node1", "1", &[&p, &q]),
        report("node2", "1", &[&p, &q]),
    );
    let plan = planner.plan(&snapshot(&[&p, &q], &[&r1, &r2]), t0, &stamp());
    assert_eq!(names(&plan), ["p", "q"]);
    planner.failed("p", t0);
    planner.written("q", t0);

    let later = t0 + ms(10);
    let q_written = with_status(&plan.writes[1], "3");
    let snap = snapshot(&[&q_written], &[&r1, &r2]);
    assert_eq!(planner.plan(&snap, later, &stamp()), Plan::default());
    assert!(planner.settled());
    assert_eq!(planner.wake_at(later), later + RESYNC);
}
