//! The `hooks` feature and regular files: in a greenlet, a read the page
//! cache cannot answer, a large write, `fsync` and `fdatasync` run on the
//! blocking pool while the greenlet parks (so the hub runs its other
//! greenlets meanwhile); cached reads and small writes stay inline. Neither
//! is observed by timing: "parks" means a greenlet spawned just before the
//! call (which runs only once the caller parks) has run when the call
//! returns, and "runs on the pool" that the hub's thread passed (almost)
//! none of the call's bytes to the kernel (`/proc/thread-self/io`).

mod util;

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// Spawns a greenlet that sets a flag: it runs only once the caller parks.
fn parked_flag() -> Rc<Cell<bool>> {
    let flag = Rc::new(Cell::new(false));
    let set = flag.clone();
    runtime::spawn(move || set.set(true));
    flag
}

/// Whether `f` parked the calling greenlet (and its result).
fn parks<T>(f: impl FnOnce() -> T) -> (bool, T) {
    let flag = parked_flag();
    let value = f();
    let parked = flag.get();
    runtime::yield_now(); // the flag's greenlet ends either way
    (parked, value)
}

/// Whether `f`, called up to 20 times, parked the calling greenlet at least
/// once. A call on the pool that finishes (a fast `fsync`) before its
/// greenlet looks does not park; twenty in a row do not, unless the calls
/// never leave the hub's thread.
fn parks_once(mut f: impl FnMut()) -> bool {
    (0..20).any(|_| parks(&mut f).0)
}

/// Bytes the calling thread has passed to read and to write system calls
/// so far (`rchar`, `wchar`), if the kernel counts them.
fn thread_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    let field = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok());
    Some((field("rchar:")?, field("wchar:")?))
}

/// Whether `f`, which reads or writes `len` bytes, ran off the calling
/// (hub's) thread: the thread read and wrote less than half of them itself.
/// Without the kernel's counts, whether it parked the greenlet (which a
/// call on the pool does unless the pool was done before it looked).
fn off_the_hub<T>(len: u64, f: impl FnOnce() -> T) -> (bool, T) {
    let Some((read, written)) = thread_io() else { return parks(f) };
    let value = f();
    let (read_after, written_after) = thread_io().unwrap();
    ((read_after - read) + (written_after - written) < len / 2, value)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_large_write_and_fsync_of_a_file_park_the_greenlet_and_the_data_arrives() {
    let dir = util::TempDir::new();
    let path = dir.join("big");
    util::run(move || {
        let data = pattern(4 << 20);
        let mut file = File::create(&path).unwrap();
        let (pooled, written) = off_the_hub(data.len() as u64, || file.write(&data).unwrap());
        assert!(pooled, "a 4 MiB write ran on the hub's thread");
        assert!(written > 0);
        file.write_all(&data[written..]).unwrap();
        assert!(parks_once(|| file.sync_all().unwrap()), "fsync ran on the hub's thread");
        assert!(parks_once(|| file.sync_data().unwrap()), "fdatasync ran on the hub's thread");
        assert_eq!(std::fs::read(&path).unwrap(), data);
    });
}

#[test]
fn small_writes_and_cached_reads_of_a_file_stay_inline() {
    let dir = util::TempDir::new();
    let path = dir.join("small");
    util::run(move || {
        let mut file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let (parked, ()) = parks(|| file.write_all(b"hello, file").unwrap());
        assert!(!parked, "a small write parked");
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut back = String::new();
        let (parked, _) = parks(|| file.read_to_string(&mut back).unwrap());
        assert!(!parked, "a read of cached data parked");
        assert_eq!(back, "hello, file");
    });
}

/// Whether the first page of `file` (`len` bytes long) is in the page cache.
fn first_page_cached(file: &File, len: usize) -> bool {
    // SAFETY: a private read-only mapping of an open file, looked at with
    // mincore and unmapped; no memory of ours is touched but `resident`.
    unsafe {
        let map = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0);
        assert_ne!(map, libc::MAP_FAILED);
        let mut resident = [0u8; 1];
        assert_eq!(libc::mincore(map, 1, resident.as_mut_ptr()), 0);
        libc::munmap(map, len);
        resident[0] & 1 != 0
    }
}

/// Drops `file`'s pages from the page cache (written back first).
fn evict(file: &File, len: usize) {
    file.sync_all().unwrap(); // clean pages can be dropped
    for _ in 0..50 {
        // SAFETY: advice on an open descriptor, no memory involved.
        let advised = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(advised, 0);
        if !first_page_cached(file, len) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the kernel kept the file in the page cache: nothing to test");
}

#[test]
fn a_read_the_page_cache_cannot_answer_runs_on_the_pool_and_returns_the_data() {
    let dir = util::TempDir::new();
    let path = dir.join("cold");
    let data = pattern(1 << 20);
    std::fs::write(&path, &data).unwrap();
    util::run(move || {
        let file = File::open(&path).unwrap();
        evict(&file, data.len());
        let mut back = vec![0; data.len()];
        let (pooled, ()) = off_the_hub(data.len() as u64, || file.read_exact_at(&mut back, 0).unwrap());
        assert!(pooled, "a read from the disk ran on the hub's thread");
        assert_eq!(back, data);
    });
}

#[test]
fn positioned_and_vectored_file_io_from_greenlets_keeps_its_semantics() {
    let dir = util::TempDir::new();
    let path = dir.join("vectored");
    util::run(move || {
        let mut file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let (a, b) = (pattern(40_000), vec![7u8; 30_000]);
        let written = file.write_vectored(&[IoSlice::new(&a), IoSlice::new(&b)]).unwrap();
        assert_eq!(written, 70_000, "one writev to a regular file writes everything");
        file.write_all_at(&[9; 20_000], 10_000).unwrap();
        let mut back = vec![0; 70_000];
        file.read_exact_at(&mut back, 0).unwrap();
        let mut expected = [a, b].concat();
        expected[10_000..30_000].fill(9);
        assert_eq!(back, expected);
        // The file position moved with the writev only.
        assert_eq!(file.stream_position().unwrap(), 70_000);
        let mut rest = Vec::new();
        assert_eq!(file.read_to_end(&mut rest).unwrap(), 0);
        // Errors come back as such: a large write to a file opened read-only.
        let read_only = File::open(&path).unwrap();
        let error = (&read_only).write(&[0; 100_000]).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EBADF));
    });
}

#[test]
fn many_greenlets_write_and_read_their_own_files_concurrently() {
    let dir = util::TempDir::new();
    let base = dir.path().to_path_buf();
    util::run(move || {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let path = base.join(format!("file-{i}"));
                runtime::spawn(move || {
                    let data: Vec<u8> = pattern(256 * 1024 + i).into_iter().map(|b| b ^ i as u8).collect();
                    let mut file = File::create(&path).unwrap();
                    file.write_all(&data).unwrap();
                    file.sync_data().unwrap();
                    drop(file);
                    std::fs::read(&path).unwrap() == data
                })
            })
            .collect();
        assert!(workers.into_iter().all(|w| w.join().unwrap()));
    });
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &std::path::Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// How a test opens a FIFO: for reading (waits for a writer) or for
/// writing (waits for a reader), through one of the interposed calls.
#[derive(Clone, Copy, Debug)]
enum Opener {
    /// `File::open` (`open64`), for reading.
    StdOpen,
    /// `File::create` (`open64` with `O_CREAT | O_TRUNC`), for writing.
    StdCreate,
    /// `open`, for reading.
    Open,
    /// `openat` relative to the directory, for reading.
    OpenAt,
    /// `creat`, for writing.
    Creat,
}

impl Opener {
    fn reads(self) -> bool {
        matches!(self, Opener::StdOpen | Opener::Open | Opener::OpenAt)
    }

    fn open(self, dir: &std::path::Path, name: &str) -> File {
        use std::os::fd::FromRawFd;
        let path = dir.join(name);
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let fd = match self {
            Opener::StdOpen => return File::open(&path).unwrap(),
            Opener::StdCreate => return File::create(&path).unwrap(),
            // SAFETY: a NUL-terminated path.
            Opener::Open => unsafe { libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) },
            Opener::OpenAt => {
                let dir = File::open(dir).unwrap();
                let c_name = std::ffi::CString::new(name).unwrap();
                // SAFETY: an open directory and a NUL-terminated name.
                unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
            }
            // SAFETY: a NUL-terminated path.
            Opener::Creat => unsafe { libc::creat(c_path.as_ptr(), 0o600) },
        };
        assert!(fd >= 0, "{self:?}: {}", std::io::Error::last_os_error());
        // SAFETY: the descriptor just opened, owned from here on.
        unsafe { File::from_raw_fd(fd) }
    }
}

#[test]
fn a_greenlet_opening_a_fifo_parks_until_another_greenlet_opens_its_other_end() {
    let dir = util::TempDir::new();
    let base = dir.path().to_path_buf();
    util::guarded("a greenlet's open of a FIFO", move || {
        let (ticks, _ticker) = util::ticker();
        for opener in [Opener::StdOpen, Opener::StdCreate, Opener::Open, Opener::OpenAt, Opener::Creat] {
            let name = format!("fifo-{opener:?}");
            mkfifo(&base.join(&name));
            let opened = Rc::new(Cell::new(false));
            let first = runtime::spawn({
                let (base, name, opened) = (base.clone(), name.clone(), opened.clone());
                // Blocks in open(2) until the other end is opened.
                move || {
                    let fifo = opener.open(&base, &name);
                    opened.set(true);
                    fifo
                }
            });
            let before = ticks.get();
            util::wait_until("the ticker to run while a greenlet opens a FIFO", || ticks.get() > before + 3);
            assert!(!opened.get(), "{opener:?} opened a FIFO without its other end");
            let other = OpenOptions::new().read(!opener.reads()).write(opener.reads()).open(base.join(&name));
            let (mut reader, mut writer) = (first.join().unwrap(), other.unwrap());
            if !opener.reads() {
                std::mem::swap(&mut reader, &mut writer);
            }
            writer.write_all(b"through the fifo").unwrap();
            drop(writer);
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            assert_eq!(text, "through the fifo", "{opener:?}");
        }
    });
}

#[test]
fn opening_and_creating_files_in_greenlets_keeps_errors_and_modes() {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = util::TempDir::new();
    let base = dir.path().to_path_buf();
    util::run(move || {
        let path = base.join("made");
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        (&file).write_all(b"made").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "the mode was lost");
        for opener in [Opener::StdOpen, Opener::Open, Opener::OpenAt] {
            let mut text = String::new();
            opener.open(&base, "made").read_to_string(&mut text).unwrap();
            assert_eq!(text, "made", "{opener:?}");
        }
        let mut created = Opener::Creat.open(&base, "created");
        created.write_all(b"created").unwrap();
        assert_eq!(std::fs::metadata(base.join("created")).unwrap().permissions().mode() & 0o700, 0o600);
        // O_TMPFILE takes a mode too.
        let unnamed = OpenOptions::new().read(true).write(true).custom_flags(libc::O_TMPFILE).mode(0o600).open(&base);
        if let Ok(unnamed) = unnamed {
            assert_eq!(unnamed.metadata().unwrap().permissions().mode() & 0o777, 0o600, "O_TMPFILE's mode was lost");
        }
        // Errors as libc reports them.
        let error = File::open(base.join("missing")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
        let error = OpenOptions::new().write(true).create_new(true).open(&path).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EEXIST));
        let error = File::open(path.join("below a file")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOTDIR));
        // SAFETY: a null path, which libc rejects.
        let fd = unsafe { libc::open(std::ptr::null(), libc::O_RDONLY) };
        assert_eq!((fd, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EFAULT)));
        // O_TRUNC truncates.
        File::create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    });
}

#[test]
fn opens_under_dev_proc_and_sys_and_with_o_path_stay_on_the_hub() {
    use std::os::unix::fs::OpenOptionsExt;
    util::run(|| {
        for path in ["/dev/null", "/proc/self/status", "/sys/kernel/mm"] {
            if std::fs::metadata(path).is_err() {
                continue; // not in this container
            }
            let (parked, file) = parks(|| File::open(path));
            assert!(!parked, "opening {path} parked");
            file.unwrap();
        }
        let (parked, file) = parks(|| OpenOptions::new().read(true).custom_flags(libc::O_PATH).open("/"));
        assert!(!parked, "an O_PATH open parked");
        file.unwrap();
    });
}

#[test]
fn a_timed_out_open_returns_and_the_descriptor_it_opened_later_is_closed() {
    let dir = util::TempDir::new();
    let path = dir.join("fifo");
    mkfifo(&path);
    util::guarded("a timed-out open of a FIFO", move || {
        let timed_out = runtime::timeout(util::ms(20), || {
            let error = File::open(&path).unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        });
        assert!(timed_out.is_err(), "the scope timed out");
        // The abandoned open completes once a writer comes, and its
        // descriptor is closed: the writer then sees no reader.
        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        util::wait_until("the abandoned read end to be closed", || match (&writer).write(b"x") {
            Ok(_) => false,
            Err(error) => {
                assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
                true
            }
        });
    });
}

#[test]
fn a_greenlet_reading_a_cached_file_lets_the_hub_poll_between_budgets() {
    const LEN: usize = 32 << 20;
    let dir = util::TempDir::new();
    let path = dir.join("cached");
    std::fs::write(&path, vec![1u8; LEN]).unwrap(); // in the page cache
    util::run(move || {
        let (reader, writer) = util::blocking_pipe();
        let done = Rc::new(Cell::new(0usize));
        // Parks until the pipe is readable, which only a poll of the hub
        // can tell; notes how far the file's reader was then.
        let waiter = runtime::spawn({
            let done = done.clone();
            move || {
                (&reader).read_exact(&mut [0]).unwrap();
                done.get()
            }
        });
        runtime::yield_now(); // the waiter parks
        (&writer).write_all(b"x").unwrap();
        let mut file = File::open(&path).unwrap();
        let mut buf = vec![0; 64 << 10];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            done.set(done.get() + n);
        }
        assert_eq!(done.get(), LEN);
        let seen_at = waiter.join().unwrap();
        assert!(seen_at < LEN, "the hub did not poll while a greenlet read 32 MiB of cached file");
    });
}
