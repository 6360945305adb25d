//! Typed, validated configuration. The CLI layer collects raw values (flags or environment
//! variables); this module turns them into a `Config` or into messages that say what to fix.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use secrecy::SecretString;
use url::Url;

/// Raw values as given by the operator; every field names its environment variable in errors.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    pub data_dir: PathBuf,
    pub listen: String,
    pub public_url: Option<String>,
    pub trusted_proxy_cidrs: Option<String>,
    pub auth_user: Option<String>,
    pub auth_pass: Option<SecretString>,
    pub encryption_key: Option<SecretString>,
    pub hide_local_login: Option<String>,
    pub oidc_env: crate::oidc::settings::OidcEnv,
}

#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub public_url: Option<Url>,
    pub trusted_proxies: Vec<IpNet>,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    pub encryption_key: Option<SecretString>,
    /// `Some` when `PULSE_AUTH_HIDE_LOCAL_LOGIN` is set; it then overrides the stored toggle.
    pub hide_local_login: Option<bool>,
    /// The OIDC_* variables; invalid ones disable SSO with a logged reason, they never stop Pulse.
    pub oidc_env: crate::oidc::settings::OidcEnv,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Validates everything and reports every problem at once, so one restart fixes them all.
    pub fn from_raw(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let listen = raw
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| {
                problem(
                    "PULSE_LISTEN",
                    format!(
                        "'{}' is not an address and port; use e.g. 127.0.0.1:7655 or 0.0.0.0:7655",
                        raw.listen
                    ),
                )
            })
            .map_err(|e| errors.push(e))
            .ok();
        let public_url = raw
            .public_url
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(parse_public_url)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let trusted_proxies = raw
            .trusted_proxy_cidrs
            .as_deref()
            .map(parse_cidrs)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten()
            .unwrap_or_default();
        let hide_local_login = raw
            .hide_local_login
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|value| parse_bool("PULSE_AUTH_HIDE_LOCAL_LOGIN", value))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let bootstrap_admin = match (raw.auth_user.filter(|u| !u.trim().is_empty()), raw.auth_pass) {
            (Some(username), Some(password)) => match crate::setup::check_username(&username) {
                Ok(()) => match crate::password::check_new_password(&password) {
                    Ok(()) => Some(BootstrapAdmin {
                        username: username.trim().to_owned(),
                        password,
                    }),
                    Err(err) => {
                        errors.push(problem("PULSE_AUTH_PASS", err.to_string()));
                        None
                    }
                },
                Err(err) => {
                    errors.push(problem("PULSE_AUTH_USER", err));
                    None
                }
            },
            (Some(_), None) => {
                errors.push(problem("PULSE_AUTH_PASS", "is required when PULSE_AUTH_USER is set"));
                None
            }
            (None, Some(_)) => {
                errors.push(problem("PULSE_AUTH_USER", "is required when PULSE_AUTH_PASS is set"));
                None
            }
            (None, None) => None,
        };
        if let Some(key) = &raw.encryption_key {
            if let Err(err) = crate::crypto::decode_key(secrecy::ExposeSecret::expose_secret(key)) {
                let text = err.to_string();
                errors.push(problem(
                    "PULSE_ENCRYPTION_KEY",
                    text.trim_start_matches("PULSE_ENCRYPTION_KEY "),
                ));
            }
        }
        if let Err(err) = prepare_data_dir(&raw.data_dir) {
            errors.push(err);
        }
        match (listen, errors.is_empty()) {
            (Some(listen), true) => Ok(Config {
                data_dir: raw.data_dir,
                listen,
                public_url,
                trusted_proxies,
                bootstrap_admin,
                encryption_key: raw.encryption_key,
                hide_local_login,
                oidc_env: raw.oidc_env,
            }),
            _ => Err(errors),
        }
    }

    /// Whether cookies must carry `Secure` regardless of how the request arrived.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url.as_ref().is_some_and(|url| url.scheme() == "https")
    }
}

pub fn parse_public_url(value: &str) -> Result<Url, ConfigError> {
    const VAR: &str = "PULSE_PUBLIC_URL";
    let url = Url::parse(value.trim()).map_err(|_| {
        problem(
            VAR,
            format!("'{value}' is not a URL; use e.g. https://pulse.example.com"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(problem(
            VAR,
            format!("'{value}' must start with https:// (or http://) and name a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem(VAR, "must not contain a query (?) or fragment (#)"));
    }
    Ok(url)
}

/// Parses a list of CIDRs (or single addresses) separated by commas and/or whitespace.
pub fn parse_cidrs(value: &str) -> Result<Vec<IpNet>, ConfigError> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    problem(
                        "PULSE_TRUSTED_PROXY_CIDRS",
                        format!("'{item}' is not an IP address or CIDR such as 10.0.0.0/8 or 127.0.0.1/32"),
                    )
                })
        })
        .collect()
}

pub fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(problem(
            variable,
            format!("'{value}' is not a boolean; use true or false"),
        )),
    }
}

/// Creates the data directory (mode 0700) if needed and checks that it is writable.
pub fn prepare_data_dir(dir: &Path) -> Result<(), ConfigError> {
    const VAR: &str = "PULSE_DATA_DIR";
    let fix = "choose a writable directory with --data-dir / PULSE_DATA_DIR or fix its permissions";
    if dir.exists() && !dir.is_dir() {
        return Err(problem(VAR, format!("{} exists and is not a directory", dir.display())));
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|err| problem(VAR, format!("cannot create {}: {err}; {fix}", dir.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|err| problem(VAR, format!("cannot restrict {}: {err}", dir.display())))?;
        }
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|err| problem(VAR, format!("cannot write to {}: {err}; {fix}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dir: &Path) -> RawConfig {
        RawConfig {
            data_dir: dir.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..RawConfig::default()
        }
    }

    #[test]
    fn defaults_are_valid() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let config = Config::from_raw(raw(&dir.path().join("data"))).map_err(|e| format!("{e:?}"))?;
        assert!(config.public_url.is_none());
        assert!(dir.path().join("data").is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("data"))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        Ok(())
    }

    #[test]
    fn every_bad_value_is_reported_by_its_variable() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x")?;
        let errors = Config::from_raw(RawConfig {
            data_dir: file,
            listen: "localhost".into(),
            public_url: Some("pulse.example.com".into()),
            trusted_proxy_cidrs: Some("10.0.0.0/8, nonsense".into()),
            auth_user: Some("admin".into()),
            auth_pass: Some(SecretString::from("short")),
            encryption_key: Some(SecretString::from("dG9vIHNob3J0")),
            hide_local_login: Some("maybe".into()),
            ..RawConfig::default()
        })
        .err()
        .ok_or("expected errors")?;
        let variables: Vec<_> = errors.iter().map(|e| e.variable).collect();
        assert_eq!(
            variables,
            [
                "PULSE_LISTEN",
                "PULSE_PUBLIC_URL",
                "PULSE_TRUSTED_PROXY_CIDRS",
                "PULSE_AUTH_HIDE_LOCAL_LOGIN",
                "PULSE_AUTH_PASS",
                "PULSE_ENCRYPTION_KEY",
                "PULSE_DATA_DIR"
            ]
        );
        assert!(errors[5].problem.contains("32 bytes"), "{}", errors[5]);
        Ok(())
    }

    #[test]
    fn lists_accept_commas_and_whitespace() -> Result<(), ConfigError> {
        let nets = parse_cidrs("10.0.0.0/8,  192.168.1.1\n::1")?;
        assert_eq!(nets.len(), 3);
        Ok(())
    }

    #[test]
    fn user_without_password_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let errors = Config::from_raw(RawConfig {
            auth_user: Some("admin".into()),
            ..raw(dir.path())
        })
        .err()
        .ok_or("expected an error")?;
        assert_eq!(errors[0].variable, "PULSE_AUTH_PASS");
        Ok(())
    }
}
