//! [`Imap`]: the results of `Pool::imap`, `imap_unordered` and
//! `imap_bounded`, as they come.
//!
//! A feeder greenlet (outside the pool) spawns the items into the pool as it
//! has room and sends each member's handle to the iterator, in the items'
//! order. In order, the iterator joins them one by one. Out of order, each
//! member says when it is done (a guard in its closure, dropped also when it
//! was killed before it ran) and the iterator joins whichever did. With a
//! bound, the feeder takes a permit per item and the iterator gives it back
//! when it hands the result over.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::JoinError;
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{OwnedSemaphorePermit, Semaphore};
use crate::task::pool::Pool;
use crate::task::{JoinHandle, KillOnDrop};

/// A spawned item: its index, its member's handle, and its permit of the
/// bound.
type Spawned<T> = (usize, JoinHandle<T>, Option<OwnedSemaphorePermit>);

/// Spawned items not joined yet, by index.
type Members<T> = HashMap<usize, (JoinHandle<T>, Option<OwnedSemaphorePermit>)>;

/// What an out-of-order iterator hears.
enum Done {
    /// The member of this index finished.
    Item(usize),
    /// The feeder has spawned every item.
    Fed,
}

/// Sends its index when the item's closure is done (returned, unwound, or
/// dropped unrun).
struct Finished {
    index: usize,
    done: Sender<Done>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        // An unbounded send never parks; the iterator may be gone.
        let _ = self.done.send(Done::Item(self.index));
    }
}

/// The results of [`Pool::imap`](crate::Pool::imap),
/// [`imap_unordered`](crate::Pool::imap_unordered) and
/// [`imap_bounded`](crate::Pool::imap_bounded): an iterator that parks for
/// each next result. A panic or kill of an item is its `Err`; the others go
/// on. Dropping it kills the greenlet that spawns the items (those spawned
/// already run on in the pool).
pub struct Imap<T> {
    feeder: KillOnDrop<()>,
    spawned: Receiver<Spawned<T>>,
    /// Out of order: what finished, and the members not joined yet.
    unordered: Option<(Receiver<Done>, Members<T>)>,
    fed: bool,
}

impl<T: 'static> Imap<T> {
    /// Starts the feeder spawning `items` into `pool`.
    #[track_caller]
    pub(crate) fn start<I: 'static>(
        pool: Pool,
        f: impl Fn(I) -> T + 'static,
        items: impl Iterator<Item = I> + 'static,
        ordered: bool,
        bound: Option<usize>,
    ) -> Imap<T> {
        let (spawned_tx, spawned) = channel::unbounded();
        let (done_tx, done) = channel::unbounded();
        let bound = bound.map(|n| Arc::new(Semaphore::new(n)));
        let f = Rc::new(f);
        let feeder = crate::task::Builder::new().name("imap").spawn(move || {
            for (index, item) in items.enumerate() {
                let permit = bound.as_ref().map(Semaphore::acquire_owned);
                let finished = (!ordered).then(|| Finished { index, done: done_tx.clone() });
                let f = f.clone();
                let handle = pool.spawn(move || {
                    let _finished = finished;
                    f(item)
                });
                if spawned_tx.send((index, handle, permit)).is_err() {
                    return; // the iterator is gone
                }
            }
            let _ = done_tx.send(Done::Fed);
        });
        Imap {
            feeder: feeder.kill_on_drop(),
            spawned,
            unordered: (!ordered).then(|| (done, HashMap::new())),
            fed: false,
        }
    }
}

impl<T> Iterator for Imap<T> {
    type Item = Result<T, JoinError>;

    fn next(&mut self) -> Option<Result<T, JoinError>> {
        let Some((done, members)) = &mut self.unordered else {
            // In order: the next member the feeder spawned, once it finishes.
            let (_, handle, permit) = self.spawned.recv().ok()?;
            let result = handle.join();
            drop(permit);
            return Some(result);
        };
        loop {
            if self.fed && members.is_empty() {
                return None;
            }
            match done.recv() {
                Ok(Done::Item(index)) => {
                    // Its handle was sent before it could run.
                    members.extend(self.spawned.try_iter().map(|(index, handle, permit)| (index, (handle, permit))));
                    if let Some((handle, permit)) = members.remove(&index) {
                        let result = handle.join();
                        drop(permit);
                        return Some(result);
                    }
                }
                Ok(Done::Fed) => {
                    members.extend(self.spawned.try_iter().map(|(index, handle, permit)| (index, (handle, permit))));
                    self.fed = true;
                }
                // The feeder died (killed, or its items panicked).
                Err(_) => return None,
            }
        }
    }
}

impl<T> fmt::Debug for Imap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap").field("feeder", &*self.feeder).field("ordered", &self.unordered.is_none()).finish()
    }
}
