//! Shared UI pieces: the logo, the centred card layout, the settings frame and the message banner.
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::api::{get_viewer, Viewer};

#[component]
pub fn Logo() -> impl IntoView {
    view! {
        <svg class="logo" viewBox="0 0 64 64" width="64" height="64" aria-hidden="true">
            <circle cx="32" cy="32" r="32" class="logo-ring"></circle>
            <circle cx="32" cy="32" r="22" class="logo-gap"></circle>
            <circle cx="32" cy="32" r="18" class="logo-ring"></circle>
            <circle cx="32" cy="32" r="7" class="logo-gap"></circle>
        </svg>
    }
}

/// The page frame used by the sign-in pages: logo, title, subtitle, then a card.
#[component]
pub fn AuthFrame(#[prop(into)] title: String, #[prop(into)] subtitle: String, children: Children) -> impl IntoView {
    view! {
        <div class="auth-page">
            <header class="auth-header">
                <Logo/>
                <h1>{title}</h1>
                <p class="subtitle">{subtitle}</p>
            </header>
            <div class="card">{children()}</div>
        </div>
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Error,
    Info,
    Success,
    Warning,
}

impl Tone {
    /// The banner's classes and ARIA role: errors are announced as alerts, the rest politely.
    pub fn banner_class_and_role(self) -> (&'static str, &'static str) {
        match self {
            Tone::Error => ("banner banner-error", "alert"),
            Tone::Info => ("banner banner-info", "status"),
            Tone::Success => ("banner banner-success", "status"),
            Tone::Warning => ("banner banner-warning", "status"),
        }
    }
}

/// A message block. `testid` names it for the end-to-end tests.
#[component]
pub fn Banner(
    tone: Tone,
    #[prop(into)] message: String,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let (class, role) = tone.banner_class_and_role();
    view! { <div class=class role=role data-testid=testid>{message}</div> }
}

/// The sentence shown for a sign-in failure code (from the JSON API or a form redirect).
pub fn login_error_message(code: &str, remaining: Option<i64>, retry_after_secs: Option<i64>) -> String {
    match code {
        "invalid_credentials" => match remaining {
            Some(0) | None => "Invalid username or password.".to_owned(),
            Some(1) => "Invalid username or password. 1 attempt left before a 15-minute lock.".to_owned(),
            Some(n) => format!("Invalid username or password. {n} attempts left before a 15-minute lock."),
        },
        "locked" => {
            let minutes = retry_after_secs.map(|s| (s + 59) / 60).unwrap_or(15).max(1);
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            format!("Too many failed attempts. Sign-in is locked for {minutes} more {unit}; an administrator can unlock it sooner.")
        }
        "rate_limited" => "Too many requests. Wait a minute and try again.".to_owned(),
        "invalid_request" => "Enter a username and a password.".to_owned(),
        _ => "Sign-in failed because of a server problem. Try again, or check the Pulse log.".to_owned(),
    }
}

/// The sentence shown for an SSO failure code (`oidc_error` on the login page).
pub fn oidc_error_message(code: &str) -> &'static str {
    match code {
        "idp_error" => "The identity provider refused the sign-in.",
        "invalid_state" => "This sign-in link expired or was started in another browser. Start again with the button below.",
        "exchange_failed" => "Pulse could not complete the sign-in with the identity provider. Try again; if it keeps failing, an administrator should check the client ID and secret.",
        "invalid_id_token" => "The identity provider sent an identity Pulse cannot accept. An administrator should check the provider's settings and the Pulse log.",
        "issuer_mismatch" => "The identity provider's issuer does not match Pulse's settings. An administrator should check the issuer URL (including any trailing slash).",
        "audience_mismatch" => "The identity provider issued the sign-in for another application. An administrator should check the client ID.",
        "token_expired" => "The sign-in expired before it reached Pulse. Check that this server's clock is correct, then try again.",
        "invalid_signature" => "The identity provider's signature could not be verified (RS256 is required). An administrator should check the provider's signing key.",
        "nonce_mismatch" => "The sign-in response did not belong to this sign-in attempt. Start again.",
        "email_restricted" => "Your email address is not allowed to use Pulse. Ask your administrator.",
        "domain_restricted" => "Your email domain is not allowed to use Pulse. Ask your administrator.",
        "group_restricted" => "Your account is not in a group allowed to use Pulse. Ask your administrator.",
        "provider_unavailable" => "The identity provider could not be reached. Try again in a moment; if it persists, an administrator should check the issuer URL and network.",
        "not_configured" => "Single sign-on is not configured. Sign in with your username and password, or ask your administrator.",
        _ => "Single sign-on failed. Try again, or ask your administrator to check the Pulse log.",
    }
}

/// A time as `2026-12-04 21:14 UTC`, identical on server and client so hydration matches.
pub fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, (secs % 3600) / 60)
}

/// Howard Hinnant's days-to-civil algorithm: no date library in the WebAssembly bundle.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The security settings screens, in navigation order.
const SETTINGS_LINKS: [(&str, &str); 4] = [
    ("/settings/security/authentication", "Authentication"),
    ("/settings/security/sso", "Single sign-on (OIDC)"),
    ("/settings/security/sessions", "Sessions"),
    ("/settings/security/audit", "Audit log"),
];

/// The settings layout: a header bar with the signed-in user, a left navigation of the security
/// screens (the current one marked for assistive technology), and the page's own content.
#[component]
pub fn SettingsFrame(#[prop(into)] title: String, #[prop(into)] intro: String, children: Children) -> impl IntoView {
    let path = use_location().pathname.get_untracked();
    let current = path.trim_end_matches('/').to_owned();
    let viewer = Resource::new(|| (), |_| get_viewer());
    view! {
        <div class="settings-shell">
            <header class="topbar">
                <a href="/" class="brand"><Logo/><span>"Pulse"</span></a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        viewer.await.ok().flatten().map(|viewer| view! { <SignedInAs viewer=viewer/> })
                    })}
                </Suspense>
            </header>
            <div class="settings-layout">
                <nav class="settings-nav" aria-label="Settings">
                    <a href="/" class="back-link">"← Back to Pulse"</a>
                    <p class="nav-heading" id="settings-nav-security">"Security"</p>
                    <ul aria-labelledby="settings-nav-security">
                        {SETTINGS_LINKS
                            .into_iter()
                            .map(|(href, label)| {
                                let here = href == current;
                                view! {
                                    <li>
                                        <a href=href class:current=here aria-current=here.then_some("page")>{label}</a>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </nav>
                <div class="settings-page">
                    <header class="settings-header">
                        <h1>{title}</h1>
                        <p class="muted">{intro}</p>
                    </header>
                    {children()}
                </div>
            </div>
        </div>
    }
}

/// "alice · Administrator" and a plain-form Sign out button (works without JavaScript).
#[component]
fn SignedInAs(viewer: Viewer) -> impl IntoView {
    let role = if viewer.role == "admin" {
        "Administrator"
    } else {
        "Viewer"
    };
    view! {
        <div class="topbar-user">
            <span class="signed-in-as" data-testid="frame-user">
                <strong>{viewer.username}</strong>" · "<span data-testid="frame-role">{role}</span>
            </span>
            <form method="post" action="/logout">
                <button type="submit" class="button button-secondary button-small">"Sign out"</button>
            </form>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_796_418_898), "2026-12-04 21:14 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn every_sso_error_code_has_its_own_sentence() {
        let codes = [
            "idp_error",
            "invalid_state",
            "exchange_failed",
            "invalid_id_token",
            "issuer_mismatch",
            "audience_mismatch",
            "token_expired",
            "invalid_signature",
            "nonce_mismatch",
            "email_restricted",
            "domain_restricted",
            "group_restricted",
            "provider_unavailable",
            "not_configured",
        ];
        let fallback = oidc_error_message("something-else");
        let mut seen = std::collections::HashSet::new();
        for code in codes {
            let sentence = oidc_error_message(code);
            assert_ne!(sentence, fallback, "{code} has no sentence");
            assert!(seen.insert(sentence), "{code} shares its sentence");
        }
    }
}
