//! The CustomResourceDefinitions as YAML, as `seccompd crd` prints them and `crds/` stores them.

use kube::CustomResourceExt;

use super::{SeccompNodeReport, SeccompProfile};

/// Every CRD seccompd needs, as one multi-document YAML stream.
pub fn all_crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in [SeccompProfile::crd(), SeccompNodeReport::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_dir_matches_the_generator() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/seccompd.yaml");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = all_crds_yaml().unwrap();
        assert!(
            committed == generated,
            "crds/seccompd.yaml is out of date: run `cargo run -q -- crd > crds/seccompd.yaml`"
        );
    }

    #[test]
    fn profile_crd_is_cluster_scoped_with_status_and_columns() {
        let crd = SeccompProfile::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.short_names, Some(vec!["scp".to_string()]));
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["seccompd".to_string()])
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Status", "Installed", "Profile", "Age"]);
    }
}
