//! Uploads are committed (fsync, rename) off the event loop, on a thread of their own, so a
//! slow disk never stalls the transfers of everyone else.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use crate::tftp::server::TransferId;
use crate::tftp::{Storage, StorageError};

pub(crate) type Outcome = (TransferId, Result<(), StorageError>);

pub(crate) struct Committer<S> {
    jobs: Option<Sender<(TransferId, S)>>,
    done: Receiver<Outcome>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Storage + Send + 'static> Committer<S> {
    /// Starts the thread; `waker` wakes the loop when a commit is done.
    pub(crate) fn start(waker: Arc<mio::Waker>) -> io::Result<Committer<S>> {
        let (jobs, queue) = mpsc::channel::<(TransferId, S)>();
        let (report, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("tftp-commit".into())
            .spawn(move || {
                for (id, mut storage) in queue {
                    let result = storage.commit();
                    drop(storage);
                    if report.send((id, result)).is_err() {
                        break;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Committer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    pub(crate) fn submit(&self, id: TransferId, storage: S) -> Result<(), (TransferId, S)> {
        match &self.jobs {
            Some(jobs) => jobs.send((id, storage)).map_err(|e| e.0),
            None => Err((id, storage)),
        }
    }

    /// Commits that finished since the last call.
    pub(crate) fn finished(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.done.try_iter()
    }
}

/// Waits for the commits already submitted: their uploads are in place or gone when the
/// loop that owned them returns.
impl<S> Drop for Committer<S> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
