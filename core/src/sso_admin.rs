//! Settings › Security › Single sign-on as an administrator edits it: merging what a form sent
//! into the stored settings (fields not sent are kept; fields set by environment variables cannot
//! change), validating before anything is written, saving and applying at once, running Test
//! connection against unsaved values, and remembering which configuration last passed it.
use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{
    auth,
    oidc::{
        probe::{self, ConnectionReport},
        provider,
        settings::{self, OidcEnv, OidcSettings, TEXT_FIELDS},
    },
    setup::FieldError,
    store::settings as kv,
    Core,
};

/// Where the record of the last passed connection test is kept (sealed: it holds the secret that
/// was tested, so a changed secret is not taken as tested).
pub const VERIFIED_KEY: &str = "oidc.verified";

/// What an admin sent: only the fields present in the form.
#[derive(Debug, Default, Clone)]
pub struct SsoInput {
    pub enabled: Option<bool>,
    /// Field name (one of [`TEXT_FIELDS`]) → what was typed. Unknown names are ignored.
    pub text: BTreeMap<String, String>,
    /// A newly typed secret; `None` keeps the stored one.
    pub client_secret: Option<SecretString>,
    pub clear_client_secret: bool,
}

#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    Set(SecretString),
    Clear,
}

/// The result of applying an input to the stored settings.
#[derive(Debug, Clone)]
pub struct Merged {
    /// What would be stored.
    pub stored: OidcSettings,
    /// What would be in force (stored, overridden by the environment).
    pub effective: OidcSettings,
    /// Names of the fields whose stored value changes (`client_secret` for the secret).
    pub changed: Vec<&'static str>,
    pub secret: SecretChange,
}

fn managed_message(variable: &str) -> String {
    format!("This field is managed by the {variable} environment variable; change it there and restart Pulse.")
}

/// Applies `input` to `stored`. Errors name their field; nothing is merged when there is one.
/// With `require_connection`, the issuer and client ID must be present even while SSO is off
/// (Test connection needs them).
pub fn merge(
    stored: &OidcSettings,
    env: &OidcEnv,
    input: &SsoInput,
    require_connection: bool,
) -> Result<Merged, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut effective_before = stored.clone();
    let _ = env.apply(&mut effective_before);
    let mut next = stored.clone();

    if let Some(enabled) = input.enabled {
        match env.managing("enabled") {
            Some(variable) if enabled != effective_before.enabled => errors.push(FieldError {
                field: "enabled",
                message: managed_message(variable),
            }),
            Some(_) => {}
            None => next.enabled = enabled,
        }
    }
    for (name, value) in &input.text {
        let Some(field) = TEXT_FIELDS.iter().copied().find(|f| f == name) else {
            continue;
        };
        match env.managing(field) {
            Some(variable) => {
                let mut probe = effective_before.clone();
                probe.set_field_text(field, value);
                if probe.field_text(field) != effective_before.field_text(field) {
                    errors.push(FieldError {
                        field,
                        message: managed_message(variable),
                    });
                }
            }
            None => {
                next.set_field_text(field, value);
            }
        }
    }
    let secret = match (&input.client_secret, input.clear_client_secret) {
        (Some(_), _) | (None, true) if env.managing("client_secret").is_some() => {
            errors.push(FieldError {
                field: "client_secret",
                message: managed_message("OIDC_CLIENT_SECRET"),
            });
            SecretChange::Keep
        }
        (Some(secret), _) => SecretChange::Set(secret.clone()),
        (None, true) => SecretChange::Clear,
        (None, false) => SecretChange::Keep,
    };

    let mut effective = next.clone();
    let _ = env.apply(&mut effective);
    // A bad value set by an environment variable is not the admin's input: it is reported on
    // the screen (and in the log) but does not block saving the other fields.
    errors.extend(
        effective
            .check(require_connection || effective.enabled)
            .into_iter()
            .filter(|error| env.managing(error.field).is_none()),
    );
    if env.managing("ca_bundle").is_none() {
        let path = effective.ca_bundle.trim();
        if !path.is_empty() {
            if let Err(message) = provider::http_client(Some(std::path::Path::new(path))) {
                errors.push(FieldError {
                    field: "ca_bundle",
                    message: format!("{message}."),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut changed: Vec<&'static str> = Vec::new();
    if next.enabled != stored.enabled {
        changed.push("enabled");
    }
    changed.extend(
        TEXT_FIELDS
            .iter()
            .copied()
            .filter(|field| next.field_text(field) != stored.field_text(field)),
    );
    if !matches!(secret, SecretChange::Keep) {
        changed.push("client_secret");
    }
    Ok(Merged {
        stored: next,
        effective,
        changed,
        secret,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("invalid settings")]
    Invalid(Vec<FieldError>),
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Validates and saves `input`, then applies it at once (cached discovery and keys for the old
/// settings are dropped). Audited with the names of the changed fields, never their values.
/// Returns the changed fields (empty: nothing changed, nothing written).
pub async fn save(core: &Core, actor: &str, ip: &str, input: &SsoInput) -> Result<Vec<&'static str>, SaveError> {
    let stored = settings::load_stored(&core.db).await?;
    let merged = merge(&stored, core.oidc.env(), input, false).map_err(SaveError::Invalid)?;
    if merged.changed.is_empty() {
        return Ok(Vec::new());
    }
    let now = core.clock.now();
    let mut tx = core.db.begin().await?;
    settings::save_stored(&mut *tx, &merged.stored, now).await?;
    match &merged.secret {
        SecretChange::Keep => {}
        SecretChange::Set(secret) => settings::save_client_secret(&mut *tx, &core.cipher, Some(secret), now).await?,
        SecretChange::Clear => settings::save_client_secret(&mut *tx, &core.cipher, None, now).await?,
    }
    tx.commit().await?;
    core.oidc.reload(&core.db, &core.cipher).await?;
    let fields = merged.changed.join(", ");
    tracing::info!(by = actor, %fields, "single sign-on settings saved and applied");
    auth::record_settings_change(core, actor, ip, &format!("single sign-on settings changed: {fields}")).await;
    Ok(merged.changed)
}

/// What a passed connection test proved, sealed at rest.
#[derive(Debug, Serialize, Deserialize)]
struct Verified {
    issuer_url: String,
    client_id: String,
    client_secret: Option<String>,
    at: i64,
}

/// Runs Test connection with the values of `input` over the stored ones (nothing is saved).
/// The redirect URI tested is the one sign-in would send for `base_url`. A pass is remembered
/// for the tested issuer, client ID and secret (see [`verified_at`]).
pub async fn test_connection(
    core: &Core,
    actor: &str,
    ip: &str,
    input: &SsoInput,
    base_url: &str,
) -> Result<ConnectionReport, SaveError> {
    let stored = settings::load_stored(&core.db).await?;
    let merged = merge(&stored, core.oidc.env(), input, true).map_err(SaveError::Invalid)?;
    let secret = match merged.secret {
        SecretChange::Set(secret) => Some(secret),
        SecretChange::Clear => None,
        SecretChange::Keep => match core.oidc.env().client_secret() {
            Some(secret) => Some(secret.clone()),
            None => settings::load_client_secret(&core.db, &core.cipher).await?,
        },
    };
    let candidate = merged.effective;
    let ca_bundle = Some(candidate.ca_bundle.trim())
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    let http = provider::http_client(ca_bundle.as_deref()).map_err(|message| {
        SaveError::Invalid(vec![FieldError {
            field: "ca_bundle",
            message,
        }])
    })?;
    let redirect_uri = redirect_uri_for(&candidate, base_url);
    let target = probe::Target {
        settings: &candidate,
        client_secret: secret.as_ref(),
        redirect_uri: &redirect_uri,
    };
    let report = probe::test_connection(&http, &target, probe::TEST_TIMEOUT).await;
    let now = core.clock.now();
    let outcome = if report.passed() {
        let record = Verified {
            issuer_url: candidate.issuer_url.clone(),
            client_id: candidate.client_id.clone(),
            client_secret: secret.as_ref().map(|s| s.expose_secret().to_owned()),
            at: now.unix_timestamp(),
        };
        let json = serde_json::to_vec(&record).unwrap_or_default();
        kv::set(
            &core.db,
            VERIFIED_KEY,
            &core.cipher.seal(&json, VERIFIED_KEY.as_bytes()),
            now,
        )
        .await?;
        "passed"
    } else {
        "failed"
    };
    let failed: Vec<&str> = report
        .lines
        .iter()
        .filter(|line| line.status == probe::CheckStatus::Failed)
        .map(|line| line.id)
        .collect();
    tracing::info!(by = actor, issuer = %candidate.issuer_url, outcome, failed = ?failed, "single sign-on connection test");
    auth::record_settings_change(
        core,
        actor,
        ip,
        &format!(
            "single sign-on connection test {outcome}{}",
            if failed.is_empty() {
                String::new()
            } else {
                format!(": {}", failed.join(", "))
            }
        ),
    )
    .await;
    Ok(report)
}

/// When the configuration in force (issuer, client ID and secret) last passed Test connection.
pub async fn verified_at(core: &Core) -> Result<Option<i64>, sqlx::Error> {
    let Some(active) = core.oidc.active() else {
        return Ok(None);
    };
    let Some(sealed) = kv::get(&core.db, VERIFIED_KEY).await? else {
        return Ok(None);
    };
    let Ok(plain) = core.cipher.open(&sealed, VERIFIED_KEY.as_bytes()) else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<Verified>(&plain) else {
        return Ok(None);
    };
    let same_secret = record.client_secret.as_deref() == active.client_secret.as_ref().map(|s| s.expose_secret());
    Ok((record.issuer_url == active.settings.issuer_url
        && record.client_id == active.settings.client_id
        && same_secret)
        .then_some(record.at))
}

/// The redirect URI sign-in sends: the configured one, else `<base>/api/oidc/callback`.
pub fn redirect_uri_for(settings: &OidcSettings, base_url: &str) -> String {
    if settings.redirect_url.is_empty() {
        format!("{}/api/oidc/callback", base_url.trim_end_matches('/'))
    } else {
        settings.redirect_url.clone()
    }
}

/// One field of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldView {
    pub name: &'static str,
    pub value: String,
    pub managed_by: Option<&'static str>,
}

/// Everything the SSO screen shows (never the secret itself).
#[derive(Debug, Clone)]
pub struct SsoView {
    pub enabled: bool,
    pub enabled_managed_by: Option<&'static str>,
    pub fields: Vec<FieldView>,
    pub secret_set: bool,
    pub secret_managed_by: Option<&'static str>,
    pub redirect_url_sent: String,
    pub redirect_url_source: &'static str,
    pub redirect_url_warning: Option<String>,
    pub active: bool,
    pub problems: Vec<FieldError>,
    pub verified_at: Option<i64>,
}

/// The screen's data. `base_url` is how this request reached Pulse (the public URL when set).
pub async fn view(core: &Core, base_url: &str) -> Result<SsoView, sqlx::Error> {
    let env = core.oidc.env();
    let effective = core.oidc.effective_settings(&core.db).await?;
    let secret_set = match env.client_secret() {
        Some(_) => true,
        None => settings::load_client_secret(&core.db, &core.cipher).await?.is_some(),
    };
    let redirect_url_sent = redirect_uri_for(&effective, base_url);
    let redirect_url_source = if !effective.redirect_url.is_empty() {
        "configured"
    } else if core.config.public_url.is_some() {
        "public_url"
    } else {
        "request"
    };
    let redirect_url_warning = redirect_warning(
        &redirect_url_sent,
        core.config.public_url_is_https() || base_url.starts_with("https://"),
    );
    Ok(SsoView {
        enabled: effective.enabled,
        enabled_managed_by: env.managing("enabled"),
        fields: TEXT_FIELDS
            .iter()
            .map(|name| FieldView {
                name,
                value: effective.field_text(name).unwrap_or_default(),
                managed_by: env.managing(name),
            })
            .collect(),
        secret_set,
        secret_managed_by: env.managing("client_secret"),
        redirect_url_sent,
        redirect_url_source,
        redirect_url_warning,
        active: core.oidc.active().is_some(),
        problems: core.oidc.problems(),
        verified_at: verified_at(core).await?,
    })
}

fn redirect_warning(sent: &str, reached_over_https: bool) -> Option<String> {
    let url = url::Url::parse(sent).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    if reached_over_https {
        Some("Pulse is reached over https, but this redirect URL uses http://. Set PULSE_PUBLIC_URL to Pulse's https address (or correct the Redirect URL), otherwise the provider refuses it or sends the sign-in over plain http.".into())
    } else if !settings::is_loopback_host(&url) {
        Some("This redirect URL uses plain http://. Most providers accept that only for localhost; serve Pulse over https and set PULSE_PUBLIC_URL.".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&str, &str)]) -> SsoInput {
        SsoInput {
            text: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..SsoInput::default()
        }
    }

    #[test]
    fn fields_not_sent_keep_their_stored_values() -> Result<(), Vec<FieldError>> {
        let stored = OidcSettings {
            issuer_url: "https://auth.example.com/".into(),
            client_id: "pulse".into(),
            allowed_groups: vec!["authentik Admins".into()],
            ..OidcSettings::default()
        };
        let merged = merge(&stored, &OidcEnv::default(), &input(&[("client_id", "pulse-2")]), false)?;
        assert_eq!(merged.stored.client_id, "pulse-2");
        assert_eq!(merged.stored.issuer_url, "https://auth.example.com/");
        assert_eq!(merged.stored.allowed_groups, ["authentik Admins"]);
        assert_eq!(merged.changed, ["client_id"]);
        Ok(())
    }

    #[test]
    fn one_invalid_field_rejects_the_whole_input_with_an_error_per_field() {
        let errors = merge(
            &OidcSettings::default(),
            &OidcEnv::default(),
            &input(&[
                ("issuer_url", "auth.example.com"),
                ("scopes", "profile email"),
                ("groups_claim", "a..b"),
                ("allowed_domains", "example.com\nnot a domain"),
                ("allowed_emails", "alice"),
                ("client_id", "fine"),
            ]),
            false,
        )
        .err()
        .unwrap_or_default();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "issuer_url",
                "scopes",
                "groups_claim",
                "allowed_domains",
                "allowed_emails"
            ]
        );
    }

    #[test]
    fn an_environment_managed_field_cannot_change_but_may_be_sent_unchanged() {
        let env = OidcEnv::from_lookup(|name| (name == "OIDC_ISSUER_URL").then(|| "https://env.example.com".into()));
        let stored = OidcSettings::default();
        let refused = merge(
            &stored,
            &env,
            &input(&[("issuer_url", "https://other.example.com")]),
            false,
        );
        let errors = refused.err().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "issuer_url");
        assert!(errors[0].message.contains("OIDC_ISSUER_URL"));
        let same = merge(
            &stored,
            &env,
            &input(&[("issuer_url", "https://env.example.com")]),
            false,
        );
        assert!(same.is_ok_and(|m| m.changed.is_empty()));
    }

    #[test]
    fn the_secret_is_kept_unless_replaced_or_cleared() -> Result<(), Vec<FieldError>> {
        let stored = OidcSettings::default();
        let env = OidcEnv::default();
        let keep = merge(&stored, &env, &SsoInput::default(), false)?;
        assert!(matches!(keep.secret, SecretChange::Keep) && keep.changed.is_empty());
        let set = SsoInput {
            client_secret: Some(SecretString::from("new")),
            ..SsoInput::default()
        };
        assert_eq!(merge(&stored, &env, &set, false)?.changed, ["client_secret"]);
        let env_secret = OidcEnv::from_lookup(|name| (name == "OIDC_CLIENT_SECRET").then(|| "from-env".into()));
        let clear = SsoInput {
            clear_client_secret: true,
            ..SsoInput::default()
        };
        assert!(merge(&stored, &env_secret, &clear, false).is_err());
        Ok(())
    }

    #[test]
    fn test_connection_needs_an_issuer_and_client_even_while_disabled() {
        let errors = merge(
            &OidcSettings::default(),
            &OidcEnv::default(),
            &SsoInput::default(),
            true,
        )
        .err()
        .unwrap_or_default();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["issuer_url", "client_id"]);
    }

    #[test]
    fn an_http_redirect_behind_https_is_called_out() {
        assert!(redirect_warning("http://pulse.example.com/api/oidc/callback", true).is_some());
        assert!(redirect_warning("http://pulse.example.com/api/oidc/callback", false).is_some());
        assert!(redirect_warning("http://localhost:7655/api/oidc/callback", false).is_none());
        assert!(redirect_warning("https://pulse.example.com/api/oidc/callback", true).is_none());
    }
}
