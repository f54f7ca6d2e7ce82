//! The local CLI's view of [`crate::progress`] events: a progress bar on a terminal (files
//! listed, batches done, bytes stored, ETA), plain lines otherwise, on standard error.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::logging::ExtraLayer;
use crate::progress::TARGET;

/// Plain lines come at most this often (and at the plan and the last step).
const LINE_EVERY: Duration = Duration::from_secs(1);

/// The layer for `archiver-local`: a bar when `terminal`, else lines.
pub fn layer(terminal: bool) -> ExtraLayer {
    let view = View {
        state: Mutex::new(State {
            bar: terminal.then(|| {
                let bar = ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }),
            ..State::default()
        }),
    };
    Box::new(view.with_filter(Targets::new().with_target(TARGET, tracing::Level::DEBUG)))
}

struct View {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    listed: u64,
    batches: u64,
    files: u64,
    done: u64,
    done_files: u64,
    bytes: u64,
    planned_at: Option<Instant>,
    last_line: Option<Instant>,
}

#[derive(Default)]
struct Fields {
    listed: Option<u64>,
    batches: Option<u64>,
    files: Option<u64>,
    batch_files: Option<u64>,
    bytes: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        let slot = match field.name() {
            "listed" => &mut self.listed,
            "batches" => &mut self.batches,
            "files" => &mut self.files,
            "batch_files" => &mut self.batch_files,
            "bytes" => &mut self.bytes,
            _ => return,
        };
        *slot = Some(value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for View {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Ok(mut state) = self.state.lock() else { return };
        state.take(fields);
    }
}

impl State {
    fn take(&mut self, f: Fields) {
        let now = Instant::now();
        let (line, always) = if let Some(listed) = f.listed {
            self.listed = listed;
            (format!("listed {listed} files"), false)
        } else if let Some(batches) = f.batches {
            self.batches = batches;
            self.files = f.files.unwrap_or(0);
            self.planned_at = Some(now);
            (format!("planned {batches} batches of {} files", self.files), true)
        } else if let Some(files) = f.batch_files {
            self.done += 1;
            self.done_files += files;
            self.bytes += f.bytes.unwrap_or(0);
            (self.batch_line(now), self.done == self.batches)
        } else {
            return;
        };
        if let Some(bar) = &self.bar {
            if f.batches.is_some() {
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} batches · {msg} · ETA {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_length(self.batches);
            }
            if self.planned_at.is_some() {
                bar.set_position(self.done);
                bar.set_message(format!(
                    "{} of {} files, {} stored",
                    self.done_files,
                    self.files,
                    HumanBytes(self.bytes)
                ));
                if self.done == self.batches && f.batch_files.is_some() {
                    bar.finish_and_clear();
                }
            } else {
                bar.set_message(line);
            }
            return;
        }
        if always || self.last_line.is_none_or(|t| now.duration_since(t) >= LINE_EVERY) {
            self.last_line = Some(now);
            let _ = writeln!(std::io::stderr().lock(), "progress: {line}");
        }
    }

    fn batch_line(&self, now: Instant) -> String {
        let eta = match self.planned_at {
            Some(at) if self.done > 0 && self.batches > self.done => {
                let per = now.duration_since(at).div_f64(self.done as f64);
                format!(
                    ", ETA {}",
                    HumanDuration(per.mul_f64((self.batches - self.done) as f64))
                )
            }
            _ => String::new(),
        };
        format!(
            "batch {}/{} done, {} of {} files, {} stored{eta}",
            self.done,
            self.batches,
            self.done_files,
            self.files,
            HumanBytes(self.bytes)
        )
    }
}
