//! The console's state and its key handling: everything the screen shows,
//! so that drawing it ([`crate::ui::draw`]) is a pure function of an [`App`].

use std::collections::VecDeque;
use std::time::Duration;

use ratatui::crossterm::event::KeyCode;

use crate::client::{Greenlet, HubMetrics, Snapshot};

/// How many samples each sparkline keeps.
pub const HISTORY: usize = 120;

/// One hub's recent samples, oldest first.
#[derive(Clone, Debug, Default)]
pub struct HubHistory {
    /// Its index.
    pub hub: usize,
    /// Its latest metrics.
    pub latest: HubMetrics,
    /// Switches per second between polls.
    pub switches_per_sec: VecDeque<u64>,
    /// Busy share between polls, in percent.
    pub busy_percent: VecDeque<u64>,
    /// Run queue depth at each poll.
    pub runnable: VecDeque<u64>,
    /// Resident stack bytes at each poll.
    pub stack_bytes: VecDeque<u64>,
}

/// What the keys do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Moving through the greenlets.
    List,
    /// Typing the filter after `/`.
    Filter,
    /// Showing the selected greenlet's stack.
    Stack,
}

/// The console's state.
#[derive(Clone, Debug)]
pub struct App {
    /// What is being watched (the socket path), for the title.
    pub target: String,
    /// Every hub's samples, by index.
    pub hubs: Vec<HubHistory>,
    /// The greenlets of the last poll, sorted by how long they have been
    /// parked, longest first.
    pub greenlets: Vec<Greenlet>,
    /// Shows only greenlets whose `waiting_on` contains it (ignoring case).
    pub filter: String,
    /// The selected row among the shown greenlets.
    pub selected: usize,
    /// What the keys do.
    pub mode: Mode,
    /// Errors of the last poll, or why it failed.
    pub errors: Vec<String>,
    /// Set by `q`.
    pub quit: bool,
}

impl App {
    /// An empty console for `target`.
    pub fn new(target: impl Into<String>) -> App {
        App {
            target: target.into(),
            hubs: Vec::new(),
            greenlets: Vec::new(),
            filter: String::new(),
            selected: 0,
            mode: Mode::List,
            errors: Vec::new(),
            quit: false,
        }
    }

    /// Takes in a poll made `elapsed` after the previous one: rates are the
    /// counters' growth over that time.
    pub fn update(&mut self, snapshot: Snapshot, elapsed: Duration) {
        let selected_id = self.selected_greenlet().map(|g| (g.hub, g.id));
        for metrics in snapshot.hubs {
            let index = metrics.hub;
            while self.hubs.len() <= index {
                let hub = self.hubs.len();
                self.hubs.push(HubHistory { hub, ..HubHistory::default() });
            }
            let history = &mut self.hubs[index];
            let secs = elapsed.as_secs_f64();
            if secs > 0.0 && history.latest.switches > 0 {
                let switches = metrics.switches.saturating_sub(history.latest.switches) as f64 / secs;
                let busy = metrics.busy_nanos.saturating_sub(history.latest.busy_nanos) as f64 / (secs * 1e9);
                push(&mut history.switches_per_sec, switches.round() as u64);
                push(&mut history.busy_percent, (busy * 100.0).round().min(100.0) as u64);
            }
            push(&mut history.runnable, metrics.runnable);
            push(&mut history.stack_bytes, metrics.stack_resident_bytes);
            history.latest = metrics;
        }
        self.greenlets = snapshot.greenlets;
        self.greenlets.sort_by(|a, b| {
            let (a_ms, b_ms) = (a.parked_for_ms.unwrap_or(-1.0), b.parked_for_ms.unwrap_or(-1.0));
            b_ms.total_cmp(&a_ms).then(a.hub.cmp(&b.hub)).then(a.id.cmp(&b.id))
        });
        self.errors = snapshot.errors;
        // Keep the same greenlet selected as the list moves under it.
        let visible = self.visible();
        self.selected = selected_id
            .and_then(|id| visible.iter().position(|g| (g.hub, g.id) == id))
            .unwrap_or(self.selected)
            .min(visible.len().saturating_sub(1));
    }

    /// Records that a poll failed.
    pub fn poll_failed(&mut self, error: String) {
        self.errors = vec![error];
    }

    /// The greenlets the filter lets through, in display order.
    pub fn visible(&self) -> Vec<&Greenlet> {
        let filter = self.filter.to_lowercase();
        self.greenlets
            .iter()
            .filter(|g| {
                filter.is_empty() || g.waiting_on.as_deref().is_some_and(|on| on.to_lowercase().contains(&filter))
            })
            .collect()
    }

    /// The selected greenlet, if any is shown.
    pub fn selected_greenlet(&self) -> Option<&Greenlet> {
        self.visible().get(self.selected).copied()
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyCode) {
        match self.mode {
            Mode::Filter => match key {
                KeyCode::Enter | KeyCode::Esc => self.mode = Mode::List,
                KeyCode::Backspace => {
                    self.filter.pop();
                    self.selected = 0;
                }
                KeyCode::Char(c) => {
                    self.filter.push(c);
                    self.selected = 0;
                }
                _ => {}
            },
            Mode::Stack => match key {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => self.mode = Mode::List,
                _ => {}
            },
            Mode::List => match key {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('/') => self.mode = Mode::Filter,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.selected = 0;
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.selected = (self.selected + 1).min(self.visible().len().saturating_sub(1));
                }
                KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
                KeyCode::Enter if self.selected_greenlet().is_some() => self.mode = Mode::Stack,
                _ => {}
            },
        }
    }
}

fn push(history: &mut VecDeque<u64>, value: u64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greenlet(id: u64, on: Option<&str>, ms: Option<f64>) -> Greenlet {
        Greenlet {
            id,
            state: if on.is_some() { "parked" } else { "runnable" }.into(),
            waiting_on: on.map(Into::into),
            parked_for_ms: ms,
            ..Greenlet::default()
        }
    }

    fn snapshot(switches: u64, busy_nanos: u64) -> Snapshot {
        Snapshot {
            hubs: vec![HubMetrics { switches, busy_nanos, ..HubMetrics::default() }],
            greenlets: vec![
                greenlet(1, Some("sleep, 3 s left"), Some(10.0)),
                greenlet(2, Some("Mutex::lock"), Some(500.0)),
                greenlet(3, None, None),
            ],
            errors: Vec::new(),
        }
    }

    #[test]
    fn rates_are_growth_over_the_interval() {
        let mut app = App::new("x");
        app.update(snapshot(100, 0), Duration::from_secs(1));
        app.update(snapshot(300, 500_000_000), Duration::from_secs(2));
        assert_eq!(app.hubs[0].switches_per_sec, [100]);
        assert_eq!(app.hubs[0].busy_percent, [25]);
    }

    #[test]
    fn greenlets_sort_by_time_parked_and_filter_by_what_they_wait_on() {
        let mut app = App::new("x");
        app.update(snapshot(1, 0), Duration::from_secs(1));
        assert_eq!(app.visible().iter().map(|g| g.id).collect::<Vec<_>>(), [2, 1, 3]);
        for key in [KeyCode::Char('/'), KeyCode::Char('S'), KeyCode::Char('l'), KeyCode::Enter] {
            app.on_key(key);
        }
        assert_eq!(app.filter, "Sl");
        assert_eq!(app.visible().iter().map(|g| g.id).collect::<Vec<_>>(), [1]);
        app.on_key(KeyCode::Enter);
        assert_eq!(app.mode, Mode::Stack);
        app.on_key(KeyCode::Esc);
        app.on_key(KeyCode::Esc);
        assert_eq!(app.visible().len(), 3);
        app.on_key(KeyCode::Char('q'));
        assert!(app.quit);
    }
}
