//! The Wix Media Manager REST adapter: the client (settings, pool, pacer), the one retry
//! loop every call goes through, auth headers and tokens, the endpoints, and Wix's shapes.

mod auth;
mod call;
mod client;
mod context;
mod endpoints;
mod error;
pub mod limiter;
mod models;

pub use call::{retry_after, RETRY_AFTER_CEILING};
pub use client::{ClientSettings, WixClient};
pub use context::{CallContext, CallStats};
pub use endpoints::ImportRequest;
pub use error::{Named, WixError, WixErrorKind, MAX_NAMED};
pub use limiter::{Limiter, Smoothing, WINDOW};
pub use models::{FileDescriptor, FolderDescriptor, Page};
