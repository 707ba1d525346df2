//! `Greenlet::trim_stack`: a suspended greenlet gives back the stack pages
//! below where it suspended, and resumes with its frames intact.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;

use greenlet::{Greenlet, getcurrent};

/// Switches to the parent and back: the greenlet is suspended in between.
fn pause() {
    let parent = getcurrent().parent().expect("a greenlet has a parent");
    parent.switch(Box::new(()));
}

/// Fills a 1 KiB frame per level with a pattern of its depth, recurses, and
/// checks on the way back up that every frame still holds its pattern.
/// Returns the number of intact frames. When `deepest` is given, stores there
/// the address of the deepest frame.
#[inline(never)]
fn recurse(depth: usize, deepest: Option<&Cell<usize>>) -> usize {
    let mut frame = [depth as u8; 1024];
    black_box(&mut frame);
    let below = if depth == 0 {
        if let Some(cell) = deepest {
            cell.set(frame.as_ptr() as usize);
        }
        0
    } else {
        recurse(depth - 1, deepest)
    };
    black_box(&mut frame);
    below + usize::from(frame.iter().all(|&b| b == depth as u8))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("the page size is positive")
}

/// Whether the page holding `addr` is resident, from `mincore`.
fn resident(addr: usize) -> bool {
    let page = page_size();
    let mut vec = 0u8;
    // SAFETY: the page lies in a mapping of this process (a greenlet stack's
    // usable range); mincore only reads the page tables and writes one byte.
    let ret = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, page, &mut vec) };
    assert_eq!(ret, 0, "mincore: {}", std::io::Error::last_os_error());
    vec & 1 == 1
}

/// Deep recursion before and after a trim, with the locals of the frame that
/// suspended checked on every resume: a trimmed stack loses nothing it uses.
#[test]
fn trimmed_greenlet_resumes_with_its_frames_intact() {
    const DEPTH: usize = 48; // about 48 KiB of a 64 KiB stack
    let checks = Rc::new(Cell::new(0));
    let seen = checks.clone();
    let g = Greenlet::new(move |_| {
        let locals: Vec<u64> = (0..64).collect();
        let mut here = [0xA5u8; 512];
        black_box(&mut here);
        for round in 0..3 {
            assert_eq!(recurse(DEPTH, None), DEPTH + 1, "round {round}: deep frames intact");
            pause();
            black_box(&mut here);
            assert!(here.iter().all(|&b| b == 0xA5), "round {round}: the suspended frame's array intact");
            assert_eq!(locals, (0..64).collect::<Vec<u64>>(), "round {round}: heap data intact");
            seen.set(seen.get() + 1);
        }
        Box::new(7u32)
    });
    g.switch(Box::new(()));
    for round in 0..3 {
        let trimmed = g.trim_stack();
        assert!(trimmed >= 32 * 1024, "round {round}: at least the deep part is given back, got {trimmed}");
        assert_eq!(g.trim_stack(), 0, "round {round}: no second trim before it runs again");
        let out = g.switch(Box::new(()));
        if round == 2 {
            assert_eq!(*out.downcast::<u32>().expect("the result"), 7);
        }
    }
    assert_eq!(checks.get(), 3);
    assert!(g.is_dead());
    assert_eq!(g.trim_stack(), 0, "a dead greenlet has no stack");
}

/// The pages a greenlet touched deep down stay resident while it waits, until
/// it is trimmed.
#[test]
fn trim_gives_back_the_pages_below_the_stack_pointer() {
    let deepest = Rc::new(Cell::new(0usize));
    let cell = deepest.clone();
    let g = Greenlet::new(move |_| {
        assert_eq!(recurse(40, Some(&cell)), 41);
        pause();
        assert_eq!(recurse(40, Some(&cell)), 41, "deep again after the trim");
        Box::new(())
    });
    g.switch(Box::new(()));
    let addr = deepest.get();
    assert_ne!(addr, 0);
    assert!(resident(addr), "the deepest frame's page is resident before the trim");
    assert!(g.trim_stack() > 0);
    assert!(!resident(addr), "the deepest frame's page was given back");
    g.switch(Box::new(()));
    assert!(g.is_dead());
}

/// Nothing is trimmed from a greenlet that is not suspended.
#[test]
fn only_suspended_greenlets_are_trimmed() {
    let pending = Greenlet::new(|v| v);
    assert_eq!(pending.trim_stack(), 0, "pending: no stack yet");
    assert_eq!(getcurrent().trim_stack(), 0, "the main greenlet");
    let g = Greenlet::new(|_| {
        pause();
        // Suspended once, so its recorded stack pointer is set, but running.
        assert_eq!(getcurrent().trim_stack(), 0, "the running greenlet");
        Box::new(())
    });
    g.switch(Box::new(()));
    g.switch(Box::new(()));
    assert!(g.is_dead());
    assert_eq!(g.trim_stack(), 0, "dead");
}

/// Recurses `depth` levels of a small frame, then pauses at the bottom;
/// returns how many frames still hold their pattern after the pause.
#[inline(never)]
fn pause_at_depth(depth: usize) -> usize {
    let mut frame = [depth as u8; 48];
    black_box(&mut frame);
    let below = if depth == 0 { pause_and_count() } else { pause_at_depth(depth - 1) };
    black_box(&mut frame);
    below + usize::from(frame.iter().all(|&b| b == depth as u8))
}

#[inline(never)]
fn pause_and_count() -> usize {
    pause();
    0
}

/// The frames of the switch itself lie just below where the greenlet
/// suspended; suspending at every offset within a page makes sure a trim
/// keeps them even when they straddle a page boundary.
#[test]
fn trim_keeps_the_switch_frames_wherever_the_stack_pointer_falls() {
    const DEPTHS: usize = 160; // frames of 48 bytes or more: over a page of offsets
    let g = Greenlet::new(|_| {
        assert_eq!(recurse(40, None), 41);
        for depth in 0..DEPTHS {
            assert_eq!(pause_at_depth(depth), depth + 1, "frames intact after pausing {depth} deep");
        }
        Box::new(())
    });
    g.switch(Box::new(()));
    for _ in 0..DEPTHS {
        g.trim_stack();
        g.switch(Box::new(()));
    }
    assert!(g.is_dead());
}
