//! The command line's work beyond serving: operator commands against a
//! running sidecar's admin API ([`operator`]), the container health check,
//! signing a body, and a small local subscriber ([`receive`]).

pub mod admin_client;
pub mod operator;
pub mod receive;
pub mod stats;
mod table;

use std::io::Read;

use crate::sign::HexSigner;

/// `hookd sign`: the `X-Webhook-Signature` of the body on stdin.
pub fn sign_stdin(secret: &str) -> anyhow::Result<String> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    Ok(HexSigner::new(secret).sign(&body))
}

/// Reads a secret from the environment variable `name`, refusing an unset
/// or empty one.
pub fn secret_from_env(name: &str) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(secret) if !secret.is_empty() => Ok(secret),
        Ok(_) => anyhow::bail!("environment variable {name} is empty"),
        Err(_) => anyhow::bail!("environment variable {name} is not set"),
    }
}
