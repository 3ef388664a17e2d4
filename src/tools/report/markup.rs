//! Markup for the HTML report, built so that nothing from the decision log
//! can become markup: tags and attribute names only as `&'static str`
//! (written in this crate's source), everything else as a number or as text
//! that is escaped for the element and the double-quoted attribute alike.
//! The log holds attacker-influenced strings (application ids, tenant ids,
//! exemption reasons, route names from a hostile configuration).

use std::fmt::Write;

pub struct Markup(String);

impl Markup {
    pub fn new() -> Self {
        Self(String::with_capacity(64 * 1024))
    }

    /// Markup from this crate's source. `'static` keeps a value read at run
    /// time from being passed here.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Text content or the value of a double-quoted attribute. `&`, `<`,
    /// `>`, `"` and `'` become references; characters that XML forbids (C0
    /// controls but tab and line breaks, U+FFFE, U+FFFF) become U+FFFD, so
    /// that the page also parses as XHTML.
    pub fn text(&mut self, s: &str) -> &mut Self {
        for c in s.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                '\t' | '\n' | '\r' => self.0.push(c),
                c if c < ' ' || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => self.0.push('\u{fffd}'),
                c => self.0.push(c),
            }
        }
        self
    }

    /// `text` of at most `max` characters, with an ellipsis when cut.
    pub fn short(&mut self, s: &str, max: usize) -> &mut Self {
        match s.char_indices().nth(max) {
            Some((end, _)) => self.text(&s[..end]).raw("…"),
            None => self.text(s),
        }
    }

    /// An integer.
    pub fn int(&mut self, n: impl Into<i128>) -> &mut Self {
        let _ = write!(self.0, "{}", n.into());
        self
    }

    /// A number with `decimals` digits after the point (coordinates,
    /// percentages).
    pub fn num(&mut self, n: f64, decimals: usize) -> &mut Self {
        let n = if n.is_finite() { n } else { 0.0 };
        let _ = write!(self.0, "{n:.decimals$}");
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_leave_an_element_or_an_attribute() {
        let mut m = Markup::new();
        m.raw("<p title=\"").text("\"'><script>&amp;").raw("\">").text("</p>\u{0}\u{1b}é\t").raw("</p>");
        assert_eq!(
            m.into_string(),
            "<p title=\"&quot;&#39;&gt;&lt;script&gt;&amp;amp;\">&lt;/p&gt;\u{fffd}\u{fffd}é\t</p>"
        );
    }

    #[test]
    fn numbers_and_cut_text() {
        let mut m = Markup::new();
        m.int(42u64).raw(" ").int(-3i64).raw(" ").num(1.0 / 3.0, 2).raw(" ").num(f64::NAN, 1).raw(" ");
        m.short("aé<cd", 3).raw(" ").short("ab", 3);
        assert_eq!(m.into_string(), "42 -3 0.33 0.0 aé&lt;… ab");
    }
}
