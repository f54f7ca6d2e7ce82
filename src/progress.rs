//! Progress of long work, as `debug` events of the target [`TARGET`]: the local CLI turns
//! them into a progress bar or plain lines (`archiver-local backup|restore|verify`). In
//! Lambda nothing listens at that level, so they cost a disabled callsite.

/// The events' target.
pub const TARGET: &str = "wix_media_archiver::progress";

/// Files listed so far.
pub fn listed(files: usize) {
    tracing::debug!(target: TARGET, listed = files as u64, "files listed");
}

/// The work is planned: `batches` steps over `files` files.
pub fn planned(batches: usize, files: usize) {
    tracing::debug!(target: TARGET, batches = batches as u64, files = files as u64, "planned");
}

/// One more step of the plan is done; `bytes` were stored by it.
pub fn batch_done(files: usize, bytes: u64) {
    tracing::debug!(target: TARGET, batch_files = files as u64, bytes = bytes, "batch done");
}
