//! Plugin targets as callers name them: `name`, `name@1.2.0` (that
//! version) or `name@^1.2` (the highest version in a range). Below the
//! deployments and the permissions, which both read them.

use semver::{Version, VersionReq};

use crate::error::{Error, Result};

/// Which versions a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    Exact(Version),
    Range(VersionReq),
}

impl VersionSpec {
    /// The highest of `versions` this spec accepts.
    pub(crate) fn pick<'a>(
        &self,
        versions: impl DoubleEndedIterator<Item = &'a Version>,
    ) -> Option<&'a Version> {
        let mut versions = versions.rev();
        match self {
            VersionSpec::Exact(v) => versions.find(|have| *have == v),
            VersionSpec::Range(req) => versions.find(|have| req.matches(have)),
        }
    }
}

/// Splits `name@spec`; a plain name has no spec. `1.2.0` is that exact
/// version; anything else after `@` is a semver range (`^1.2`, `~1.2.3`,
/// `>=1, <2`, `*`).
pub(crate) fn parse_target(target: &str) -> Result<(&str, Option<VersionSpec>)> {
    let Some((name, spec)) = target.split_once('@') else {
        return Ok((target, None));
    };
    let spec = spec.trim();
    if let Ok(exact) = Version::parse(spec) {
        return Ok((name, Some(VersionSpec::Exact(exact))));
    }
    VersionReq::parse(spec)
        .map(|req| (name, Some(VersionSpec::Range(req))))
        .map_err(|e| Error::Deploy {
            plugin: name.to_string(),
            message: format!(
                "`{spec}` is neither a version nor a semver range ({e}); write `{name}@1.2.0` \
                 or `{name}@^1.2`"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("p").expect("plain"), ("p", None));
        let (name, spec) = parse_target("p@1.2.0").expect("exact");
        assert_eq!(name, "p");
        assert_eq!(spec, Some(VersionSpec::Exact(Version::new(1, 2, 0))));
        let (_, spec) = parse_target("p@^1.2").expect("range");
        let versions = [
            Version::new(1, 1, 0),
            Version::new(1, 2, 5),
            Version::new(1, 9, 0),
            Version::new(2, 0, 0),
        ];
        let picked = spec.expect("spec").pick(versions.iter()).cloned();
        assert_eq!(picked, Some(Version::new(1, 9, 0)));
        let (_, spec) = parse_target("p@1.2.0").expect("exact");
        assert_eq!(spec.expect("spec").pick(versions.iter()), None);
        let err = parse_target("p@banana").expect_err("bad range");
        assert!(err.to_string().contains("p@^1.2"), "{err}");
    }
}
