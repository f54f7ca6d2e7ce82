//! E-mail: one message per request or backup, sent through the configured [`Mailer`]
//! (SES v2 in production), with a plain-text and an HTML part.

pub mod render;

use tokio::time::Instant;

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

/// Who a message went to, or why it did not go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub emailed_to: Vec<String>,
    pub error: Option<String>,
}

/// Where mail goes out from: the mailer and the sender identity (both, or mail is off).
#[derive(Clone, Copy)]
pub struct Outbox<'a> {
    pub mailer: Option<&'a dyn Mailer>,
    pub from: Option<&'a str>,
}

impl Outbox<'_> {
    /// Sends `subject` with its two parts to `to`, giving up at `respond_by` so the answer
    /// still goes out in time.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        parts: Result<(String, String), minijinja::Error>,
        respond_by: Option<Instant>,
    ) -> Delivery {
        let (Some(mailer), Some(from)) = (self.mailer, self.from) else {
            return Delivery {
                emailed_to: Vec::new(),
                error: Some("e-mail is not configured (EMAIL_FROM is unset)".to_owned()),
            };
        };
        let (text, html) = match parts {
            Ok(parts) => parts,
            Err(e) => {
                return Delivery {
                    emailed_to: Vec::new(),
                    error: Some(format!("the e-mail could not be rendered: {}", e.kind())),
                }
            }
        };
        let email = Email {
            from: from.to_owned(),
            to: to.to_vec(),
            subject: subject.to_owned(),
            text,
            html,
        };
        let sent = match respond_by {
            Some(at) => tokio::time::timeout_at(at, mailer.send(&email))
                .await
                .unwrap_or_else(|_| Err(MailError("SES did not answer before the Lambda deadline".to_owned()))),
            None => mailer.send(&email).await,
        };
        match sent {
            Ok(()) => {
                tracing::info!(recipients = to.len(), "sent the e-mail");
                Delivery {
                    emailed_to: to.to_vec(),
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not send the e-mail");
                Delivery {
                    emailed_to: Vec::new(),
                    error: Some(e.0),
                }
            }
        }
    }
}
