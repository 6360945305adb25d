//! Where a browser may be sent after signing in: only paths on this site, never another host.

/// Returns the path when it is a safe, site-relative destination, `None` otherwise.
///
/// Browsers treat `//host`, `/\host` and anything with a scheme as another origin, and they strip
/// tabs and newlines before parsing, so all of those are refused rather than cleaned up.
pub fn safe_return_to(candidate: &str) -> Option<&str> {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && candidate.len() <= 2048
        && !candidate.chars().any(|c| c.is_control() || c == '\\')
        // The login and setup pages are not destinations: returning there would loop.
        && !candidate.starts_with("/api/");
    ok.then_some(candidate)
}

/// The destination to use after sign-in: the candidate when it is safe, else the landing page.
pub fn return_to_or_home(candidate: Option<&str>) -> String {
    candidate
        .and_then(safe_return_to)
        .filter(|path| !path.starts_with("/login") && !path.starts_with("/setup"))
        .unwrap_or("/")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_relative_paths_with_query() {
        assert_eq!(
            safe_return_to("/settings/security?tab=1"),
            Some("/settings/security?tab=1")
        );
        assert_eq!(return_to_or_home(Some("/nodes/pve1")), "/nodes/pve1");
    }

    #[test]
    fn refuses_other_hosts_and_schemes() {
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\t/evil.example",
            "/%0a",
            "",
            "/ok\\..\\",
        ] {
            let verdict = safe_return_to(evil);
            if evil == "/%0a" {
                // Percent-encoded bytes stay on this site: harmless.
                assert_eq!(verdict, Some(evil));
            } else {
                assert_eq!(verdict, None, "{evil:?} must be refused");
            }
        }
    }

    #[test]
    fn falls_back_to_home_for_unsafe_or_looping_targets() {
        assert_eq!(return_to_or_home(None), "/");
        assert_eq!(return_to_or_home(Some("//evil.example")), "/");
        assert_eq!(return_to_or_home(Some("/login?returnTo=/x")), "/");
        assert_eq!(return_to_or_home(Some("/api/logout")), "/");
    }
}
