//! `runtime-console PATH [INTERVAL_MS]`: watches the program whose runtime
//! serves a console at `PATH` (see the library docs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use runtime_console::app::App;
use runtime_console::client::Client;
use runtime_console::ui;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: runtime-console PATH [INTERVAL_MS]");
        return ExitCode::from(2);
    };
    let interval =
        args.next().and_then(|ms| ms.to_str()?.parse().ok()).map_or(Duration::from_secs(1), Duration::from_millis);
    let mut client = match Client::connect(&path) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("runtime-console: cannot connect to {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut terminal = ratatui::init();
    let result = watch(&mut terminal, &mut client, App::new(path.display().to_string()), interval);
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("runtime-console: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Polls every `interval` and redraws, until `q`.
fn watch(
    terminal: &mut ratatui::DefaultTerminal,
    client: &mut Client,
    mut app: App,
    interval: Duration,
) -> std::io::Result<()> {
    let mut last_poll: Option<Instant> = None;
    while !app.quit {
        if last_poll.is_none_or(|at| at.elapsed() >= interval) {
            let elapsed = last_poll.map_or(interval, |at| at.elapsed());
            last_poll = Some(Instant::now());
            match client.poll() {
                Ok(snapshot) => app.update(snapshot, elapsed),
                Err(err) => app.poll_failed(format!("poll failed: {err}")),
            }
        }
        terminal.draw(|frame| ui::draw(frame, &app))?;
        if event::poll(Duration::from_millis(100))?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            app.on_key(key.code);
        }
    }
    Ok(())
}
