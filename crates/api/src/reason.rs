//! Free text that seccompd writes into its API objects (a node report's reasons, a status's
//! reasons and messages), cut to the bound their schemas set, so that a long error never makes
//! the API server refuse the whole object.

use seccompd_profile::limits::MAX_REASON_LEN;

/// What ends a reason that was cut, so that a reader knows there was more.
pub const CUT_MARKER: &str = " [...]";

/// `text` itself when it has at most [`MAX_REASON_LEN`] characters; otherwise its start,
/// cut on a character boundary, followed by [`CUT_MARKER`], [`MAX_REASON_LEN`] characters in
/// all. Characters, not bytes: the API server's `maxLength` counts characters.
pub fn bounded_reason(text: String) -> String {
    cut_to(text, MAX_REASON_LEN)
}

/// `text` cut like [`bounded_reason`] to
/// [`seccompd_profile::limits::MAX_FLOOR_REASON_LEN`] characters: the reason a node report
/// gives for a profile that lacks a floor.
pub fn bounded_floor_reason(text: String) -> String {
    cut_to(text, seccompd_profile::limits::MAX_FLOOR_REASON_LEN)
}

/// `text` cut like [`bounded_reason`] to [`seccompd_profile::limits::MAX_WARNING_LEN`]
/// characters: a node's warning about one profile, in its report and in the profile's status.
pub fn bounded_warning(text: String) -> String {
    cut_to(text, seccompd_profile::limits::MAX_WARNING_LEN)
}

/// [`bounded_reason`] with any bound (at least as long as the marker).
fn cut_to(mut text: String, max_chars: usize) -> String {
    if text.char_indices().nth(max_chars).is_none() {
        return text;
    }
    let keep = max_chars.saturating_sub(CUT_MARKER.chars().count());
    let end = text
        .char_indices()
        .nth(keep)
        .map_or(text.len(), |(byte, _)| byte);
    text.truncate(end);
    text.push_str(CUT_MARKER);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_within_the_bound_is_kept_as_it_is() {
        let exact = "é".repeat(MAX_REASON_LEN);
        assert_eq!(bounded_reason(exact.clone()), exact);
        assert_eq!(bounded_reason("No space left".into()), "No space left");
        assert_eq!(bounded_reason(String::new()), "");
    }

    #[test]
    fn a_longer_reason_is_cut_to_the_bound_with_the_marker() {
        let long = "x".repeat(100 * 1024);
        let cut = bounded_reason(long);
        assert_eq!(cut.chars().count(), MAX_REASON_LEN);
        assert!(cut.ends_with(CUT_MARKER));
        assert!(cut.starts_with("xxx"));
    }

    #[test]
    fn cutting_counts_characters_and_never_splits_one() {
        // Multi-byte characters: a byte-based cut would either exceed the bound in characters
        // or split a character (and panic).
        let text = "é€😀".repeat(10);
        let cut = cut_to(text.clone(), 10);
        assert_eq!(cut.chars().count(), 10);
        let kept = 10 - CUT_MARKER.chars().count();
        assert_eq!(
            cut,
            format!(
                "{}{CUT_MARKER}",
                text.chars().take(kept).collect::<String>()
            )
        );
        let one_over = "😀".repeat(MAX_REASON_LEN + 1);
        assert_eq!(bounded_reason(one_over).chars().count(), MAX_REASON_LEN);
    }
}
