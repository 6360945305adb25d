//! Command line and environment: `pulse` (serve), `pulse admin reset-lockout`. Every option has
//! an environment variable, and `pulse --help` lists both with their defaults.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use pulse_core::{config::RawConfig, secrecy::SecretString};

#[derive(Debug, Parser)]
#[command(
    name = "pulse",
    version,
    about = "Pulse: monitoring for Proxmox, Docker and Kubernetes — sign-in and single sign-on.",
    after_help = OIDC_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Single sign-on is configured in Settings › Security or by these variables (each overrides its field).
const OIDC_HELP: &str = "Single sign-on (OpenID Connect) environment variables:
  OIDC_ENABLED            enable SSO [default: false]
  OIDC_ISSUER_URL         issuer, https (http only for localhost) [default: none]
  OIDC_CLIENT_ID          client id [default: none]
  OIDC_CLIENT_SECRET      client secret; stored encrypted [default: none = public client with PKCE]
  OIDC_REDIRECT_URL       [default: <public URL>/api/oidc/callback]
  OIDC_LOGOUT_URL         end-session URL [default: discovery's end_session_endpoint]
  OIDC_SCOPES             [default: openid profile email]; add offline_access for long sessions, groups for groups
  OIDC_USERNAME_CLAIM     [default: preferred_username] (dot paths like realm_access.roles allowed)
  OIDC_EMAIL_CLAIM        [default: email]
  OIDC_GROUPS_CLAIM       [default: groups]
  OIDC_ALLOWED_GROUPS     comma/space separated [default: empty = anyone the provider authenticates]
  OIDC_ALLOWED_DOMAINS    [default: empty]
  OIDC_ALLOWED_EMAILS     [default: empty]
  OIDC_ADMIN_GROUPS       [default: empty = every allowed SSO user is admin]
  OIDC_DISPLAY_NAME       button label [default: Single Sign-On]
  OIDC_PROMPT             none | consent | login | select_account [default: consent when offline_access is asked, else none]
  OIDC_CA_BUNDLE          extra CA certificates (PEM file) [default: built-in roots]";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Pulse (the default).
    Serve,
    /// Administrative tasks run against the data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Re-encrypt every stored secret under a new key (stop Pulse first). Without --new-key a key
    /// is generated into <data dir>/.encryption.key (the old one is kept as .encryption.key.previous).
    RotateKey {
        /// The new key, base64 of 32 bytes (required when PULSE_ENCRYPTION_KEY supplies the current key).
        #[arg(long, hide_env_values = true)]
        new_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Lift every sign-in lockout (accounts and IPs) — the recovery path for a locked-out admin.
    ResetLockout,
}

#[derive(Debug, Args)]
pub struct Settings {
    /// Where Pulse keeps its database, encryption key and setup token.
    #[arg(long, env = "PULSE_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Address and port to listen on.
    #[arg(long, env = "PULSE_LISTEN", default_value = "127.0.0.1:7655")]
    pub listen: String,
    /// The URL users open, e.g. https://pulse.example.com (default: derived from each request).
    #[arg(long, env = "PULSE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Reverse proxies whose X-Forwarded-For/-Proto are believed (CIDRs, comma or space separated; default: none).
    #[arg(long, env = "PULSE_TRUSTED_PROXY_CIDRS")]
    pub trusted_proxy_cidrs: Option<String>,
    /// Create or update this administrator at start (with PULSE_AUTH_PASS); skips the setup page.
    #[arg(long, env = "PULSE_AUTH_USER")]
    pub auth_user: Option<String>,
    /// Password for PULSE_AUTH_USER (at least 12 characters; only its argon2id hash is stored).
    #[arg(long, env = "PULSE_AUTH_PASS", hide_env_values = true)]
    pub auth_pass: Option<String>,
    /// Hide the local username/password form on the login page (default: false).
    #[arg(long, env = "PULSE_AUTH_HIDE_LOCAL_LOGIN")]
    pub hide_local_login: Option<String>,
    /// Base64 of 32 bytes encrypting stored secrets (default: generated into <data dir>/.encryption.key).
    #[arg(long, env = "PULSE_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

impl Settings {
    pub fn into_raw(self) -> RawConfig {
        RawConfig {
            data_dir: self.data_dir,
            listen: self.listen,
            public_url: self.public_url,
            trusted_proxy_cidrs: self.trusted_proxy_cidrs,
            auth_user: self.auth_user,
            auth_pass: self.auth_pass.map(SecretString::from),
            encryption_key: self.encryption_key.map(SecretString::from),
            hide_local_login: self.hide_local_login,
            oidc_env: pulse_core::oidc::settings::OidcEnv::from_lookup(|name| std::env::var(name).ok()),
        }
    }
}
