//! `runtime-console`: a live terminal view of a running program, in the
//! spirit of `top` and tokio-console, through the socket its runtime serves
//! with `runtime::Builder::console`.
//!
//! ```text
//! cargo run -p runtime-console -- /tmp/chat.sock
//! ```
//!
//! Every hub's switches per second, busy share, run queue and resident
//! stack memory as sparklines; the greenlets, longest parked first, with a
//! `/` filter on what they wait on; Enter opens one greenlet's stack; `q`
//! quits. [`client`] speaks the protocol, [`app`] holds the state and
//! handles keys, [`ui`] draws the state, so the whole tool runs headless
//! too:
//!
//! ```
//! use std::time::Duration;
//! use ratatui::{Terminal, backend::TestBackend, crossterm::event::KeyCode};
//! use runtime_console::{app::App, client::Client, ui};
//!
//! let path = std::env::temp_dir().join(format!("console-lib-doc-{}.sock", std::process::id()));
//! let client_path = path.clone();
//! let screen = runtime::Builder::new().console(&path).run(move || {
//!     let idle = runtime::task::Builder::new()
//!         .name("idle")
//!         .spawn(|| runtime::sleep(Duration::from_secs(60)));
//!     runtime::yield_now(); // let it park
//!     let screen = runtime::blocking(move || {
//!         let mut client = Client::connect(&client_path).unwrap();
//!         let mut app = App::new("doc");
//!         app.update(client.poll().unwrap(), Duration::from_secs(1));
//!         app.on_key(KeyCode::Char('/')); // filter: greenlets asleep
//!         "sleep".chars().for_each(|c| app.on_key(KeyCode::Char(c)));
//!         app.on_key(KeyCode::Enter);
//!         let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
//!         terminal.draw(|frame| ui::draw(frame, &app)).unwrap();
//!         format!("{:?}", terminal.backend().buffer())
//!     });
//!     idle.kill();
//!     screen
//! });
//! assert!(screen.contains("hub 0 switches/s") && screen.contains("idle"), "{screen}");
//! ```

pub mod app;
pub mod client;
pub mod ui;
