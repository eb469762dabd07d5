//! Helpers for what runs against the local test cluster (`make cluster-up`): the cluster tests
//! and the benches. The first call that needs the cluster checks that its API server answers,
//! and without one every caller fails at once saying how to bring it up; none skips itself.

pub mod recorder;
pub mod tokens;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Where the admin kubeconfig of the test cluster is: `SECCOMPD_KUBECONFIG`, or where
/// `make cluster-up` writes it.
fn kubeconfig_location() -> PathBuf {
    std::env::var_os("SECCOMPD_KUBECONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(".cluster/kubeconfig"))
}

/// The admin kubeconfig of the test cluster, once its API server has answered; panics with
/// how to bring the cluster up when there is none.
pub fn kubeconfig_path() -> PathBuf {
    let path = kubeconfig_location();
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(missing) = FOUND.get_or_init(|| api_server_answers(&path)) {
        panic!("{missing}");
    }
    path
}

/// How long the API server has to accept a connection before the cluster counts as missing.
const CONNECT_WITHIN: Duration = Duration::from_secs(3);

/// Whether the API server that the kubeconfig at `path` names accepts a connection; otherwise
/// why not, with what to do.
fn api_server_answers(path: &Path) -> Result<(), String> {
    let bring_up = "this needs the test cluster: bring it up with `make cluster-up` (`make \
                    test` brings one up for the cluster tests and takes it down again), or \
                    point SECCOMPD_KUBECONFIG at the admin kubeconfig of a running one";
    if !path.is_file() {
        return Err(format!("no kubeconfig at {}; {bring_up}", path.display()));
    }
    let server = api_server(path).map_err(|e| format!("{e}; {bring_up}"))?;
    let refused = |why: String| {
        format!(
            "no API server answers at {server} (kubeconfig {}): {why}; {bring_up}",
            path.display()
        )
    };
    let uri: http::Uri = server
        .parse()
        .map_err(|e| refused(format!("not a URL: {e}")))?;
    let host = uri.host().ok_or_else(|| refused("no host".into()))?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let addrs = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| refused(e.to_string()))?;
    let mut last = String::from("the host name resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_WITHIN) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(refused(last))
}

/// The `server` of the current context's cluster in the kubeconfig at `path`.
fn api_server(path: &Path) -> Result<String, String> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
    let context = kubeconfig.current_context.as_deref().unwrap_or_default();
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| {
            format!(
                "kubeconfig {} names no server for its current context {context:?}",
                path.display()
            )
        })
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    crate::repo_root().join(rel)
}

/// A client for the test cluster; panics with instructions when there is none.
pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", path.display()));
    Client::try_from(config).expect("building a client from the kubeconfig")
}

/// Runs the cluster's kubectl with the admin kubeconfig.
pub fn kubectl(args: &[&str]) -> Output {
    let kubeconfig = kubeconfig_path();
    let bin = repo_path(".cluster/bin/kubectl");
    assert!(
        bin.exists(),
        "no kubectl at {}: run `make cluster-up`",
        bin.display()
    );
    Command::new(&bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// Runs kubectl with `stdin` as input.
pub fn kubectl_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let kubeconfig = kubeconfig_path();
    let bin = repo_path(".cluster/bin/kubectl");
    let mut child = Command::new(&bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("writing kubectl stdin");
    child.wait_with_output().expect("waiting for kubectl")
}

/// Stdout of a kubectl call that must succeed.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Applies the kustomization in `dir` (manifests/ or one built on it) as hack/apply-manifests.sh
/// does for `make cluster-up`: on a release without MutatingAdmissionPolicy v1 (before 1.36),
/// everything but SeccompProfileBinding's policy. What the command printed, and whether it
/// succeeded, are in the output.
pub fn apply_manifests(dir: &Path) -> Output {
    let script = repo_path("hack/apply-manifests.sh");
    Command::new(&script)
        .arg(dir)
        .env("SECCOMPD_KUBECONFIG", kubeconfig_path())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()))
}

/// Whether the cluster serves MutatingAdmissionPolicy v1 (Kubernetes 1.36 or later), which
/// SeccompProfileBinding needs.
pub fn serves_mutating_admission_policy_v1() -> bool {
    kubectl_ok(&["get", "--raw", "/apis/admissionregistration.k8s.io/v1"])
        .contains("\"mutatingadmissionpolicies\"")
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what` and the last
/// observation.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `kubectl get --raw /readyz` (with `extra` arguments) succeeds.
pub async fn wait_for_readyz(what: &str, extra: &[&str]) {
    eventually(what, Duration::from_secs(180), || async {
        let mut args = vec!["get", "--raw", "/readyz", "--request-timeout=2s"];
        args.extend_from_slice(extra);
        let out = kubectl(&args);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
    .await;
}

/// The cluster IP of the `kubernetes` Service, through which every in-cluster client (the
/// agents too) reaches the API server.
pub fn kubernetes_service_ip() -> String {
    kubectl_ok(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])
}

/// A name unique to this test run, for objects the test creates.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Where the agent installs profile `name` on the (single, local) node.
pub fn node_profile_path(name: &str) -> PathBuf {
    PathBuf::from("/var/lib/kubelet/seccomp/seccompd").join(format!("{name}.json"))
}

/// The names of the cluster's nodes (node1, and node2 unless the cluster was brought up with
/// `NODES=1`).
pub fn node_names() -> Vec<String> {
    kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// What INSTALLED says for a profile on every node: `n/n`.
pub fn installed_everywhere() -> String {
    let n = node_names().len();
    format!("{n}/{n}")
}

/// The permissions `kubectl auth can-i --list` shows for `user` in `namespace`: one line per
/// resource row, `resource [names] [verbs]` with single spaces (non-resource URLs left out:
/// they are the same for every authenticated user).
pub fn can_i_list(user: &str, namespace: &str) -> BTreeSet<String> {
    let out = kubectl_ok(&["auth", "can-i", "--list", "--as", user, "-n", namespace]);
    resource_rows(&out)
        .into_iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The resource rows of can-i's table, normalized to single spaces between columns.
fn resource_rows(table: &str) -> BTreeSet<String> {
    table
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with(' '))
        .map(|line| {
            // Resources, Non-Resource URLs ([] on these rows), Resource Names, Verbs.
            // Columns are padded with at least three spaces; values hold single spaces.
            let columns: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let mut columns = columns.into_iter();
            let resource = columns.next().unwrap_or_default();
            let rest: Vec<&str> = columns.skip(1).collect();
            format!("{resource} {}", rest.join(" "))
        })
        .collect()
}

/// Where the docs list what each ServiceAccount may do, as `kubectl auth can-i --list` prints it.
const SECURITY_MODEL: &str = "docs/security-model.md";

/// What `user` may do in `namespace` (`can_i_list`) and what docs/security-model.md documents
/// for it (`documented_can_i`), both without the rows that the cluster's default roles give
/// every ServiceAccount (asked for one that nothing binds): those change between Kubernetes
/// releases (1.37 lets every ServiceAccount read clustertrustbundles), while the docs list
/// what seccompd grants.
pub fn granted_and_documented_can_i(
    user: &str,
    namespace: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let any_service_account = can_i_list(
        &format!("system:serviceaccount:{namespace}:seccompd-test-unbound"),
        namespace,
    );
    let without_defaults = |rows: BTreeSet<String>| &rows - &any_service_account;
    (
        without_defaults(can_i_list(user, namespace)),
        without_defaults(documented_can_i(user)),
    )
}

/// The rows docs/security-model.md documents for `user`: the ```text block after the line
/// that names the can-i command for it.
pub fn documented_can_i(user: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_path(SECURITY_MODEL)).expect(SECURITY_MODEL);
    let command = format!("kubectl auth can-i --list --as={user}");
    let after = doc
        .split_once(&command)
        .unwrap_or_else(|| panic!("{SECURITY_MODEL} names `{command}`"))
        .1;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, b)| b.split_once("```"))
        .expect("a ```text block after it")
        .0;
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
