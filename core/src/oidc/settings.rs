//! Single sign-on settings: what is stored in SQLite, what environment variables override (per
//! field), and the validation both must pass.
use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use url::Url;

use crate::{crypto::Cipher, setup::FieldError, store::settings};

const STORED_KEY: &str = "oidc.settings";
const SECRET_KEY: &str = "oidc.client_secret";

pub const DEFAULT_SCOPES: &str = "openid profile email";
pub const DEFAULT_DISPLAY_NAME: &str = "Single Sign-On";

/// Every SSO setting. The client secret is kept apart: it is encrypted at rest and never leaves
/// the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcSettings {
    pub enabled: bool,
    pub issuer_url: String,
    pub client_id: String,
    pub redirect_url: String,
    pub logout_url: String,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub email_claim: String,
    pub groups_claim: String,
    pub allowed_groups: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub allowed_emails: Vec<String>,
    pub admin_groups: Vec<String>,
    pub display_name: String,
    pub prompt: String,
    pub ca_bundle: String,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            enabled: false,
            issuer_url: String::new(),
            client_id: String::new(),
            redirect_url: String::new(),
            logout_url: String::new(),
            scopes: split_list(DEFAULT_SCOPES),
            username_claim: "preferred_username".into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            allowed_groups: Vec::new(),
            allowed_domains: Vec::new(),
            allowed_emails: Vec::new(),
            admin_groups: Vec::new(),
            display_name: DEFAULT_DISPLAY_NAME.into(),
            prompt: String::new(),
            ca_bundle: String::new(),
        }
    }
}

/// Environment variables and the field each one manages.
pub const ENV_FIELDS: &[(&str, &str)] = &[
    ("OIDC_ENABLED", "enabled"),
    ("OIDC_ISSUER_URL", "issuer_url"),
    ("OIDC_CLIENT_ID", "client_id"),
    ("OIDC_CLIENT_SECRET", "client_secret"),
    ("OIDC_REDIRECT_URL", "redirect_url"),
    ("OIDC_LOGOUT_URL", "logout_url"),
    ("OIDC_SCOPES", "scopes"),
    ("OIDC_USERNAME_CLAIM", "username_claim"),
    ("OIDC_EMAIL_CLAIM", "email_claim"),
    ("OIDC_GROUPS_CLAIM", "groups_claim"),
    ("OIDC_ALLOWED_GROUPS", "allowed_groups"),
    ("OIDC_ALLOWED_DOMAINS", "allowed_domains"),
    ("OIDC_ALLOWED_EMAILS", "allowed_emails"),
    ("OIDC_ADMIN_GROUPS", "admin_groups"),
    ("OIDC_DISPLAY_NAME", "display_name"),
    ("OIDC_PROMPT", "prompt"),
    ("OIDC_CA_BUNDLE", "ca_bundle"),
];

/// The OIDC_* variables present at start-up (values kept as given; the secret as a secret).
#[derive(Debug, Clone, Default)]
pub struct OidcEnv {
    values: BTreeMap<&'static str, String>,
    client_secret: Option<SecretString>,
}

impl OidcEnv {
    /// Collects the OIDC_* variables from `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut env = OidcEnv::default();
        for (variable, _) in ENV_FIELDS {
            if let Some(value) = lookup(variable) {
                if *variable == "OIDC_CLIENT_SECRET" {
                    env.client_secret = Some(SecretString::from(value));
                } else {
                    env.values.insert(variable, value);
                }
            }
        }
        env
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.client_secret.is_none()
    }

    /// The variable that manages `field`, if one is set.
    pub fn managing(&self, field: &str) -> Option<&'static str> {
        ENV_FIELDS
            .iter()
            .find(|(variable, f)| {
                *f == field
                    && (self.values.contains_key(variable)
                        || (*variable == "OIDC_CLIENT_SECRET" && self.client_secret.is_some()))
            })
            .map(|(variable, _)| *variable)
    }

    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// Overlays the environment on stored settings. Unparseable booleans are reported.
    pub fn apply(&self, settings: &mut OidcSettings) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (variable, value) in &self.values {
            let value = value.trim().to_owned();
            match *variable {
                "OIDC_ENABLED" => match crate::config::parse_bool(variable, &value) {
                    Ok(enabled) => settings.enabled = enabled,
                    Err(err) => errors.push(FieldError {
                        field: "enabled",
                        message: err.to_string(),
                    }),
                },
                "OIDC_ISSUER_URL" => settings.issuer_url = value,
                "OIDC_CLIENT_ID" => settings.client_id = value,
                "OIDC_REDIRECT_URL" => settings.redirect_url = value,
                "OIDC_LOGOUT_URL" => settings.logout_url = value,
                "OIDC_SCOPES" => settings.scopes = split_list(&value),
                "OIDC_USERNAME_CLAIM" => settings.username_claim = value,
                "OIDC_EMAIL_CLAIM" => settings.email_claim = value,
                "OIDC_GROUPS_CLAIM" => settings.groups_claim = value,
                "OIDC_ALLOWED_GROUPS" => settings.allowed_groups = split_names(&value),
                "OIDC_ALLOWED_DOMAINS" => settings.allowed_domains = split_names(&value),
                "OIDC_ALLOWED_EMAILS" => settings.allowed_emails = split_names(&value),
                "OIDC_ADMIN_GROUPS" => settings.admin_groups = split_names(&value),
                "OIDC_DISPLAY_NAME" => settings.display_name = value,
                "OIDC_PROMPT" => settings.prompt = value,
                "OIDC_CA_BUNDLE" => settings.ca_bundle = value,
                _ => {}
            }
        }
        errors
    }
}

/// Splits a list given with commas and/or whitespace.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Splits a list of names from an environment variable: with a comma or a line break in it, only
/// those separate (so a group such as "authentik Admins" keeps its space); otherwise whitespace
/// does, as in `OIDC_ALLOWED_GROUPS="admins ops"`.
pub fn split_names(value: &str) -> Vec<String> {
    if value.contains([',', '\n', '\r']) {
        split_lines(value)
    } else {
        split_list(value)
    }
}

/// Loopback hosts may use plain http (a provider on the same machine); everything else https.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn check_url(field: &'static str, label: &str, value: &str, errors: &mut Vec<FieldError>) {
    match Url::parse(value) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => {}
        Ok(url) if url.scheme() == "http" && is_loopback_host(&url) => {}
        Ok(url) if url.scheme() == "http" => errors.push(FieldError {
            field,
            message: format!("{label} must use https:// (plain http is allowed only for localhost)."),
        }),
        _ => errors.push(FieldError {
            field,
            message: format!("{label} must be a full URL such as https://auth.example.com/…"),
        }),
    }
}

fn check_claim_path(field: &'static str, label: &str, value: &str, errors: &mut Vec<FieldError>) {
    let valid = !value.is_empty()
        && value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'))
        });
    if !valid {
        errors.push(FieldError {
            field,
            message: format!("{label} must be a claim name or a dot path such as realm_access.roles."),
        });
    }
}

impl OidcSettings {
    /// Checks what must hold before SSO can be enabled; an empty list means valid. Disabled
    /// settings are not checked (they are not in force).
    pub fn validate(&self) -> Vec<FieldError> {
        if !self.enabled {
            return Vec::new();
        }
        self.check(true)
    }

    /// Checks every field that holds a value; with `require_connection`, also that the issuer and
    /// client ID are there. The admin screen saves nothing while this finds a problem.
    pub fn check(&self, require_connection: bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.issuer_url.is_empty() {
            if require_connection {
                errors.push(FieldError {
                    field: "issuer_url",
                    message: "The issuer URL is required.".into(),
                });
            }
        } else {
            check_url("issuer_url", "The issuer URL", &self.issuer_url, &mut errors);
        }
        if require_connection && self.client_id.trim().is_empty() {
            errors.push(FieldError {
                field: "client_id",
                message: "The client ID is required.".into(),
            });
        }
        if !self.redirect_url.is_empty() {
            match Url::parse(&self.redirect_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => errors.push(FieldError {
                    field: "redirect_url",
                    message: "The redirect URL must be a full URL ending in /api/oidc/callback.".into(),
                }),
            }
        }
        if !self.logout_url.is_empty() {
            check_url("logout_url", "The end session URL", &self.logout_url, &mut errors);
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            errors.push(FieldError {
                field: "scopes",
                message: "The scopes must include openid.".into(),
            });
        } else if let Some(bad) = self.scopes.iter().find(|s| !is_scope_token(s)) {
            errors.push(FieldError {
                field: "scopes",
                message: format!("\"{bad}\" is not a valid scope: scopes are separated by spaces and cannot contain quotes or backslashes."),
            });
        }
        check_claim_path(
            "username_claim",
            "The username claim",
            &self.username_claim,
            &mut errors,
        );
        check_claim_path("email_claim", "The email claim", &self.email_claim, &mut errors);
        check_claim_path("groups_claim", "The groups claim", &self.groups_claim, &mut errors);
        check_list(
            "allowed_groups",
            &self.allowed_groups,
            is_group_name,
            "Allowed groups",
            "group names",
            &mut errors,
        );
        check_list(
            "admin_groups",
            &self.admin_groups,
            is_group_name,
            "Admin groups",
            "group names",
            &mut errors,
        );
        check_list(
            "allowed_domains",
            &self.allowed_domains,
            is_domain,
            "Allowed domains",
            "domain names such as example.com",
            &mut errors,
        );
        check_list(
            "allowed_emails",
            &self.allowed_emails,
            is_email,
            "Allowed emails",
            "email addresses such as alice@example.com",
            &mut errors,
        );
        if !matches!(
            self.prompt.as_str(),
            "" | "none" | "consent" | "login" | "select_account"
        ) {
            errors.push(FieldError {
                field: "prompt",
                message: "The prompt must be empty, none, consent, login or select_account.".into(),
            });
        }
        errors
    }

    /// The prompt sent to the provider: the configured one, else `consent` when refresh tokens
    /// are asked for (spec-following providers issue none without it), else none at all.
    pub fn effective_prompt(&self) -> Option<&str> {
        match self.prompt.as_str() {
            "" if self.scopes.iter().any(|s| s == "offline_access") => Some("consent"),
            "" => None,
            other => Some(other),
        }
    }
}

/// A scope token of RFC 6749 §3.3: printable ASCII without space, `"` or `\`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
}

fn is_group_name(item: &str) -> bool {
    !item.chars().any(char::is_control)
}

fn is_domain(item: &str) -> bool {
    let labels: Vec<&str> = item.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn is_email(item: &str) -> bool {
    match item.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !local.contains(char::is_whitespace) && is_domain(domain),
        None => false,
    }
}

fn check_list(
    field: &'static str,
    items: &[String],
    valid: fn(&str) -> bool,
    label: &str,
    expected: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(bad) = items.iter().find(|item| !valid(item)) {
        errors.push(FieldError {
            field,
            message: format!("{label} must be {expected}, one per line; \"{bad}\" is not."),
        });
    }
}

/// Splits a list typed in the admin screen: one item per line (commas also separate). Unlike
/// [`split_list`], spaces stay inside an item, so a group such as "authentik Admins" survives.
pub fn split_lines(value: &str) -> Vec<String> {
    value
        .split(['\n', '\r', ','])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The names of the editable text fields, in screen order.
pub const TEXT_FIELDS: &[&str] = &[
    "issuer_url",
    "client_id",
    "redirect_url",
    "logout_url",
    "scopes",
    "display_name",
    "username_claim",
    "email_claim",
    "groups_claim",
    "allowed_groups",
    "allowed_domains",
    "allowed_emails",
    "admin_groups",
    "prompt",
    "ca_bundle",
];

impl OidcSettings {
    /// A text field as the admin screen shows it (lists one item per line, scopes space-separated).
    pub fn field_text(&self, field: &str) -> Option<String> {
        let lines = |items: &[String]| items.join("\n");
        Some(match field {
            "issuer_url" => self.issuer_url.clone(),
            "client_id" => self.client_id.clone(),
            "redirect_url" => self.redirect_url.clone(),
            "logout_url" => self.logout_url.clone(),
            "scopes" => self.scopes.join(" "),
            "display_name" => self.display_name.clone(),
            "username_claim" => self.username_claim.clone(),
            "email_claim" => self.email_claim.clone(),
            "groups_claim" => self.groups_claim.clone(),
            "allowed_groups" => lines(&self.allowed_groups),
            "allowed_domains" => lines(&self.allowed_domains),
            "allowed_emails" => lines(&self.allowed_emails),
            "admin_groups" => lines(&self.admin_groups),
            "prompt" => self.prompt.clone(),
            "ca_bundle" => self.ca_bundle.clone(),
            _ => return None,
        })
    }

    /// Sets a text field from what the admin typed; `false` for an unknown field. A blank button
    /// label means the default one.
    pub fn set_field_text(&mut self, field: &str, value: &str) -> bool {
        let value = value.trim();
        match field {
            "issuer_url" => self.issuer_url = value.to_owned(),
            "client_id" => self.client_id = value.to_owned(),
            "redirect_url" => self.redirect_url = value.to_owned(),
            "logout_url" => self.logout_url = value.to_owned(),
            "scopes" => self.scopes = split_list(value),
            "display_name" if value.is_empty() => self.display_name = DEFAULT_DISPLAY_NAME.to_owned(),
            "display_name" => self.display_name = value.to_owned(),
            "username_claim" => self.username_claim = value.to_owned(),
            "email_claim" => self.email_claim = value.to_owned(),
            "groups_claim" => self.groups_claim = value.to_owned(),
            "allowed_groups" => self.allowed_groups = split_lines(value),
            "allowed_domains" => {
                self.allowed_domains = split_lines(value)
                    .into_iter()
                    .map(|d| d.trim_start_matches('@').to_owned())
                    .collect()
            }
            "allowed_emails" => self.allowed_emails = split_lines(value),
            "admin_groups" => self.admin_groups = split_lines(value),
            "prompt" => self.prompt = value.to_owned(),
            "ca_bundle" => self.ca_bundle = value.to_owned(),
            _ => return false,
        }
        true
    }
}

pub async fn load_stored(db: &SqlitePool) -> Result<OidcSettings, sqlx::Error> {
    Ok(settings::get(db, STORED_KEY)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

pub async fn save_stored<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    value: &OidcSettings,
    now: time::OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(value).unwrap_or_default();
    settings::set(db, STORED_KEY, &json, now).await
}

pub async fn load_client_secret(db: &SqlitePool, cipher: &Cipher) -> Result<Option<SecretString>, sqlx::Error> {
    let Some(sealed) = settings::get(db, SECRET_KEY).await? else {
        return Ok(None);
    };
    match cipher.open_string(&sealed, SECRET_KEY.as_bytes()) {
        Ok(secret) if !secret.expose_secret().is_empty() => Ok(Some(secret)),
        Ok(_) => Ok(None),
        Err(err) => {
            tracing::error!(error = %err, "the stored client secret cannot be decrypted; enter it again");
            Ok(None)
        }
    }
}

pub async fn save_client_secret<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    cipher: &Cipher,
    secret: Option<&SecretString>,
    now: time::OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let plaintext = secret.map(|s| s.expose_secret().as_bytes()).unwrap_or_default();
    settings::set(db, SECRET_KEY, &cipher.seal(plaintext, SECRET_KEY.as_bytes()), now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> OidcSettings {
        OidcSettings {
            enabled: true,
            issuer_url: "https://auth.example.com/application/o/pulse/".into(),
            client_id: "pulse".into(),
            ..OidcSettings::default()
        }
    }

    #[test]
    fn https_is_required_except_for_loopback() {
        let mut s = enabled();
        assert!(s.validate().is_empty());
        s.issuer_url = "http://auth.example.com".into();
        assert_eq!(s.validate()[0].field, "issuer_url");
        for loopback in ["http://127.0.0.1:9000", "http://localhost:9000/x", "http://[::1]:9000"] {
            s.issuer_url = loopback.into();
            assert!(s.validate().is_empty(), "{loopback}");
        }
    }

    #[test]
    fn scopes_need_openid_and_claim_paths_must_be_well_formed() {
        let mut s = enabled();
        s.scopes = split_list("profile, email");
        s.groups_claim = "realm_access..roles".into();
        s.prompt = "sometimes".into();
        let fields: Vec<_> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["scopes", "groups_claim", "prompt"]);
        s = enabled();
        s.groups_claim = "resource_access.pulse.roles".into();
        assert!(s.validate().is_empty());
    }

    #[test]
    fn env_overrides_per_field_and_lists_accept_commas_and_spaces() {
        let env = OidcEnv::from_lookup(|name| match name {
            "OIDC_ENABLED" => Some("true".into()),
            "OIDC_ALLOWED_GROUPS" => Some("admins, ops\nsre".into()),
            "OIDC_CLIENT_SECRET" => Some("s3cret".into()),
            _ => None,
        });
        let mut s = OidcSettings {
            client_id: "from-db".into(),
            ..OidcSettings::default()
        };
        assert!(env.apply(&mut s).is_empty());
        assert!(s.enabled);
        assert_eq!(s.allowed_groups, ["admins", "ops", "sre"]);
        assert_eq!(
            s.client_id, "from-db",
            "fields without a variable keep the stored value"
        );
        assert_eq!(env.managing("allowed_groups"), Some("OIDC_ALLOWED_GROUPS"));
        assert_eq!(env.managing("client_secret"), Some("OIDC_CLIENT_SECRET"));
        assert_eq!(env.managing("client_id"), None);
        assert!(!format!("{env:?}").contains("s3cret"));
    }

    #[test]
    fn names_with_spaces_survive_when_commas_separate_them() {
        assert_eq!(
            split_names("authentik Admins, pulse-users"),
            ["authentik Admins", "pulse-users"]
        );
        assert_eq!(split_names("admins ops"), ["admins", "ops"]);
        assert_eq!(split_names("admins\nops"), ["admins", "ops"]);
    }

    #[test]
    fn offline_access_defaults_the_prompt_to_consent() {
        let mut s = enabled();
        assert_eq!(s.effective_prompt(), None);
        s.scopes.push("offline_access".into());
        assert_eq!(s.effective_prompt(), Some("consent"));
        s.prompt = "login".into();
        assert_eq!(s.effective_prompt(), Some("login"));
    }
}
