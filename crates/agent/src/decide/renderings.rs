//! Each profile's last rendering with what it was made from, so that a pass renders again
//! only the profiles whose spec, bases or floors changed: with 1,000 profiles, a change to
//! one costs one rendering, not 1,000 (and no fresh copy of every file's bytes each pass).

use std::collections::HashMap;

use super::desired::{Origin, ProfileInput};
use seccompd_profile::floor::FloorStamp;
use seccompd_profile::limits::MAX_BASE_DEPTH;
use seccompd_profile::render::Rendered;

/// A profile resolved and rendered, or why it cannot be.
pub type Rendering = Result<Rendered, String>;

/// The renderings of the profiles of the last pass, by name.
#[derive(Debug, Default)]
pub struct RenderCache {
    by_name: HashMap<String, Entry>,
}

/// One profile's rendering and what it depends on.
#[derive(Debug)]
struct Entry {
    /// The profile and its chain of bases, each at the version it had.
    links: Vec<Link>,
    /// The floors merged in.
    floors: Vec<FloorStamp>,
    rendering: Rendering,
}

/// One profile of a chain (the profile, its base, the base's base...) at the version a
/// rendering used.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    /// A SeccompProfile object: its spec is fixed by its uid and generation.
    Object { uid: String, generation: i64 },
    /// A built-in profile (fixed for the life of the agent).
    Builtin(String),
    /// A base that does not exist (the rendering is an error that names it).
    Missing(String),
}

/// [`Link`], borrowed from this pass's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkRef<'a> {
    Object { uid: &'a str, generation: i64 },
    Builtin(&'a str),
    Missing(&'a str),
}

impl LinkRef<'_> {
    fn to_owned(self) -> Link {
        match self {
            LinkRef::Object { uid, generation } => Link::Object {
                uid: uid.to_string(),
                generation,
            },
            LinkRef::Builtin(name) => Link::Builtin(name.to_string()),
            LinkRef::Missing(name) => Link::Missing(name.to_string()),
        }
    }
}

impl Link {
    fn as_ref(&self) -> LinkRef<'_> {
        match self {
            Link::Object { uid, generation } => LinkRef::Object {
                uid,
                generation: *generation,
            },
            Link::Builtin(name) => LinkRef::Builtin(name),
            Link::Missing(name) => LinkRef::Missing(name),
        }
    }
}

impl RenderCache {
    /// `p`'s rendering with the floors `applying`: the one kept, if `p`, its bases and the
    /// floors are as they were when it was made, else `render()`'s, kept for the next pass.
    /// A profile whose version is not known (an object without uid or generation) is
    /// rendered every time.
    pub fn get_or_render(
        &mut self,
        p: &ProfileInput<'_>,
        by_name: &HashMap<&str, &ProfileInput<'_>>,
        applying: &[FloorStamp],
        render: impl FnOnce() -> Rendering,
    ) -> Rendering {
        let Some(links) = links(p, by_name) else {
            self.by_name.remove(p.name);
            return render();
        };
        if let Some(entry) = self.by_name.get(p.name)
            && entry.floors == applying
            && entry
                .links
                .iter()
                .map(Link::as_ref)
                .eq(links.iter().copied())
        {
            return entry.rendering.clone();
        }
        let rendering = render();
        self.by_name.insert(
            p.name.to_string(),
            Entry {
                links: links.into_iter().map(LinkRef::to_owned).collect(),
                floors: applying.to_vec(),
                rendering: rendering.clone(),
            },
        );
        rendering
    }

    /// Forgets the profiles for which `keep` is false.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_name.retain(|name, _| keep(name));
    }
}

/// `p` and its chain of bases as the rendering depends on them; `None` when a version is not
/// known. The walk stops at a missing base, or once the chain is longer than resolution
/// follows ([`MAX_BASE_DEPTH`]: the rendering is then that error, whatever lies beyond),
/// which also bounds a cycle.
fn links<'a>(
    p: &ProfileInput<'a>,
    by_name: &HashMap<&str, &ProfileInput<'a>>,
) -> Option<Vec<LinkRef<'a>>> {
    let mut out = Vec::with_capacity(1);
    let mut current = *p;
    loop {
        out.push(match current.origin {
            Origin::Builtin => LinkRef::Builtin(current.name),
            Origin::Api { uid } => LinkRef::Object {
                uid: uid?,
                generation: current.generation?,
            },
        });
        let Some(base) = current.spec.base_profile_name.as_deref() else {
            return Some(out);
        };
        if out.len() > MAX_BASE_DEPTH {
            return Some(out);
        }
        match by_name.get(base) {
            Some(next) => current = **next,
            None => {
                out.push(LinkRef::Missing(base));
                return Some(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use seccompd_profile::model::ProfileSpec;
    use seccompd_profile::render::content_hash;

    fn spec(base: Option<&str>) -> ProfileSpec {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "baseProfileName": base,
        }))
        .unwrap()
    }

    fn object<'a>(
        name: &'a str,
        uid: &'a str,
        generation: i64,
        spec: &'a ProfileSpec,
    ) -> ProfileInput<'a> {
        ProfileInput {
            name,
            generation: Some(generation),
            origin: Origin::Api { uid: Some(uid) },
            spec,
        }
    }

    /// Counts the renderings `get_or_render` asks for.
    struct Renders<'c>(&'c Cell<usize>);

    impl Renders<'_> {
        fn of(
            &self,
            cache: &mut RenderCache,
            p: &ProfileInput<'_>,
            all: &[ProfileInput<'_>],
            floors: &[FloorStamp],
        ) -> usize {
            let by_name: HashMap<&str, &ProfileInput<'_>> =
                all.iter().map(|p| (p.name, p)).collect();
            let before = self.0.get();
            let count = self.0;
            cache
                .get_or_render(p, &by_name, floors, || {
                    count.set(count.get() + 1);
                    Ok(Rendered {
                        bytes: b"{}"[..].into(),
                        hash: content_hash(b"{}"),
                    })
                })
                .unwrap();
            self.0.get() - before
        }
    }

    #[test]
    fn a_profile_is_rendered_again_only_when_it_its_bases_or_its_floors_change() {
        let count = Cell::new(0);
        let renders = Renders(&count);
        let mut cache = RenderCache::default();
        let plain = spec(None);
        let child_spec = spec(Some("base"));
        let base = object("base", "u-base", 1, &plain);
        let child = object("child", "u-child", 1, &child_spec);
        let all = [base, child];
        assert_eq!(renders.of(&mut cache, &child, &all, &[]), 1);
        assert_eq!(
            renders.of(&mut cache, &child, &all, &[]),
            0,
            "nothing changed"
        );
        // The base's new generation.
        let all = [object("base", "u-base", 2, &plain), child];
        assert_eq!(
            renders.of(&mut cache, &child, &all, &[]),
            1,
            "its base changed"
        );
        assert_eq!(renders.of(&mut cache, &child, &all, &[]), 0);
        // Its own new generation.
        let child = object("child", "u-child", 2, &child_spec);
        assert_eq!(renders.of(&mut cache, &child, &all, &[]), 1, "it changed");
        // Deleted and created again under the same name: a new uid, generation 1 again.
        let child = object("child", "u-child-2", 2, &child_spec);
        assert_eq!(renders.of(&mut cache, &child, &all, &[]), 1, "recreated");
        // A floor merged in, then its rules changed.
        let stamp = |digest: &[u8]| FloorStamp {
            name: "copy-fail".into(),
            digest: content_hash(digest),
        };
        assert_eq!(renders.of(&mut cache, &child, &all, &[stamp(b"1")]), 1);
        assert_eq!(renders.of(&mut cache, &child, &all, &[stamp(b"1")]), 0);
        assert_eq!(renders.of(&mut cache, &child, &all, &[stamp(b"2")]), 1);
        assert_eq!(renders.of(&mut cache, &child, &all, &[]), 1, "floor gone");
    }

    #[test]
    fn a_missing_base_that_appears_and_unknown_versions_are_rendered_again() {
        let count = Cell::new(0);
        let renders = Renders(&count);
        let mut cache = RenderCache::default();
        let child_spec = spec(Some("base"));
        let plain = spec(None);
        let child = object("child", "u-child", 1, &child_spec);
        assert_eq!(renders.of(&mut cache, &child, &[child], &[]), 1);
        assert_eq!(renders.of(&mut cache, &child, &[child], &[]), 0);
        let all = [child, object("base", "u-base", 1, &plain)];
        assert_eq!(
            renders.of(&mut cache, &child, &all, &[]),
            1,
            "the base appeared"
        );
        let unversioned = ProfileInput {
            origin: Origin::Api { uid: None },
            ..child
        };
        assert_eq!(renders.of(&mut cache, &unversioned, &all, &[]), 1);
        assert_eq!(
            renders.of(&mut cache, &unversioned, &all, &[]),
            1,
            "never kept"
        );
        // A cycle is walked to the bound, and kept like any other rendering.
        let a_spec = spec(Some("b"));
        let b_spec = spec(Some("a"));
        let cycle = [
            object("a", "u-a", 1, &a_spec),
            object("b", "u-b", 1, &b_spec),
        ];
        assert_eq!(renders.of(&mut cache, &cycle[0], &cycle, &[]), 1);
        assert_eq!(renders.of(&mut cache, &cycle[0], &cycle, &[]), 0);
        let cycle = [cycle[0], object("b", "u-b", 2, &b_spec)];
        assert_eq!(renders.of(&mut cache, &cycle[0], &cycle, &[]), 1);
    }

    #[test]
    fn builtins_are_kept_and_forgotten_profiles_go() {
        let count = Cell::new(0);
        let renders = Renders(&count);
        let mut cache = RenderCache::default();
        let plain = spec(None);
        let builtin = ProfileInput {
            name: "seccompd/default",
            generation: None,
            origin: Origin::Builtin,
            spec: &plain,
        };
        assert_eq!(renders.of(&mut cache, &builtin, &[builtin], &[]), 1);
        assert_eq!(renders.of(&mut cache, &builtin, &[builtin], &[]), 0);
        cache.retain(|name| name != "seccompd/default");
        assert!(cache.by_name.is_empty());
        assert_eq!(renders.of(&mut cache, &builtin, &[builtin], &[]), 1);
    }
}
