//! The CustomResourceDefinitions as YAML, as `seccompd crd` prints them and `crds/` stores them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use super::{
    SeccompDenialReport, SeccompFloor, SeccompNodeReport, SeccompProfile, SeccompProfileBinding,
    SeccompProfileRecording,
};

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD did not survive the round trip through JSON that reflows its descriptions.
    #[error("rewrapping the descriptions of CRD {crd}: {source}")]
    Rewrap {
        /// The CRD's plural name.
        crd: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The YAML serializer failed.
    #[error("writing CRD YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
}

/// Every CRD seccompd needs, as one multi-document YAML stream.
pub fn all_crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in [
        SeccompProfile::crd(),
        SeccompNodeReport::crd(),
        SeccompProfileRecording::crd(),
        SeccompFloor::crd(),
        SeccompDenialReport::crd(),
        SeccompProfileBinding::crd(),
    ] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&with_paragraph_descriptions(
            crd,
        )?)?);
    }
    Ok(out)
}

/// `crd` with every description reflowed by [`paragraphs`]: the descriptions are the fields'
/// doc comments, and `kubectl explain` shows their source line breaks as they are.
fn with_paragraph_descriptions(
    crd: CustomResourceDefinition,
) -> Result<CustomResourceDefinition, CrdError> {
    let rewrap = |source| CrdError::Rewrap {
        crd: crd.spec.names.plural.clone(),
        source,
    };
    let mut value = serde_json::to_value(&crd).map_err(rewrap)?;
    reflow_descriptions(&mut value);
    serde_json::from_value(value).map_err(rewrap)
}

/// Reflows every string under a `description` key, leaving alone the values a schema carries
/// as data (`default`, `example`, `enum`), where such a key is the user's, not a description.
fn reflow_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v) {
                    ("description", Value::String(text)) => *text = paragraphs(text),
                    ("default" | "example" | "enum", _) => {}
                    (_, v) => reflow_descriptions(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

/// Joins the lines of each paragraph of a doc comment into one line; blank lines still separate
/// paragraphs, and a line that starts a Markdown list item (`- `, `* `) stays on its own.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            let mut joined = String::new();
            for line in paragraph.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !joined.is_empty() {
                    let list_item = line.starts_with("- ") || line.starts_with("* ");
                    joined.push(if list_item { '\n' } else { ' ' });
                }
                joined.push_str(line);
            }
            joined
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_dir_matches_the_generator() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds/seccompd.yaml");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = all_crds_yaml().unwrap();
        assert!(
            committed == generated,
            "crds/seccompd.yaml is out of date: run `cargo run -q -- crd > crds/seccompd.yaml`"
        );
    }

    /// Helm installs CRDs from the chart's crds/ directory (plain YAML, never templated).
    #[test]
    fn chart_crds_match_the_generator() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../charts/seccompd/crds/seccompd.yaml"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == all_crds_yaml().unwrap(),
            "charts/seccompd/crds/seccompd.yaml is out of date: run `make manifests`"
        );
    }

    #[test]
    fn paragraphs_join_lines_and_keep_paragraph_breaks() {
        assert_eq!(
            paragraphs("A profile that\nseccompd installs.\n\nSecond\nparagraph."),
            "A profile that seccompd installs.\n\nSecond paragraph."
        );
        assert_eq!(paragraphs("One line."), "One line.");
        assert_eq!(
            paragraphs("Either:\n- this one\n- or that\none."),
            "Either:\n- this one\n- or that one."
        );
    }

    #[test]
    fn descriptions_are_reflowed_but_data_is_not() {
        let mut schema = serde_json::json!({
            "description": "a\nb",
            "properties": {
                "description": {"description": "c\nd", "type": "string"},
                "x": {"default": {"description": "kept\nas is"}, "enum": ["e\nf"]},
            },
        });
        reflow_descriptions(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "description": "a b",
                "properties": {
                    "description": {"description": "c d", "type": "string"},
                    "x": {"default": {"description": "kept\nas is"}, "enum": ["e\nf"]},
                },
            })
        );
    }

    #[test]
    fn generated_descriptions_are_already_reflowed() {
        for crd in [
            SeccompProfile::crd(),
            SeccompNodeReport::crd(),
            SeccompProfileRecording::crd(),
            SeccompFloor::crd(),
            SeccompDenialReport::crd(),
            SeccompProfileBinding::crd(),
        ] {
            let generated =
                serde_json::to_value(with_paragraph_descriptions(crd).unwrap()).unwrap();
            let mut again = generated.clone();
            reflow_descriptions(&mut again);
            assert_eq!(again, generated);
        }
        let spec = &SeccompProfile::crd().spec.versions[0];
        let schema = spec
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let raw = schema
            .and_then(|s| s.properties.as_ref())
            .and_then(|p| p["spec"].description.clone());
        assert!(
            raw.is_some_and(|d| d.contains('\n')),
            "the source has line breaks to remove"
        );
    }

    /// The printer columns of `crd`'s first version, as (name, JSON path), after checking that
    /// it has a status subresource.
    fn status_and_columns(crd: &CustomResourceDefinition) -> Vec<(String, String)> {
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{} has a status subresource",
            crd.spec.names.plural
        );
        version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect()
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
        let columns = status_and_columns(&crd);
        let names: Vec<_> = columns.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            ["Status", "Mode", "Installed", "Denials", "Profile", "Age"]
        );
    }

    #[test]
    fn binding_crd_is_namespaced_with_status_and_columns() {
        let crd = SeccompProfileBinding::crd();
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["scpb".to_string()]));
        assert_eq!(
            crd.spec.versions[0].name,
            SeccompProfile::crd().spec.versions[0].name
        );
        let columns = status_and_columns(&crd);
        let columns: Vec<_> = columns
            .iter()
            .map(|(name, path)| (name.as_str(), path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Profile", ".spec.profileName"),
                ("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                ("Status", ".status.conditions[?(@.type==\"Ready\")].reason"),
                ("Age", ".metadata.creationTimestamp"),
            ]
        );
    }

    /// The bounds that keep the admission policy's CEL cheap are in the schema the API server
    /// checks, and the operator is one of the four a label selector knows.
    #[test]
    fn binding_schema_bounds_the_selector_and_the_containers() {
        use seccompd_profile::limits::{
            MAX_BINDING_CONTAINERS, MAX_SELECTOR_TERMS, MAX_SELECTOR_VALUES,
        };
        let crd = serde_json::to_value(SeccompProfileBinding::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["required"],
            serde_json::json!(["podSelector", "profileName"])
        );
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["maxItems"], MAX_BINDING_CONTAINERS);
        assert_eq!(containers["items"]["maxLength"], 63);
        assert!(containers["items"]["pattern"].is_string());
        let selector = &spec["properties"]["podSelector"]["properties"];
        assert_eq!(selector["matchLabels"]["maxProperties"], MAX_SELECTOR_TERMS);
        let expressions = &selector["matchExpressions"];
        assert_eq!(expressions["maxItems"], MAX_SELECTOR_TERMS);
        let requirement = &expressions["items"];
        assert_eq!(
            requirement["properties"]["values"]["maxItems"],
            MAX_SELECTOR_VALUES
        );
        assert_eq!(
            requirement["properties"]["operator"]["enum"],
            serde_json::json!(["In", "NotIn", "Exists", "DoesNotExist"])
        );
        assert!(
            requirement["x-kubernetes-validations"][0]["rule"]
                .as_str()
                .is_some_and(|r| r.contains("'In', 'NotIn'"))
        );
    }

    #[test]
    fn the_denial_report_is_cluster_scoped_named_after_its_node_without_status() {
        let crd = SeccompDenialReport::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.plural, "seccompdenialreports");
        let version = &crd.spec.versions[0];
        assert!(version.subresources.is_none(), "the spec is the report");
    }
}
