//! The hub gives back the stack pages of greenlets parked longer than
//! `Builder::stack_trim_after`, and they resume with their frames intact.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use runtime_scheduler::sync::Event;
use runtime_scheduler::{Builder, sleep, spawn};

/// Fills a 1 KiB frame per level with its depth, recurses, and returns how
/// many frames still hold their pattern on the way back; stores the address
/// of the deepest frame in `deepest`.
#[inline(never)]
fn recurse(depth: usize, deepest: &Cell<usize>) -> usize {
    let mut frame = [depth as u8; 1024];
    black_box(&mut frame);
    let below = if depth == 0 {
        deepest.set(frame.as_ptr() as usize);
        0
    } else {
        recurse(depth - 1, deepest)
    };
    black_box(&mut frame);
    below + usize::from(frame.iter().all(|&b| b == depth as u8))
}

/// Whether the page holding `addr` is resident, from `mincore`.
fn resident(addr: usize) -> bool {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let mut vec = 0u8;
    // SAFETY: the page lies in a greenlet stack of this process, which stays
    // mapped while the test runs; mincore only reads the page tables.
    let ret = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, &mut vec) };
    assert_eq!(ret, 0, "mincore: {}", std::io::Error::last_os_error());
    vec & 1 == 1
}

/// Spawns a greenlet that goes 40 KiB deep, then waits on an event with a
/// frame of data it checks when woken, and deep again. Returns the address of
/// its deepest frame, the event, and its join handle.
fn deep_waiter() -> (usize, Rc<Event>, runtime_scheduler::JoinHandle<bool>) {
    let event = Rc::new(Event::new());
    let deepest = Rc::new(Cell::new(0));
    let (e, d) = (event.clone(), deepest.clone());
    let handle = spawn(move || {
        let mut kept = [0x5Au8; 256];
        let deep = recurse(40, &d) == 41;
        e.wait();
        black_box(&mut kept);
        deep && kept.iter().all(|&b| b == 0x5A) && recurse(40, &d) == 41
    });
    while deepest.get() == 0 {
        sleep(Duration::from_millis(1));
    }
    (deepest.get(), event, handle)
}

#[test]
fn parked_greenlets_give_back_their_deep_stack_pages() {
    Builder::new().stack_trim_after(Some(Duration::from_millis(20))).run(|| {
        let (addr, event, handle) = deep_waiter();
        // A hang guard, not a timing assertion: the trim happens on one of
        // the hub's idle turns after 20 ms.
        let give_up = Instant::now() + Duration::from_secs(10);
        while resident(addr) && Instant::now() < give_up {
            sleep(Duration::from_millis(10));
        }
        assert!(!resident(addr), "the parked greenlet's deepest page was given back");
        event.set();
        assert!(handle.join().expect("the waiter finished"), "its frames were intact after the trim");
    });
}

#[test]
fn stack_trim_after_none_keeps_the_pages() {
    Builder::new().stack_trim_after(None).run(|| {
        let (addr, event, handle) = deep_waiter();
        for _ in 0..5 {
            sleep(Duration::from_millis(10));
        }
        assert!(resident(addr), "nothing was trimmed");
        event.set();
        assert!(handle.join().expect("the waiter finished"));
    });
}
