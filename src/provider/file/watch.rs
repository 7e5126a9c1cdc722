//! Watches the input path and reloads it on change.
//!
//! Each change re-reads the whole input (parsing only the documents whose
//! text changed). The first good read goes out as one `Reset`; later ones
//! as one `Changes` event holding only the objects that differ, so the
//! index and translation see only what was edited. A bad read keeps the last
//! good set and is published in [`ProviderState`] (and logged with file and
//! line).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{DocumentCache, LoadError, MetadataStamper, Skipped, load_path_cached};
use crate::object::Object;
use crate::provider::Event;

/// How long to wait, after a file was written but not yet closed, for the
/// write to finish before reloading anyway.
const SETTLE: Duration = Duration::from_millis(10);
/// How often the input is re-read when no file watcher could be set up.
const POLL: Duration = Duration::from_secs(2);

/// What the file provider reports about its input.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProviderState {
    /// The path being served.
    pub path: PathBuf,
    /// Reads that succeeded.
    pub loads: u64,
    /// Reads that failed (the last good config was kept).
    pub failures: u64,
    /// The error of the latest read, if it failed.
    pub last_error: Option<LoadError>,
    /// Documents the latest good read skipped.
    pub skipped: Vec<Skipped>,
}

/// What a file system event says about the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Something was created or written: more may follow.
    Started,
    /// A write finished (the file was closed after writing, or another
    /// renamed into place): the input is whole and can be read now.
    Finished,
}

impl Change {
    fn of(kind: &notify::EventKind) -> Option<Change> {
        use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                Some(Change::Finished)
            }
            // Opening and reading a file are events too (inotify reports
            // them): reacting to them would make every read trigger the next.
            EventKind::Access(_) => None,
            // Removals and the rest may be the start of a larger change
            // (a checkout replacing many files).
            _ => Some(Change::Started),
        }
    }
}

/// What the provider keeps between reads.
#[derive(Debug, Default)]
struct Reader {
    cache: DocumentCache,
    stamper: MetadataStamper,
    /// Whether a first set went out: later reads send only what changed.
    sent: bool,
}

/// Reads `path` once, parsing only documents not in the cache and stamping
/// metadata; returns the event that brings the index up to date (`None`
/// when nothing changed).
fn read(
    path: &Path,
    reader: &mut Reader,
    state: &mut ProviderState,
) -> Result<Option<Event>, LoadError> {
    let Reader {
        cache,
        stamper,
        sent,
    } = reader;
    let started = std::time::Instant::now();
    match load_path_cached(path, cache) {
        Ok(loaded) => {
            let parsed = started.elapsed();
            let stamped = stamper.stamp_shared(loaded.objects, k8s_openapi::jiff::Timestamp::now());
            tracing::debug!(
                objects = stamped.objects.len(),
                changed = stamped.changed.len(),
                removed = stamped.removed.len(),
                parse_ms = parsed.as_secs_f64() * 1e3,
                stamp_ms = (started.elapsed() - parsed).as_secs_f64() * 1e3,
                "config read"
            );
            for skipped in &loaded.skipped {
                tracing::warn!(file = %skipped.file.display(), line = skipped.line, reason = %skipped.reason, "skipped document");
            }
            state.loads += 1;
            state.last_error = None;
            state.skipped = loaded.skipped;
            let owned = |objects: Vec<Arc<Object>>| -> Vec<Object> {
                objects.iter().map(|o| (**o).clone()).collect()
            };
            let event = if !*sent {
                *sent = true;
                Some(Event::Reset(owned(stamped.objects)))
            } else if stamped.changed.is_empty() && stamped.removed.is_empty() {
                None
            } else {
                Some(Event::Changes {
                    apply: owned(stamped.changed),
                    delete: stamped.removed,
                })
            };
            Ok(event)
        }
        Err(error) => {
            tracing::error!(%error, "config not loaded; keeping the last good config");
            state.failures += 1;
            state.last_error = Some(error.clone());
            Err(error)
        }
    }
}

/// Loads `path` now and then on every change, sending a `Reset` per good
/// read. Returns the first read's result (so a caller can refuse to start on
/// bad input) and the provider's state; the task ends when `events` closes.
pub fn spawn_file_provider(
    path: PathBuf,
    events: mpsc::Sender<Event>,
) -> (Result<(), LoadError>, watch::Receiver<ProviderState>) {
    let mut reader = Reader::default();
    let mut state = ProviderState {
        path: path.clone(),
        ..Default::default()
    };
    let first = read(&path, &mut reader, &mut state);
    let first = match first {
        Ok(None) => Ok(()),
        Ok(Some(event)) => events.try_send(event).map_err(|e| LoadError {
            file: path.clone(),
            line: None,
            message: format!("cannot hand the config on: {e}"),
        }),
        Err(e) => Err(e),
    };
    let (state_tx, state_rx) = watch::channel(state.clone());

    let (notify_tx, mut notify_rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && let Some(change) = Change::of(&event.kind)
        {
            let _ = notify_tx.send(change);
        }
    });
    // Watch the directory holding a single file, so editors that replace
    // the file by renaming are seen.
    let watch_root = if path.is_dir() {
        path.clone()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let watcher = match watcher {
        Ok(mut w) => match w.watch(&watch_root, RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the config path; re-reading it periodically");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "no file watcher; re-reading the config periodically");
            None
        }
    };

    tokio::spawn(async move {
        // Without a watcher, fall back to polling; with one, re-read only
        // on change (a large config costs real CPU to parse).
        let polling = watcher.is_none();
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = notify_rx.recv(), if !polling => {
                    let Some(mut change) = got else {
                        return;
                    };
                    // A write in progress may be followed by more: wait for
                    // it to finish (or settle) before reading.
                    let settle = tokio::time::sleep(SETTLE);
                    tokio::pin!(settle);
                    while change == Change::Started {
                        tokio::select! {
                            next = notify_rx.recv() => match next {
                                Some(next) => change = next,
                                None => return,
                            },
                            _ = &mut settle => break,
                        }
                    }
                    while notify_rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(POLL), if polling => {}
                _ = events.closed() => return,
            }
            // Parsing a large config takes real CPU: keep it off the
            // workers that serve traffic.
            let (returned, result) = {
                let path = path.clone();
                let mut state_copy = state.clone();
                let mut owned = std::mem::take(&mut reader);
                match tokio::task::spawn_blocking(move || {
                    let result = read(&path, &mut owned, &mut state_copy);
                    ((owned, state_copy), result)
                })
                .await
                {
                    Ok(pair) => pair,
                    Err(_) => return,
                }
            };
            (reader, state) = returned;
            if let Ok(Some(event)) = result
                && events.send(event).await.is_err()
            {
                return;
            }
            state_tx.send_if_modified(|current| {
                let changed = current.loads != state.loads
                    || current.failures != state.failures
                    || current.last_error != state.last_error;
                if changed {
                    *current = state.clone();
                }
                changed
            });
        }
    });
    (first, state_rx)
}

#[cfg(test)]
mod tests {
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, ModifyKind, RemoveKind,
        RenameMode,
    };

    use super::Change;

    #[test]
    fn finished_writes_are_read_at_once_and_the_rest_settles() {
        let finished = [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
        ];
        for kind in finished {
            assert_eq!(Change::of(&kind), Some(Change::Finished), "{kind:?}");
        }
        let started = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(RemoveKind::File),
        ];
        for kind in started {
            assert_eq!(Change::of(&kind), Some(Change::Started), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert_eq!(Change::of(&kind), None, "{kind:?}: our own reads");
        }
    }
}
