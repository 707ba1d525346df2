//! Greenlet-local storage.

use std::any::Any;
use std::fmt;
use std::rc::Rc;

use crate::greenlet::getcurrent;

/// The values of one greenlet, keyed by the address of their `GreenletLocal`.
pub(crate) type LocalMap = Vec<(usize, Rc<dyn Any>)>;

/// A value of which every greenlet has its own copy, like `thread_local!` one
/// level down. Declare it with [`greenlet_local!`](crate::greenlet_local).
///
/// Each greenlet starts with no value; the first access in a greenlet creates
/// its value with the initialiser. The value is dropped when the greenlet
/// finishes, inside the greenlet, so its destructor may still switch. The
/// main greenlet's values live until its thread exits.
///
/// As with `thread_local!`, access is shared (`&T`): use `Cell` or `RefCell`
/// for values that change.
///
/// ```
/// use std::cell::Cell;
/// use runtime::greenlet::{Greenlet, greenlet_local};
///
/// greenlet_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
///
/// REQUESTS.with(|n| n.set(5));
/// let g = Greenlet::new(|_| {
///     REQUESTS.with(|n| n.set(n.get() + 1));
///     Box::new(REQUESTS.with(Cell::get))
/// });
/// assert_eq!(*g.switch(Box::new(())).downcast::<u32>().unwrap(), 1);
/// assert_eq!(REQUESTS.with(Cell::get), 5);
/// ```
pub struct GreenletLocal<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> GreenletLocal<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> GreenletLocal<T> {
        GreenletLocal { init }
    }

    /// Calls `f` with the current greenlet's value, creating it first if this
    /// greenlet has none yet.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let current = getcurrent();
        let found = current.inner().locals.borrow().iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let value = match found {
            Some(value) => value,
            None => {
                // Not borrowed while `init` runs: it may use other locals.
                let value: Rc<dyn Any> = Rc::new((self.init)());
                current.inner().locals.borrow_mut().push((key, value.clone()));
                value
            }
        };
        drop(current);
        f(value.downcast_ref::<T>().expect("a greenlet-local value has the type of its key"))
    }
}

impl<T: 'static> fmt::Debug for GreenletLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenletLocal").finish_non_exhaustive()
    }
}

/// Declares greenlet-local statics: each greenlet sees its own value.
///
/// ```
/// use std::cell::RefCell;
/// runtime::greenlet::greenlet_local! {
///     /// The request id of the connection this greenlet serves.
///     pub static REQUEST_ID: RefCell<Option<u64>> = RefCell::new(None);
///     static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::new());
/// }
/// REQUEST_ID.with(|id| *id.borrow_mut() = Some(7));
/// ```
#[macro_export]
macro_rules! greenlet_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::GreenletLocal<$t> = $crate::GreenletLocal::new(|| $init);
        $crate::greenlet_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])* $vis static $name: $crate::GreenletLocal<$t> = $crate::GreenletLocal::new(|| $init);
    };
}
