//! The emulator's own download routes for the links it hands out, `/_emulator/archives/<token>`
//! and `/_emulator/files/<id>?token=…`: content made while it is sent, download faults, and
//! counters of what went out.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Response};
use tokio::time::Sleep;

use super::respond::{
    app_error, empty, full, method_not_allowed, not_found_route, status_code_name, BoxError, Failure, Resp,
};
use super::routes::{percent_decode, Query};
use super::State;
use crate::content::{Content, CHUNK};
use crate::dates::unix_now;
use crate::faults::DownloadFault;
use crate::zipstream::{archive_len, ZipStream};

/// How long a cut connection waits before it closes, so the bytes before the cut reach the client.
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(50);

/// What the download routes sent, since the start or the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownloadStats {
    /// Archive downloads answered 200 (faulted answers not counted).
    pub archive_downloads: u64,
    /// File-link downloads answered 200.
    pub file_downloads: u64,
    /// Body bytes of archives sent (a cut download counts what went out).
    pub archive_bytes: u64,
    /// Body bytes of file links sent.
    pub file_bytes: u64,
}

impl DownloadStats {
    /// All body bytes sent by both routes.
    pub fn bytes_sent(&self) -> u64 {
        self.archive_bytes + self.file_bytes
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    archive_downloads: AtomicU64,
    file_downloads: AtomicU64,
    archive_bytes: Arc<AtomicU64>,
    file_bytes: Arc<AtomicU64>,
}

impl Counters {
    pub(crate) fn read(&self, reset: bool) -> DownloadStats {
        let take = |c: &AtomicU64| {
            if reset {
                c.swap(0, Ordering::Relaxed)
            } else {
                c.load(Ordering::Relaxed)
            }
        };
        DownloadStats {
            archive_downloads: take(&self.archive_downloads),
            file_downloads: take(&self.file_downloads),
            archive_bytes: take(&self.archive_bytes),
            file_bytes: take(&self.file_bytes),
        }
    }
}

enum Source {
    Zip(Box<ZipStream>),
    File { content: Content, pos: u64 },
}

impl Source {
    fn next_chunk(&mut self) -> Option<Bytes> {
        match self {
            Source::Zip(zip) => zip.next_chunk(),
            Source::File { content, pos } => {
                let chunk = content.chunk(*pos, CHUNK);
                *pos += chunk.len() as u64;
                (!chunk.is_empty()).then_some(chunk)
            }
        }
    }
}

/// A download body made chunk by chunk, with the cut or stall a fault asked for.
struct Download {
    source: Source,
    len: Option<u64>,
    sent: u64,
    meter: Arc<AtomicU64>,
    cut_after: Option<u64>,
    stall: Option<(u64, Duration)>,
    pending: Option<Bytes>,
    sleeping: Option<Pin<Box<Sleep>>>,
    cut: bool,
}

impl hyper::body::Body for Download {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleeping.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleeping = None;
                if this.cut {
                    // An error makes hyper close the connection short of Content-Length.
                    return Poll::Ready(Some(Err("download cut by a fault".into())));
                }
            }
            if !this.cut && this.cut_after == Some(this.sent) {
                this.cut = true;
                this.sleeping = Some(Box::pin(tokio::time::sleep(FLUSH_BEFORE_CUT)));
                continue;
            }
            if let Some((after, pause)) = this.stall {
                if this.sent >= after {
                    this.stall = None;
                    this.sleeping = Some(Box::pin(tokio::time::sleep(pause)));
                    continue;
                }
            }
            let Some(mut chunk) = this.pending.take().or_else(|| this.source.next_chunk()) else {
                return Poll::Ready(None);
            };
            let limit = [this.cut_after, this.stall.map(|(after, _)| after)]
                .into_iter()
                .flatten()
                .map(|at| at.saturating_sub(this.sent))
                .min()
                .unwrap_or(u64::MAX);
            if chunk.len() as u64 > limit {
                this.pending = Some(chunk.split_off(limit as usize));
            }
            if chunk.is_empty() {
                continue;
            }
            this.sent += chunk.len() as u64;
            this.meter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// The answer to a download and the fault label for the call log.
pub(crate) fn answer(state: &State, method: &Method, path: &str, query: &str) -> (Resp, Option<String>) {
    let archive = path.strip_prefix("/_emulator/archives/");
    let file = path.strip_prefix("/_emulator/files/");
    if archive.is_none() && file.is_none() {
        return (not_found_route(path), None);
    }
    if method != Method::GET {
        return (method_not_allowed(&Method::GET), None);
    }
    let fault = state.lock().download_faults.pop(path);
    let label = fault.as_ref().map(DownloadFault::label);
    let (cut_after, stall) = match fault {
        Some(DownloadFault::Status(status)) => {
            let resp = *app_error(
                status,
                status_code_name(status),
                "download fault injected by the emulator",
                None,
            );
            return (resp, label);
        }
        Some(DownloadFault::Expired) => return (*app_error(403, "FORBIDDEN", "download link expired", None), label),
        Some(DownloadFault::NotZip) => {
            let page = "<html><body><h1>Something went wrong</h1></body></html>";
            let resp = Response::builder()
                .header(CONTENT_TYPE, "text/html; charset=utf-8")
                .body(full(page))
                .unwrap_or_else(|_| empty(500));
            return (resp, label);
        }
        Some(DownloadFault::CutAfter(n)) => (Some(n), None),
        Some(DownloadFault::Stall { after_bytes, pause }) => (None, Some((after_bytes, pause))),
        None => (None, None),
    };
    let served = match (archive, file) {
        (Some(token), _) => archive_download(state, token),
        (_, Some(id)) => file_download(state, &percent_decode(id), query),
        _ => Err(Box::new(not_found_route(path))),
    };
    let (builder, source, len, meter) = match served {
        Ok(parts) => parts,
        Err(resp) => return (*resp, label),
    };
    let body = Download {
        source,
        len,
        sent: 0,
        meter,
        cut_after,
        stall,
        pending: None,
        sleeping: None,
        cut: false,
    };
    let builder = match len {
        Some(len) => builder.header(CONTENT_LENGTH, len),
        None => builder,
    };
    let resp = builder.body(body.boxed_unsync()).unwrap_or_else(|_| empty(500));
    (resp, label)
}

type Served = (hyper::http::response::Builder, Source, Option<u64>, Arc<AtomicU64>);

fn archive_download(state: &State, token: &str) -> Result<Served, Failure> {
    let (format, content_length) = {
        let inner = state.lock();
        (inner.config.zip_format, inner.config.content_length)
    };
    let entries = {
        let inner = state.lock();
        match inner.archives.get(token) {
            None => return Err(app_error(404, "NOT_FOUND", "no such archive", None)),
            Some(link) if link.nothing => {
                return Err(app_error(404, "NOTHING_TO_DOWNLOAD", "Nothing to download", None));
            }
            Some(link) => link.entries.clone(),
        }
    };
    let len = if content_length {
        archive_len(&entries, format, false)
    } else {
        None
    };
    state.counters.archive_downloads.fetch_add(1, Ordering::Relaxed);
    let builder = Response::builder()
        .header(CONTENT_TYPE, "application/zip")
        .header("content-disposition", "attachment; filename=\"archive.zip\"");
    let source = Source::Zip(Box::new(ZipStream::new(entries, format)));
    Ok((builder, source, len, state.counters.archive_bytes.clone()))
}

fn file_download(state: &State, id: &str, query: &str) -> Result<Served, Failure> {
    let query = Query::parse(query);
    let (link, content_length) = {
        let inner = state.lock();
        let link = query.get("token").and_then(|t| inner.file_links.get(t));
        match link.filter(|l| l.id == id) {
            Some(l) => (
                (l.expires_unix, l.file_name.clone(), l.inline),
                inner.config.content_length,
            ),
            None => return Err(app_error(403, "FORBIDDEN", "invalid download token", None)),
        }
    };
    let (expires_unix, file_name, inline) = link;
    if unix_now() >= expires_unix {
        return Err(app_error(403, "FORBIDDEN", "download link expired", None));
    }
    let (content, display_name) = {
        let store = state.store();
        let Some(slot) = store.lookup(id) else {
            return Err(app_error(404, "NOT_FOUND", "the file is gone", None));
        };
        (store.content(slot), store.view(slot).display_name.to_string())
    };
    let name = file_name.unwrap_or(display_name);
    let disposition = if inline { "inline" } else { "attachment" };
    state.counters.file_downloads.fetch_add(1, Ordering::Relaxed);
    let builder = Response::builder()
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(
            "content-disposition",
            format!("{disposition}; filename=\"{}\"", name.replace('"', "")),
        );
    let len = content_length.then(|| content.len());
    Ok((
        builder,
        Source::File { content, pos: 0 },
        len,
        state.counters.file_bytes.clone(),
    ))
}
