//! The Wix Media Manager REST adapter.

mod client;
mod error;
mod limiter;

pub use client::{
    CallContext, CallStats, ClientSettings, FileDescriptor, FolderDescriptor, ListedFile, Page, WixClient,
};
pub use error::{WixError, WixErrorKind};
pub use limiter::Limiter;
