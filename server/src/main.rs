//! The `pulse` binary: parse the command line, set up logging, start the application.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use pulse_core::{clock::SystemClock, config::Config, crypto::KeyOrigin, BootstrapOutcome};
use pulse_server::{
    cli::{AdminCommand, Cli, Command},
    find_site_root, Application,
};
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Admin(AdminCommand::ResetLockout)) => reset_lockout(cli.settings.data_dir).await,
        Some(Command::RotateKey { new_key }) => rotate_key(cli.settings, new_key).await,
        Some(Command::Serve) | None => serve(cli.settings).await,
    }
}

async fn serve(settings: pulse_server::cli::Settings) -> ExitCode {
    let config = match Config::from_raw(settings.into_raw()) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("Pulse cannot start; fix the following and start it again:");
            for problem in problems {
                eprintln!("  - {problem}");
            }
            return ExitCode::from(2);
        }
    };
    let public_url = config.public_url.clone();
    let (app, report) = match Application::build(config, Arc::new(SystemClock), find_site_root()).await {
        Ok(built) => built,
        Err(err) => {
            eprintln!("Pulse cannot start: {err}");
            return ExitCode::from(1);
        }
    };
    let Ok(addr) = app.local_addr() else {
        eprintln!("Pulse cannot start: no local address");
        return ExitCode::from(1);
    };
    let base = public_url
        .map(|url| url.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    match &report.key_origin {
        KeyOrigin::Environment => tracing::info!("encryption key from PULSE_ENCRYPTION_KEY"),
        KeyOrigin::ExistingFile(path) => tracing::info!(file = %path.display(), "encryption key loaded"),
        KeyOrigin::CreatedFile(path) => {
            tracing::info!(file = %path.display(), "generated a new encryption key; back it up with the data directory")
        }
    }
    match &report.bootstrap_admin {
        Some(BootstrapOutcome::Created(user)) => {
            tracing::info!(%user, "administrator created from PULSE_AUTH_USER/PULSE_AUTH_PASS")
        }
        Some(BootstrapOutcome::PasswordUpdated(user)) => {
            tracing::info!(%user, "administrator password updated from PULSE_AUTH_PASS; its lockout was lifted")
        }
        Some(BootstrapOutcome::Unchanged(_)) | None => {}
    }
    if let Some(token) = &report.setup_token {
        // The operator needs this link to create the first account; it is single-use.
        tracing::warn!(
            "No administrator yet. Create one at: {base}/setup?token={}",
            token.expose_secret()
        );
    }
    tracing::info!("Pulse listening on http://{addr}");
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Pulse stopped with an error: {err}");
            ExitCode::from(1)
        }
    }
}

async fn reset_lockout(data_dir: std::path::PathBuf) -> ExitCode {
    let db = match pulse_core::store::open(&data_dir).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("cannot open the database in {}: {err}", data_dir.display());
            return ExitCode::from(1);
        }
    };
    match pulse_core::store::lockout::clear_all(&db).await {
        Ok(count) => {
            println!("Lifted all sign-in lockouts ({count} records cleared).");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("could not clear lockouts: {err}");
            ExitCode::from(1)
        }
    }
}

async fn rotate_key(settings: pulse_server::cli::Settings, new_key: Option<String>) -> ExitCode {
    use pulse_core::crypto::{self, Cipher, KeyOrigin};
    let data_dir = settings.data_dir.clone();
    let from_env = settings.encryption_key.clone().map(secrecy::SecretString::from);
    let fail = |message: String| {
        eprintln!("pulse rotate-key: {message}");
        ExitCode::from(1)
    };
    let db = match pulse_core::store::open(&data_dir).await {
        Ok(db) => db,
        Err(err) => return fail(format!("cannot open the database in {}: {err}", data_dir.display())),
    };
    let (old_key, origin) = match crypto::load_key(&data_dir, from_env.as_ref(), false) {
        Ok(Some(found)) => found,
        Ok(None) => return fail("no current key: set PULSE_ENCRYPTION_KEY or restore .encryption.key".into()),
        Err(err) => return fail(err.to_string()),
    };
    let new_key = match (&new_key, &origin) {
        (Some(encoded), _) => match crypto::decode_key(encoded) {
            Ok(key) => key,
            Err(err) => return fail(err.to_string().replace("PULSE_ENCRYPTION_KEY", "--new-key")),
        },
        (None, KeyOrigin::Environment) => {
            return fail("the current key comes from PULSE_ENCRYPTION_KEY: pass the new one with --new-key".into())
        }
        (None, _) => pulse_core::rotate::generate_key(),
    };
    let (old, new) = (Cipher::new(&old_key), Cipher::new(&new_key));
    let report = match pulse_core::rotate::rotate(&db, &old, &new).await {
        Ok(report) => report,
        Err(err) => return fail(err.to_string()),
    };
    if !matches!(origin, KeyOrigin::Environment) {
        let file = data_dir.join(crypto::KEY_FILE_NAME);
        let previous = data_dir.join(format!("{}.previous", crypto::KEY_FILE_NAME));
        if let Err(err) = std::fs::copy(&file, &previous) {
            return fail(format!(
                "secrets were re-encrypted but the old key could not be backed up: {err}"
            ));
        }
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(secrecy::ExposeSecret::expose_secret(&new_key));
        if let Err(err) = crypto::write_private_file(&file, encoded.as_bytes()) {
            return fail(format!(
                "secrets were re-encrypted but the new key could not be written to {}: {err}; the old key is in {}",
                file.display(),
                previous.display()
            ));
        }
        println!(
            "New key written to {} (old key kept in {}).",
            file.display(),
            previous.display()
        );
    } else {
        println!("Set PULSE_ENCRYPTION_KEY to the new key before starting Pulse again.");
    }
    println!(
        "Re-encrypted {} stored settings and {} sessions under key id {}.",
        report.settings,
        report.sessions,
        new.key_id()
    );
    ExitCode::SUCCESS
}
