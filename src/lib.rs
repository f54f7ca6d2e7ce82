//! wix-media-archiver: turns lists of Wix media files into download-archive links.
//!
//! Data flows one way: an event comes in at [`entry`], becomes a validated
//! [`domain::request::ArchiveRequest`], is cut into batches, goes through the paced
//! [`wix::WixClient`], and comes out as a [`domain::outcome::Outcome`] that is answered
//! and, when asked, mailed.

pub mod app;
pub mod archive;
pub mod aws;
pub mod backup;
pub mod config;
pub mod console;
pub mod credentials;
pub mod domain;
pub mod entry;
pub mod jobs;
#[cfg(feature = "local")]
pub mod local;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod pace;
pub mod progress;
#[cfg(feature = "local")]
pub mod progress_view;
pub mod signature;
pub mod storage;
pub mod wix;
pub mod xray;
pub mod zipdir;
