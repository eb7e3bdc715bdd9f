//! The access log's writer: a bounded queue from the serving tasks to one thread that
//! formats and writes.
//!
//! Contract:
//! * [`AccessLog::log`] never blocks and never formats: it offers the record to a queue of
//!   `access_queue` slots; when the queue is full the record is dropped and counted
//!   ([`AccessLog::dropped`]). When the log is off, [`AccessLog::enabled`] is false and
//!   callers build nothing (one branch per request).
//! * The writer thread wakes every 5 ms (senders never wake it: that would cost the serving
//!   thread a context switch per line), takes every record that is ready, formats it
//!   ([`Record::write`]) and writes the batch with one `write_all`: lines appear within 5 ms. A write that fails is counted and reported once
//!   per failure streak on stderr; the lines of that batch are lost, later batches are tried.
//! * A file destination is opened (append, created 0644) by [`AccessLog::start`], so a path
//!   that cannot be written is an error at start. [`AccessLog::reopen`] (SIGUSR1) asks the
//!   writer to open the path again before its next batch (logrotate renamed the old file);
//!   when the new open fails, writing goes on to the old file.
//! * The thread ends when the `AccessLog` is dropped, after writing what was queued.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::line::Line;
use super::settings::{Destination, Format, LogSection};

/// How long the writer sleeps between two looks at the queue: lines reach the destination
/// within this; at `access_queue` 4096 the queue holds some 800 000 lines/s before dropping.
const POLL: Duration = Duration::from_millis(5);
/// Formatted bytes written in one write at most.
const BATCH_MAX: usize = 256 * 1024;

/// What the writer thread turns into lines.
pub trait Record: Send + 'static {
    /// What every line of this log shares (e.g. the node's id), owned by the writer.
    type Env: Send + 'static;

    /// Appends this record's fields, in its documented order.
    fn write(&self, env: &Self::Env, line: &mut Line);
}

/// Counters of one access log, shared with its writer.
#[derive(Debug, Default)]
struct Shared {
    dropped: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    reopen: AtomicBool,
}

/// A running access log (or an off one).
pub struct AccessLog<R: Record> {
    tx: Option<SyncSender<R>>,
    shared: Arc<Shared>,
    settings: LogSection,
}

/// The log's destination could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the access log {path}: {source}")]
pub struct OpenError {
    /// The configured path.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl<R: Record> AccessLog<R> {
    /// A log that writes nothing.
    pub fn off() -> AccessLog<R> {
        AccessLog {
            tx: None,
            shared: Arc::default(),
            settings: LogSection::default(),
        }
    }

    /// Starts the writer for `settings` (nothing when `access = "off"`); see the module doc.
    pub fn start(settings: &LogSection, env: R::Env) -> Result<AccessLog<R>, OpenError> {
        let sink = match &settings.access {
            Destination::Off => return Ok(AccessLog::off()),
            Destination::Stderr => Sink::Stderr,
            Destination::File(path) => Sink::File {
                file: open(path).map_err(|source| OpenError {
                    path: path.clone(),
                    source,
                })?,
                path: path.clone(),
            },
        };
        let (tx, rx) = sync_channel(settings.access_queue.0);
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            rx,
            sink,
            env,
            format: settings.access_format,
            shared: Arc::clone(&shared),
        };
        std::thread::Builder::new()
            .name("strait-accesslog".into())
            .spawn(move || writer.run())
            .map_err(|source| OpenError {
                path: PathBuf::from(settings.access.describe()),
                source,
            })?;
        Ok(AccessLog {
            tx: Some(tx),
            shared,
            settings: settings.clone(),
        })
    }

    /// Whether records are wanted at all.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Offers `record` to the writer; dropped and counted when the queue is full.
    pub fn log(&self, record: R) {
        if let Some(tx) = &self.tx {
            match tx.try_send(record) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Asks the writer to reopen its file before the next batch (SIGUSR1).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Relaxed);
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Lines written.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Lines lost to failed writes.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// The settings it started with.
    pub fn settings(&self) -> &LogSection {
        &self.settings
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

enum Sink {
    Stderr,
    File { file: File, path: PathBuf },
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stderr => std::io::stderr().lock().write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    fn reopen(&mut self) {
        if let Sink::File { file, path } = self {
            match open(path) {
                Ok(f) => *file = f,
                Err(e) => eprintln!(
                    "strait: cannot reopen the access log {}: {e}; writing on to the old file",
                    path.display()
                ),
            }
        }
    }
}

struct Writer<R: Record> {
    rx: Receiver<R>,
    sink: Sink,
    env: R::Env,
    format: Format,
    shared: Arc<Shared>,
}

impl<R: Record> Writer<R> {
    fn run(mut self) {
        let mut batch = String::with_capacity(64 * 1024);
        let mut failing = false;
        loop {
            if self.shared.reopen.swap(false, Ordering::Relaxed) {
                self.sink.reopen();
            }
            let mut lines = 0u64;
            let ended = loop {
                match self.rx.try_recv() {
                    Ok(r) => {
                        batch = self.append(batch, &r);
                        lines += 1;
                        if batch.len() >= BATCH_MAX {
                            self.flush(&mut batch, lines, &mut failing);
                            lines = 0;
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if lines > 0 {
                self.flush(&mut batch, lines, &mut failing);
            }
            if ended {
                break;
            }
            // Senders never wake this thread (a wake per line costs the serving thread a
            // context switch); it looks again after a short sleep.
            std::thread::sleep(POLL);
        }
    }

    /// Formats `r` at the end of `batch` (no copy per line).
    fn append(&self, batch: String, r: &R) -> String {
        let mut line = Line::after(self.format, batch);
        r.write(&self.env, &mut line);
        line.finish()
    }

    fn flush(&mut self, batch: &mut String, lines: u64, failing: &mut bool) {
        match self.sink.write_all(batch.as_bytes()) {
            Ok(()) => {
                self.shared.written.fetch_add(lines, Ordering::Relaxed);
                *failing = false;
            }
            Err(e) => {
                self.shared.failed.fetch_add(lines, Ordering::Relaxed);
                if !std::mem::replace(failing, true) {
                    eprintln!("strait: access log write failed: {e}");
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::{QueueLen, Value};
    use crate::test_dir::TestDir;
    use std::time::Instant;

    struct Rec(u64);

    impl Record for Rec {
        type Env = &'static str;
        fn write(&self, env: &&'static str, line: &mut Line) {
            line.field("who", Value::Str(env));
            line.field("n", Value::Num(self.0));
        }
    }

    /// A fresh directory, removed when the returned guard drops (after the test's log and
    /// reader, declared later, are dropped).
    fn dir(tag: &str) -> TestDir {
        TestDir::new(&format!("accesslog-{tag}"))
    }

    fn settings(path: &Path, queue: usize) -> LogSection {
        LogSection {
            access: Destination::File(path.to_path_buf()),
            access_format: Format::Text,
            access_queue: QueueLen(queue),
        }
    }

    fn wait_for(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn off_takes_nothing() {
        let log: AccessLog<Rec> = AccessLog::start(&LogSection::default(), "x").unwrap();
        assert!(!log.enabled());
        log.log(Rec(1));
        assert_eq!((log.dropped(), log.written()), (0, 0));
    }

    #[test]
    fn lines_reach_the_file_and_reopen_follows_a_rename() {
        let d = dir("reopen");
        let path = d.join("access.log");
        let log = AccessLog::start(&settings(&path, 16), "n").unwrap();
        log.log(Rec(1));
        assert!(wait_for(|| log.written() == 1));
        std::fs::rename(&path, d.join("access.log.1")).unwrap();
        log.reopen();
        assert!(wait_for(|| path.exists()), "reopened at the old path");
        log.log(Rec(2));
        assert!(wait_for(|| log.written() == 2));
        assert_eq!(
            std::fs::read_to_string(d.join("access.log.1")).unwrap(),
            "who=n n=1\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "who=n n=2\n");
    }

    #[test]
    fn a_path_that_cannot_be_opened_fails_at_start() {
        let d = dir("bad");
        let bad = d.join("no-such-dir").join("a.log");
        let e = AccessLog::<Rec>::start(&settings(&bad, 4), "n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no-such-dir"), "{e}");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        // A FIFO with a reader that never reads: the writer blocks once the pipe is full.
        let d = dir("fifo");
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let _reader = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap()
        };
        let log = AccessLog::start(&settings(&fifo, 4), "n").unwrap();
        let started = Instant::now();
        for n in 0..100_000 {
            log.log(Rec(n));
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never blocks");
        assert!(log.dropped() > 0);
        assert!(log.dropped() + log.written() <= 100_000);
    }
}
