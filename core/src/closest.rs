//! [`closest_name`]: one did-you-mean rule, for runner names and magics alike.

/// The candidate closest to `name`, if one is close enough to be a typo of it (a
/// prefix of a candidate counts as one edit): for "did you mean ...?" messages.
///
/// ```
/// use autoawait_core::closest_name;
///
/// assert_eq!(closest_name("tokoi", ["smol", "tokio"]), Some("tokio"));
/// assert_eq!(closest_name("glom", ["glommio"]), Some("glommio"));
/// assert_eq!(closest_name("xyz", ["tokio"]), None);
/// ```
pub fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            let d = if c.starts_with(name) && !name.is_empty() {
                1
            } else {
                edit_distance(name, c)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("tokio", "tokio"), 0);
        assert_eq!(edit_distance("tokoi", "tokio"), 2);
        assert_eq!(edit_distance("smol", "smol-fresh"), 6);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
