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
