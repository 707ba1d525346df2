//! Where a task's outcome goes, as the hub holds it: its join handle's shared
//! state, type-erased, with the id of its concrete type.
//!
//! The task's own body, and the spawn that reuses a finished state, know the
//! concrete type and find it back here. Keeping the type's id beside the
//! pointer makes that a comparison of constants: `Any`'s downcast would make
//! two virtual calls and read a 16-byte value just written to the stack,
//! a measurable part of a spawn.

#![allow(unsafe_code)]

use std::any::TypeId;
use std::ops::Deref;
use std::sync::Arc;

use crate::error::JoinError;

/// Where a task's outcome goes: its join handle's shared state. The task
/// stores its value there itself; the hub, which knows no types, can only
/// record that it failed (killed before it ran, leaked at shutdown).
pub(crate) trait Completion {
    fn fail(&self, error: JoinError);
    /// What a kill unwinds the task with instead of `GreenletExit`, if its
    /// killer gave one (`JoinHandle::kill_with`); taken once.
    fn take_kill_payload(&self) -> Option<Box<dyn std::any::Any + Send>> {
        None
    }
}

/// A [`Completion`] of a type known only to whoever made it.
pub(crate) struct ErasedCompletion {
    state: Arc<dyn Completion>,
    /// The type behind `state`, as `new` was given it; never changed.
    type_id: TypeId,
}

impl ErasedCompletion {
    pub(crate) fn new<C: Completion + 'static>(state: Arc<C>) -> ErasedCompletion {
        ErasedCompletion { state, type_id: TypeId::of::<C>() }
    }

    /// Whether the state is a `C`.
    #[inline]
    pub(crate) fn is<C: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<C>()
    }

    /// The state as the `C` it is, if it is one.
    #[inline]
    pub(crate) fn downcast_ref<C: Completion + 'static>(&self) -> Option<&C> {
        if !self.is::<C>() {
            return None;
        }
        // SAFETY: `type_id` is that of the type `new` was given, so `state`
        // was made by unsizing an `Arc<C>`: its data pointer (the metadata
        // dropped by `cast`) points at that `C`, which lives as long as
        // `state`, borrowed here for as long as `self`.
        Some(unsafe { &*Arc::as_ptr(&self.state).cast::<C>() })
    }

    /// The state as the `Arc<C>` it was made from, or itself back if it is
    /// not a `C`.
    pub(crate) fn downcast<C: Completion + 'static>(self) -> Result<Arc<C>, ErasedCompletion> {
        if !self.is::<C>() {
            return Err(self);
        }
        let raw = Arc::into_raw(self.state).cast::<C>();
        // SAFETY: as in `downcast_ref`, `state` was made by unsizing an
        // `Arc<C>`, and `raw` comes from its `into_raw`: rebuilding the
        // `Arc<C>` from it gives back the original, with the same layout and
        // reference count.
        Ok(unsafe { Arc::from_raw(raw) })
    }

    /// Whether this is the only reference to the state (no other `Arc`, no
    /// `Weak`), as of `Relaxed` loads: a caller that relies on it fences.
    pub(crate) fn is_unique(&self) -> bool {
        Arc::strong_count(&self.state) == 1 && Arc::weak_count(&self.state) == 0
    }
}

impl Deref for ErasedCompletion {
    type Target = dyn Completion;

    fn deref(&self) -> &(dyn Completion + 'static) {
        &*self.state
    }
}
