//! Delivering the links by e-mail.

use crate::credentials::BoxFuture;

/// One message: a plain-text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message was not sent, in words safe to return and log (no links).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// Something that sends e-mail.
pub trait Mailer: Send + Sync {
    /// Sends one message.
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), MailError>>;
}
