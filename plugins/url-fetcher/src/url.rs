//! URL handling of `url-fetcher`, free of any WebAssembly bindings: split a
//! URL into what `wasi:http` wants, resolve a redirect's `Location`, read
//! the options. Depends on `std` only.

/// A URL split the way an outgoing `wasi:http` request is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not an absolute URL (http:// or https://)"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{url}`: only http and https URLs can be fetched"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("`{url}`: the URL needs a host (and no user info)"));
        }
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }

    /// Where a redirect with `location` (absolute, or relative to this URL) goes.
    pub fn join(&self, location: &str) -> Result<Target, String> {
        if location.contains("://") {
            return Target::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Target::parse(&format!("{}://{rest}", self.scheme));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Target {
            path,
            ..self.clone()
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// Whether `status` is a redirect the fetcher follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Redirects followed when the `max-redirects` option is not given.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// Reads `max-redirects`.
pub fn max_redirects(value: Option<&str>) -> Result<u32, String> {
    match value {
        None => Ok(DEFAULT_MAX_REDIRECTS),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 20)
            .ok_or_else(|| format!("option `max-redirects` must be 0..=20, got `{v}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:8080/a/b?x=1#frag").expect("url");
        assert_eq!(t.scheme, "http");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/a/b?x=1");
        assert_eq!(Target::parse("https://example.com").expect("url").path, "/");
        assert_eq!(Target::parse("https://h?q").expect("url").path, "/?q");
        for bad in ["example.com", "ftp://x/", "https:///x", "http://u@h/"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_redirect_locations() {
        let base = Target::parse("http://h:1/dir/page?q=1").expect("url");
        assert_eq!(
            base.join("/top").expect("abs path").to_string(),
            "http://h:1/top"
        );
        assert_eq!(
            base.join("next").expect("rel").to_string(),
            "http://h:1/dir/next"
        );
        assert_eq!(
            base.join("https://other/x").expect("abs").to_string(),
            "https://other/x"
        );
        assert_eq!(
            base.join("//o:2/y").expect("scheme-rel").to_string(),
            "http://o:2/y"
        );
    }

    #[test]
    fn redirect_options() {
        assert_eq!(max_redirects(None), Ok(5));
        assert_eq!(max_redirects(Some("0")), Ok(0));
        assert!(max_redirects(Some("21")).is_err());
        assert!(is_redirect(302) && !is_redirect(304));
    }
}
