//! Missing-profile help on the real node: a pod that references `seccompd/<name>.json` when
//! no SeccompProfile of that name exists gets a Warning Event naming the missing profile and
//! the closest existing names.

use std::time::Duration;

use seccompd_e2e::cluster::{client, eventually, unique};
use seccompd_e2e::lifecycle::{
    create_pod, create_profile, delete_pod, delete_profile, denylist, events, sleeper,
    wait_for_agent_passes,
};

#[tokio::test]
async fn pod_with_a_misspelt_profile_gets_a_warning_with_the_closest_names() {
    let client = client().await;
    let base = unique("web");
    let intended = format!("{base}-strict");
    let misspelt = format!("{base}-stirct");
    create_profile(&client, &intended, &denylist(&["mkdir"])).await;
    create_profile(&client, &format!("{base}-relaxed"), &denylist(&["mkdir"])).await;

    let pod = unique("typo");
    create_pod(
        &client,
        &sleeper(&pod, None, Some(&format!("seccompd/{misspelt}.json"))),
    )
    .await;

    let warning = eventually(
        "a SeccompProfileMissing Warning on the pod",
        Duration::from_secs(60),
        || async {
            events(&client, "default", &pod, "SeccompProfileMissing")
                .await
                .into_iter()
                .next()
                .ok_or_else(|| "none yet".to_string())
        },
    )
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let regarding = warning.regarding.expect("regarding");
    assert_eq!(regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(regarding.namespace.as_deref(), Some("default"));
    let note = warning.note.expect("a note");
    assert!(
        note.contains(&format!("seccompd/{misspelt}.json")),
        "names the missing profile: {note}"
    );
    assert!(
        note.contains(&format!("closest existing: \"{intended}\"")),
        "names the intended profile first: {note}"
    );

    // Announced once, not on every pass.
    wait_for_agent_passes(&client, 2).await;
    assert_eq!(
        events(&client, "default", &pod, "SeccompProfileMissing")
            .await
            .len(),
        1
    );

    delete_pod(&client, &pod).await;
    delete_profile(&client, &intended).await;
    delete_profile(&client, &format!("{base}-relaxed")).await;
}
