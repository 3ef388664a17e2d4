//! Charts as inline SVG, drawn from counts: stacked columns (one per day)
//! and horizontal bars of a share (one per application). Every bar carries
//! a `<title>`, which browsers show on hover and which states its figures
//! in words; the tables under each chart hold the same numbers.

use super::markup::Markup;

const WIDTH: f64 = 960.0;

/// One column: its label on the x axis (a date), its segments from the
/// bottom up as (CSS class, value), and its title.
pub struct Column<'a> {
    pub label: &'a str,
    pub segments: Vec<(&'static str, u64)>,
    pub title: String,
    /// Written above the column when there is room (a percentage).
    pub note: Option<String>,
}

/// Stacked columns with a y axis of counts.
pub fn columns(m: &mut Markup, id: &'static str, description: &'static str, columns: &[Column<'_>]) {
    const HEIGHT: f64 = 280.0;
    const LEFT: f64 = 52.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 24.0;
    const BOTTOM: f64 = 44.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = columns.iter().map(|c| c.segments.iter().map(|s| s.1).sum::<u64>()).max().unwrap_or(0);
    let step = nice_step(max as f64 / 4.0);
    let top = (step * (max as f64 / step).ceil()).max(step);
    svg_open(m, id, description, HEIGHT);
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let y = TOP + plot_h - tick / top * plot_h;
        m.raw("<line class=\"grid\" x1=\"").num(LEFT, 0).raw("\" y1=\"").num(y, 1);
        m.raw("\" x2=\"").num(WIDTH - RIGHT, 0).raw("\" y2=\"").num(y, 1).raw("\"/>");
        m.raw("<text class=\"y\" x=\"")
            .num(LEFT - 6.0, 0)
            .raw("\" y=\"")
            .num(y + 4.0, 1)
            .raw("\" text-anchor=\"end\">");
        m.num(tick, 0).raw("</text>");
        tick += step;
    }
    let n = columns.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.7).min(48.0);
    // Every label when they fit, else every k-th.
    let every = (columns.len() as f64 / 16.0).ceil().max(1.0) as usize;
    for (i, column) in columns.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        m.raw("<g><title>").text(&column.title).raw("</title>");
        let mut base = 0u64;
        for &(class, value) in &column.segments {
            if value == 0 {
                continue;
            }
            let y = TOP + plot_h - (base + value) as f64 / top * plot_h;
            m.raw("<rect class=\"").raw(class).raw("\" x=\"").num(x, 1).raw("\" y=\"").num(y, 1);
            m.raw("\" width=\"").num(bar, 1).raw("\" height=\"").num(value as f64 / top * plot_h, 1).raw("\"/>");
            base += value;
        }
        if let Some(note) = column.note.as_deref().filter(|_| columns.len() <= 31) {
            let y = TOP + plot_h - base as f64 / top * plot_h - 4.0;
            m.raw("<text class=\"v\" x=\"").num(x + bar / 2.0, 1).raw("\" y=\"").num(y, 1);
            m.raw("\" text-anchor=\"middle\">").text(note).raw("</text>");
        }
        m.raw("</g>");
        if i % every == 0 {
            // 2026-03-02 is labelled 03-02.
            let label = column.label.get(5..).filter(|_| column.label.len() == 10).unwrap_or(column.label);
            m.raw("<text class=\"x\" x=\"").num(x + bar / 2.0, 1).raw("\" y=\"").num(HEIGHT - BOTTOM + 16.0, 1);
            m.raw("\" text-anchor=\"middle\">").text(label).raw("</text>");
        }
    }
    m.raw("<line class=\"axis\" x1=\"").num(LEFT, 0).raw("\" y1=\"").num(TOP + plot_h, 1);
    m.raw("\" x2=\"").num(WIDTH - RIGHT, 0).raw("\" y2=\"").num(TOP + plot_h, 1).raw("\"/>");
    m.raw("</svg>\n");
}

/// One bar of a share: `part` of `total`.
pub struct Share<'a> {
    pub label: &'a str,
    pub part: u64,
    pub total: u64,
    pub title: String,
}

/// Horizontal bars, each 0 to 100 %: the share in class `ok`, the rest in
/// class `bad`.
pub fn shares(m: &mut Markup, id: &'static str, description: &'static str, rows: &[Share<'_>]) {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 300.0;
    const BAR: f64 = 520.0;
    let height = 8.0 + ROW * rows.len() as f64 + 18.0;
    svg_open(m, id, description, height);
    for (i, row) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * ROW;
        let ok = if row.total == 0 { 0.0 } else { row.part as f64 / row.total as f64 };
        m.raw("<g><title>").text(&row.title).raw("</title>");
        m.raw("<text class=\"id\" x=\"")
            .num(LABEL - 8.0, 0)
            .raw("\" y=\"")
            .num(y + 12.0, 1)
            .raw("\" text-anchor=\"end\">");
        m.short(row.label, 36).raw("</text>");
        if ok > 0.0 {
            m.raw("<rect class=\"ok\" x=\"").num(LABEL, 0).raw("\" y=\"").num(y + 2.0, 1);
            m.raw("\" width=\"").num(ok * BAR, 1).raw("\" height=\"14\"/>");
        }
        if ok < 1.0 {
            m.raw("<rect class=\"bad\" x=\"").num(LABEL + ok * BAR, 1).raw("\" y=\"").num(y + 2.0, 1);
            m.raw("\" width=\"").num((1.0 - ok) * BAR, 1).raw("\" height=\"14\"/>");
        }
        m.raw("<text class=\"v\" x=\"").num(LABEL + BAR + 8.0, 0).raw("\" y=\"").num(y + 12.0, 1).raw("\">");
        m.num(100.0 * ok, 1).raw(" % (").int(row.part).raw(" of ").int(row.total).raw(")</text></g>");
    }
    let y = 8.0 + ROW * rows.len() as f64 + 12.0;
    for (fraction, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
        m.raw("<text class=\"x\" x=\"").num(LABEL + fraction * BAR, 1).raw("\" y=\"").num(y, 1);
        m.raw("\" text-anchor=\"middle\">").raw(label).raw("</text>");
    }
    m.raw("</svg>\n");
}

fn svg_open(m: &mut Markup, id: &'static str, description: &'static str, height: f64) {
    m.raw("<svg id=\"").raw(id).raw("\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ");
    m.num(WIDTH, 0).raw(" ").num(height, 0).raw("\" role=\"img\" aria-label=\"").raw(description).raw("\">");
}

/// 1, 2 or 5 times a power of ten, at least `raw` and at least 1.
fn nice_step(raw: f64) -> f64 {
    if raw <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|f| f * power).find(|s| *s >= raw).unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.3), 1.0);
        assert_eq!(nice_step(1.75), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(120.0), 200.0);
    }

    #[test]
    fn titles_and_labels_are_text() {
        let mut m = Markup::new();
        let rows = [Share { label: "<b>x</b>", part: 1, total: 4, title: "</title><script>".into() }];
        shares(&mut m, "s", "a chart", &rows);
        let svg = m.into_string();
        assert!(svg.contains("<title>&lt;/title&gt;&lt;script&gt;</title>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;</text>"), "{svg}");
        assert!(svg.contains("25.0 % (1 of 4)"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
