//! Long names on a real cluster (issue 8, item 1): SeccompProfiles whose names have every
//! length up to the 250-character bound are all installed by an agent (a host process with its
//! own directory, beside the DaemonSet), the agent leaves no temporary file behind, a
//! restarted agent completes its first sync with them all present, and node1's agent installs
//! the longest one too.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use seccompd_agent::node::dir::TEMP_PREFIX;
use seccompd_e2e::cluster::{client, kubeconfig_path, node_profile_path, unique};
use seccompd_e2e::lifecycle::host_agent::HostRoot;
use seccompd_e2e::lifecycle::{
    agent_pods, create_profile, delete_profile, denylist, wait_for_bytes, wait_host_synced,
};
use seccompd_profile::limits::MAX_PROFILE_NAME_LEN;

/// A DNS-subdomain name of exactly `len` characters starting with `prefix`: labels of at most
/// 62 characters joined by dots.
fn name_of_len(prefix: &str, len: usize) -> String {
    let mut name = prefix.to_string();
    let mut label = name.rsplit('.').next().map_or(0, str::len);
    while name.len() < len {
        if label >= 62 && len - name.len() >= 2 {
            name.push('.');
            label = 0;
        } else {
            name.push('a');
            label += 1;
        }
    }
    name
}

#[tokio::test]
async fn names_of_every_length_up_to_the_bound_install_and_a_restarted_agent_completes_its_first_sync()
 {
    let client = client().await;
    let work = tempfile::tempdir().expect("a scratch directory");
    let root = HostRoot::new(work.path());
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_seccompd-agent"));
    let (agent, _) = root.spawn_as_in_the_daemonset(&binary, &kubeconfig_path());

    let prefix = unique("len");
    let spec = denylist(&["mkdir"]);
    let names: Vec<String> = (prefix.len()..=MAX_PROFILE_NAME_LEN)
        .map(|len| name_of_len(&prefix, len))
        .collect();
    assert_eq!(names.last().map(String::len), Some(MAX_PROFILE_NAME_LEN));
    let mut want = Vec::new();
    for name in &names {
        want = create_profile(&client, name, &spec).await.bytes.to_vec();
    }

    for name in &names {
        wait_for_bytes(
            &root.dir().join(format!("{name}.json")),
            &want,
            Duration::from_secs(120),
        )
        .await;
    }
    let strays: Vec<_> = fs::read_dir(root.dir())
        .expect("list the agent's directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect();
    assert!(strays.is_empty(), "temporary files left: {strays:?}");

    // A restarted agent completes its first sync (the step that makes a node ready and lifts
    // its taint) with every one of them present.
    agent.kill9();
    let (_agent, port) = root.spawn_as_in_the_daemonset(&binary, &kubeconfig_path());
    wait_host_synced(port).await;

    // The in-cluster agent installs the longest name too, and stays ready.
    let longest = names.last().expect("at least one name");
    wait_for_bytes(&node_profile_path(longest), &want, Duration::from_secs(60)).await;
    let pods = agent_pods();
    assert!(
        !pods.is_empty() && pods.iter().all(|(_, ready)| *ready),
        "{pods:?}"
    );

    for name in &names {
        delete_profile(&client, name).await;
    }
}

#[test]
fn names_are_built_to_the_length_asked_and_stay_dns_subdomains() {
    for len in [10, 62, 63, 64, 126, 127, 200, MAX_PROFILE_NAME_LEN] {
        let name = name_of_len("len-1-ab", len);
        assert_eq!(name.len(), len);
        assert!(
            name.split('.').all(|l| !l.is_empty() && l.len() <= 63),
            "{name}"
        );
        assert!(!name.ends_with('.'));
    }
}
