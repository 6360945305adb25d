//! Start-up: the encryption key is created once, kept private, and never silently replaced.
mod common;

use base64::{engine::general_purpose::STANDARD, Engine};
use common::*;
use pulse_core::{clock::ManualClock, crypto::KEY_FILE_NAME, secrecy::SecretString, StartError};
use pulse_server::BuildError;
use time::OffsetDateTime;

fn clock() -> ManualClock {
    ManualClock::new(OffsetDateTime::now_utc())
}

#[cfg(unix)]
#[tokio::test]
async fn generated_key_and_data_dir_are_private() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir()?;
    let data_dir = temp.path().join("data");
    build_app(raw_config(&data_dir), &clock()).await?;
    let mode = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&data_dir.join(KEY_FILE_NAME))?, 0o600);
    assert_eq!(mode(&data_dir)?, 0o700);
    Ok(())
}

#[tokio::test]
async fn missing_key_file_over_existing_data_refuses_to_start() -> TestResult {
    let temp = tempfile::tempdir()?;
    let data_dir = temp.path().join("data");
    let clock = clock();
    build_app(raw_config(&data_dir), &clock).await?;
    // The key file alone is enough to start again.
    build_app(raw_config(&data_dir), &clock).await?;

    std::fs::remove_file(data_dir.join(KEY_FILE_NAME))?;
    let error = build_app(raw_config(&data_dir), &clock)
        .await
        .err()
        .ok_or("started without its key")?;
    assert!(
        matches!(error, BuildError::Start(StartError::KeyMissing { .. })),
        "{error}"
    );
    assert!(
        !data_dir.join(KEY_FILE_NAME).exists(),
        "a new key was created over existing data"
    );
    Ok(())
}

#[tokio::test]
async fn different_env_key_is_refused() -> TestResult {
    let temp = tempfile::tempdir()?;
    let data_dir = temp.path().join("data");
    let clock = clock();
    build_app(raw_config(&data_dir), &clock).await?;

    let mut raw = raw_config(&data_dir);
    raw.encryption_key = Some(SecretString::from(STANDARD.encode([7u8; 32])));
    let error = build_app(raw, &clock).await.err().ok_or("started with the wrong key")?;
    assert!(
        matches!(error, BuildError::Start(StartError::KeyMismatch { .. })),
        "{error}"
    );

    // The right key given by environment is accepted.
    let mut raw = raw_config(&data_dir);
    raw.encryption_key = Some(SecretString::from(std::fs::read_to_string(
        data_dir.join(KEY_FILE_NAME),
    )?));
    build_app(raw, &clock).await?;
    Ok(())
}
