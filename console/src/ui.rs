//! Drawing: the screen as a pure function of an [`App`].

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, TableState, Wrap};

use crate::app::{App, Mode};

/// Draws `app` on `frame`: the hubs' sparklines, then the greenlets (or
/// the selected one's stack), then the status line.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let hub_rows = (app.hubs.len() as u16 * 3).min(frame.area().height / 2);
    let [title, hubs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(hub_rows),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_line(app), title);
    draw_hubs(frame, app, hubs);
    match app.mode {
        Mode::Stack => draw_stack(frame, app, body),
        Mode::List | Mode::Filter => draw_greenlets(frame, app, body),
    }
    frame.render_widget(status_line(app), status);
}

fn title_line(app: &App) -> Line<'static> {
    let alive: u64 = app.hubs.iter().map(|h| h.latest.greenlets_alive).sum();
    Line::from(vec![
        Span::styled("runtime-console ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{}  {} hubs, {alive} greenlets alive", app.target, app.hubs.len())),
    ])
}

fn draw_hubs(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = Layout::vertical(app.hubs.iter().map(|_| Constraint::Length(3))).split(area);
    for (hub, row) in app.hubs.iter().zip(rows.iter()) {
        let columns = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(*row);
        let panels: [(String, &std::collections::VecDeque<u64>, Color); 4] = [
            (format!("hub {} switches/s {}", hub.hub, last(&hub.switches_per_sec)), &hub.switches_per_sec, Color::Cyan),
            (format!("busy {}%", last(&hub.busy_percent)), &hub.busy_percent, Color::Yellow),
            (format!("run queue {}", hub.latest.runnable), &hub.runnable, Color::Green),
            (format!("stacks {}", bytes(hub.latest.stack_resident_bytes)), &hub.stack_bytes, Color::Magenta),
        ];
        for ((title, data, color), area) in panels.into_iter().zip(columns.iter()) {
            let data: Vec<u64> = newest(data, area.width.saturating_sub(2) as usize);
            let sparkline = Sparkline::default()
                .block(Block::new().borders(Borders::ALL).title(title))
                .style(Style::new().fg(color))
                .data(&data);
            frame.render_widget(sparkline, *area);
        }
    }
}

fn draw_greenlets(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let visible = app.visible();
    let rows = visible.iter().map(|g| {
        Row::new(vec![
            Cell::from(g.hub.to_string()),
            Cell::from(format!("#{}", g.id)),
            Cell::from(g.name.clone().unwrap_or_default()),
            Cell::from(g.state.clone()),
            Cell::from(g.parked_for_ms.map(seconds).unwrap_or_default()),
            Cell::from(g.waiting_on.clone().unwrap_or_default()),
            Cell::from(g.spawned_at.clone()),
        ])
    });
    let title = if app.filter.is_empty() {
        format!("greenlets ({}), longest parked first", visible.len())
    } else {
        format!("greenlets waiting on \"{}\" ({} of {})", app.filter, visible.len(), app.greenlets.len())
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(2),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new(["hub", "id", "name", "state", "parked", "waiting on", "spawned at"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::new().borders(Borders::ALL).title(title))
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("> ");
    let mut state = TableState::new().with_selected((!visible.is_empty()).then_some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_stack(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(g) = app.selected_greenlet() else { return };
    let title = format!(
        "#{} {} on hub {} ({}), spawned at {}",
        g.id,
        g.name.as_deref().unwrap_or("(unnamed)"),
        g.hub,
        g.waiting_on.as_deref().unwrap_or(&g.state),
        g.spawned_at
    );
    let text = g.backtrace.clone().unwrap_or_else(|| format!("no stack: the greenlet is {}", g.state));
    let paragraph =
        Paragraph::new(text).block(Block::new().borders(Borders::ALL).title(title)).wrap(Wrap { trim: false });
    frame.render_widget(paragraph, area);
}

fn status_line(app: &App) -> Line<'static> {
    if app.mode == Mode::Filter {
        return Line::from(format!("/{}_", app.filter));
    }
    if let Some(error) = app.errors.first() {
        return Line::styled(error.clone(), Style::new().fg(Color::Red));
    }
    let keys = match app.mode {
        Mode::Stack => "Esc back  q quit",
        _ => "↑↓ select  Enter stack  / filter by what they wait on  Esc clear  q quit",
    };
    Line::styled(keys, Style::new().add_modifier(Modifier::DIM))
}

fn last(data: &std::collections::VecDeque<u64>) -> u64 {
    data.back().copied().unwrap_or(0)
}

/// The newest `n` samples, oldest first.
fn newest(data: &std::collections::VecDeque<u64>, n: usize) -> Vec<u64> {
    data.iter().skip(data.len().saturating_sub(n)).copied().collect()
}

fn seconds(ms: f64) -> String {
    if ms < 1000.0 { format!("{ms:.0} ms") } else { format!("{:.1} s", ms / 1000.0) }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}
