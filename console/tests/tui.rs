//! The console driven headlessly against a running program: a small runtime
//! in this process serves `Builder::console`, the test polls it like the
//! tool does, draws on ratatui's `TestBackend` and presses keys.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use runtime_console::app::{App, Mode};
use runtime_console::client::Client;
use runtime_console::ui;

#[inline(never)]
fn wait_for_the_operator(event: &runtime::sync::Event) {
    event.wait();
}

/// Runs a two-hub program with parked greenlets (`waiter-<hub>` on an
/// `Event`, `sleeper-<hub>` in a long sleep, `ticker-<hub>` waking every
/// 5 ms) until `check` returns.
fn with_program(check: impl FnOnce(PathBuf) + Send + 'static) {
    let path = std::env::temp_dir().join(format!("runtime-console-tui-{}.sock", std::process::id()));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let client_path = path.clone();
    let checker = std::thread::spawn(move || {
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(client_path)));
        done_tx.send(()).unwrap();
        done_tx.send(()).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
    let ready_tx = Arc::new(Mutex::new(ready_tx));
    let done_rx = Arc::new(Mutex::new(done_rx));
    runtime::Builder::new().hubs(2).console(&path).run_each(move |i| {
        let event = std::rc::Rc::new(runtime::sync::Event::new());
        let spawn = |name: String| runtime::task::Builder::new().name(name);
        let waiter = spawn(format!("waiter-{i}")).spawn({
            let event = event.clone();
            move || wait_for_the_operator(&event)
        });
        let sleeper = spawn(format!("sleeper-{i}")).spawn(|| runtime::sleep(Duration::from_secs(3600)));
        let ticker = spawn(format!("ticker-{i}")).spawn(|| {
            loop {
                runtime::sleep(Duration::from_millis(5));
            }
        });
        runtime::yield_now(); // let them park
        ready_tx.lock().unwrap().send(()).unwrap();
        let done_rx = done_rx.clone();
        runtime::blocking(move || done_rx.lock().unwrap().recv().unwrap());
        event.set();
        waiter.join().unwrap();
        sleeper.kill();
        ticker.kill();
    });
    checker.join().unwrap();
}

fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let width = buffer.area.width as usize;
    let symbols: Vec<&str> = buffer.content.iter().map(|cell| cell.symbol()).collect();
    symbols.chunks(width).map(|row| row.concat().trim_end().to_owned()).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_console_shows_the_hubs_and_greenlets_of_a_running_program() {
    with_program(|path| {
        let mut client = Client::connect(&path).unwrap();
        let mut app = App::new(path.display().to_string());
        let interval = Duration::from_millis(200);
        for _ in 0..3 {
            app.update(client.poll().unwrap(), interval);
            std::thread::sleep(interval);
        }
        let mut terminal = Terminal::new(TestBackend::new(150, 20)).unwrap();
        terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
        let list = screen(&terminal);
        for text in ["hub 0 switches/s", "hub 1 switches/s", "busy", "run queue", "stacks", "waiter-0", "sleeper-1"] {
            assert!(list.contains(text), "no {text:?} in\n{list}");
        }
        assert!(app.errors.is_empty(), "{:?}", app.errors);
        assert!(app.hubs.iter().all(|h| h.switches_per_sec.len() == 2), "two rates from three polls");

        // `/` filters by what they wait on.
        for key in "/sleep".chars().map(KeyCode::Char).chain([KeyCode::Enter]) {
            app.on_key(key);
        }
        terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
        let filtered = screen(&terminal);
        assert!(filtered.contains("sleeper-0") && filtered.contains("sleeper-1"), "{filtered}");
        assert!(!filtered.contains("waiter-0"), "{filtered}");

        // Enter opens the selected greenlet's stack.
        app.on_key(KeyCode::Esc);
        for key in "/event".chars().map(KeyCode::Char).chain([KeyCode::Enter]) {
            app.on_key(key);
        }
        assert!(app.selected_greenlet().unwrap().name.as_deref().unwrap().starts_with("waiter-"));
        app.on_key(KeyCode::Enter);
        assert_eq!(app.mode, Mode::Stack);
        terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
        let stack = screen(&terminal);
        assert!(stack.contains("wait_for_the_operator"), "{stack}");

        // `SAVE_SCREEN=1 cargo test -p runtime-console` refreshes the screen
        // the README shows; otherwise the test leaves the tree as it is.
        if std::env::var_os("SAVE_SCREEN").is_some() {
            let saved = format!("{list}\n\n{stack}\n");
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/screen.txt"), saved).unwrap();
        }
        app.on_key(KeyCode::Char('q'));
        assert!(app.quit);
    });
}
