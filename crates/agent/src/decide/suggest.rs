//! Help for a pod that references a profile nobody created: the existing names closest to the
//! one it asked for (a typo is the usual cause). Pure.

/// How many names a suggestion lists at most.
pub const MAX_SUGGESTIONS: usize = 3;

/// The existing names closest to `wanted`, best first (ties by name), at most
/// [`MAX_SUGGESTIONS`]. Only names within a few edits count (two, or a quarter of the name's
/// length when that is more): a suggestion has to look like what was meant.
pub fn closest_names<'a>(
    wanted: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let limit = (wanted.chars().count() / 4).max(2);
    let mut scored: Vec<(usize, &str)> = existing
        .into_iter()
        .filter(|name| *name != wanted)
        .map(|name| (strsim::damerau_levenshtein(wanted, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort_unstable();
    scored.dedup();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name)
        .collect()
}

/// The message of the Warning Event on a pod that references `seccompd/<profile>.json` when no
/// SeccompProfile of that name exists.
pub fn missing_profile_note(profile: &str, closest: &[String]) -> String {
    let hint = if closest.is_empty() {
        "no existing SeccompProfile has a similar name".to_string()
    } else {
        let quoted: Vec<String> = closest.iter().map(|n| format!("{n:?}")).collect();
        format!("closest existing: {}", quoted.join(", "))
    };
    format!(
        "seccompProfile localhostProfile seccompd/{profile}.json names no SeccompProfile: \
         there is no SeccompProfile {profile:?} ({hint}); containers using it cannot start \
         until it is created or the pod is fixed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_intended_name_first() {
        let existing = ["nginx-strict", "nginx-strikt", "redis", "nginx", "postgres"];
        // A transposition counts as one edit.
        assert_eq!(
            closest_names("nginx-stirct", existing),
            ["nginx-strict", "nginx-strikt"]
        );
        assert_eq!(closest_names("rediss", existing), ["redis"]);
    }

    #[test]
    fn unrelated_names_are_not_suggested() {
        assert!(closest_names("mysql", ["nginx-strict", "postgres"]).is_empty());
        assert!(closest_names("a", std::iter::empty()).is_empty());
    }

    #[test]
    fn at_most_three_best_first_ties_by_name() {
        let existing = ["ab", "ac", "ad", "ae", "abc"];
        assert_eq!(closest_names("abd", existing), ["ab", "abc", "ad"]);
    }

    #[test]
    fn note_names_the_missing_profile_and_the_candidates() {
        let note = missing_profile_note("nginx-stirct", &["nginx-strict".into()]);
        assert!(note.contains("seccompd/nginx-stirct.json"), "{note}");
        assert!(
            note.contains("closest existing: \"nginx-strict\""),
            "{note}"
        );
        let none = missing_profile_note("x", &[]);
        assert!(none.contains("no existing SeccompProfile has a similar name"));
    }
}
