//! A small A4 layout written with pdf-writer: a title, section headings, label–value rows
//! and wrapped paragraphs in the standard Helvetica fonts (every PDF reader has them, so
//! nothing is embedded), page breaks, and a footer with the page number on every page.
//!
//! Text is encoded as WinAnsi (Windows-1252), what the standard fonts can show: Latin
//! letters with their accents, the usual punctuation and the euro sign; any other character
//! prints as `?`. Line breaks use a width estimate per character that is never below
//! Helvetica's own, so a wrapped line stays inside the margins.

use pdf_writer::{Content, Date, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4, in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
/// The left, right and top margin.
const MARGIN: f32 = 56.0;
/// The lowest baseline of the body; the footer lies below.
const BODY_BOTTOM: f32 = 72.0;
/// The footer's baseline.
const FOOTER: f32 = 40.0;
/// The width of the label column of [`Layout::field`].
const LABEL_WIDTH: f32 = 130.0;
/// Body text size and line height.
const SIZE: f32 = 10.0;
const LEADING: f32 = 13.5;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// A document being laid out, page by page.
pub(crate) struct Layout {
    pages: Vec<Content>,
    /// The baseline of the last line written on the current page.
    y: f32,
    /// Shown in the footer of every page and as the document's title.
    title: String,
}

impl Layout {
    /// An empty document titled `title`.
    pub(crate) fn new(title: &str) -> Self {
        let mut layout = Self {
            pages: Vec::new(),
            y: 0.0,
            title: title.to_owned(),
        };
        layout.new_page();
        layout
    }

    /// The document's title, large and bold.
    pub(crate) fn title(&mut self, text: &str) {
        for line in wrap(text, PAGE_WIDTH - 2.0 * MARGIN, 18.0) {
            self.next_line(24.0);
            self.show(BOLD, 18.0, MARGIN, &line);
        }
        self.y -= 4.0;
    }

    /// A line of small print under the title.
    pub(crate) fn small(&mut self, text: &str) {
        for line in wrap(text, PAGE_WIDTH - 2.0 * MARGIN, 8.5) {
            self.next_line(11.0);
            self.show(REGULAR, 8.5, MARGIN, &line);
        }
    }

    /// A section heading with a rule under it, kept on one page with a few lines after it.
    pub(crate) fn heading(&mut self, text: &str) {
        if self.y - 18.0 - 4.0 * LEADING < BODY_BOTTOM {
            self.new_page();
        } else {
            self.y -= 14.0;
        }
        self.next_line(16.0);
        self.show(BOLD, 12.5, MARGIN, text);
        let rule = self.y - 4.0;
        self.page()
            .set_line_width(0.6)
            .move_to(MARGIN, rule)
            .line_to(PAGE_WIDTH - MARGIN, rule)
            .stroke();
        self.y -= 6.0;
    }

    /// A label and its value (wrapped in the value column); nothing for an empty value.
    pub(crate) fn field(&mut self, label: &str, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        let lines = wrap(value, PAGE_WIDTH - 2.0 * MARGIN - LABEL_WIDTH, SIZE);
        for (index, line) in lines.iter().enumerate() {
            self.next_line(LEADING);
            if index == 0 {
                self.show(BOLD, SIZE, MARGIN, label);
            }
            self.show(REGULAR, SIZE, MARGIN + LABEL_WIDTH, line);
        }
    }

    /// A paragraph, wrapped, indented by `indent`; `bold` for a line that leads an entry.
    pub(crate) fn paragraph(&mut self, text: &str, indent: f32, bold: bool) {
        let font = if bold { BOLD } else { REGULAR };
        for line in wrap(text, PAGE_WIDTH - 2.0 * MARGIN - indent, SIZE) {
            self.next_line(LEADING);
            self.show(font, SIZE, MARGIN + indent, &line);
        }
    }

    /// Vertical space of `points`, and room for `lines` body lines after it on the same
    /// page (a new page if the current one has less), so that an entry's lines stay together.
    pub(crate) fn entry(&mut self, points: f32, lines: u16) {
        self.y -= points;
        if self.y - f32::from(lines) * LEADING < BODY_BOTTOM {
            self.new_page();
        }
    }

    /// The PDF file: every page with its footer (`footer`, then "page i of n"), and the
    /// document information (title, producer, `created`).
    pub(crate) fn finish(self, footer: &str, created: jiff::civil::DateTime) -> Vec<u8> {
        let count = self.pages.len();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let page_ids: Vec<Ref> = (0..count)
            .map(|i| Ref::new(6 + 2 * i32::try_from(i).unwrap_or(i32::MAX / 4)))
            .collect();
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(i32::try_from(count).unwrap_or(i32::MAX));
        for (index, mut content) in self.pages.into_iter().enumerate() {
            let footer = truncate(
                &format!("{footer}  ·  page {} of {count}", index + 1),
                PAGE_WIDTH - 2.0 * MARGIN,
                8.0,
            );
            content.begin_text();
            content.set_font(REGULAR, 8.0);
            content.next_line(MARGIN, FOOTER);
            content.show(Str(&win_ansi(&footer)));
            content.end_text();
            let page_id = page_ids[index];
            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
            page.parent(tree);
            page.contents(content_id);
            page.resources()
                .fonts()
                .pair(REGULAR, regular)
                .pair(BOLD, bold);
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        for (id, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
            pdf.type1_font(id)
                .base_font(Name(name.as_bytes()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        let narrow = |n: i8| u8::try_from(n).unwrap_or(0);
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .producer(TextStr("Clientele"))
            .creation_date(
                Date::new(u16::try_from(created.year()).unwrap_or(1970))
                    .month(narrow(created.month()))
                    .day(narrow(created.day()))
                    .hour(narrow(created.hour()))
                    .minute(narrow(created.minute())),
            );
        pdf.finish()
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_HEIGHT - MARGIN;
    }

    /// Moves down one line of `height`, to a new page when the body is full.
    fn next_line(&mut self, height: f32) {
        if self.y - height < BODY_BOTTOM {
            self.new_page();
        }
        self.y -= height;
    }

    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.new_page();
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn show(&mut self, font: Name<'static>, size: f32, x: f32, text: &str) {
        let y = self.y;
        let bytes = win_ansi(text);
        let page = self.page();
        page.begin_text();
        page.set_font(font, size);
        page.next_line(x, y);
        page.show(Str(&bytes));
        page.end_text();
    }
}

/// `text` in lines no wider than `width` at `size`: its own line breaks kept, words moved to
/// the next line, a word longer than a line cut.
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in paragraph.split_whitespace() {
            let word_width = measure(word, size);
            let space = if line.is_empty() {
                0.0
            } else {
                measure(" ", size)
            };
            if line_width + space + word_width <= width {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                line_width += space + word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            // A word too long for a line is cut where the line is full.
            for c in word.chars() {
                let w = measure_char(c, size);
                if line_width + w > width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(c);
                line_width += w;
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// `text` cut (with an ellipsis) to fit `width` at `size`.
fn truncate(text: &str, width: f32, size: f32) -> String {
    if measure(text, size) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = measure_char('…', size);
    for c in text.chars() {
        used += measure_char(c, size);
        if used > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn measure(text: &str, size: f32) -> f32 {
    text.chars().map(|c| measure_char(c, size)).sum()
}

/// A width for `c` at `size` that is at least what Helvetica (and Helvetica-Bold) give it.
fn measure_char(c: char, size: f32) -> f32 {
    let em = match c {
        ' ' | 'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '!' | '\'' | '|' | 'I' => 0.34,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.40,
        'm' | 'w' | 'M' | 'W' | '@' | '%' | '…' | '—' | '€' => 1.02,
        'A'..='Z' => 0.80,
        '0'..='9' | 'a'..='z' => 0.62,
        _ => 0.80,
    };
    em * size
}

/// `text` in WinAnsi (Windows-1252), what the standard fonts show; control characters as
/// spaces, characters it lacks as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            c if c.is_control() => b' ',
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_fit_and_keep_every_word_in_order() {
        let text = "Anna Müller-Lüdenscheidt asked twice about the invoice 2026-4711 and \
                    https://very.long.example/path/without/any/spaces/at/all/that/goes/on/and/on";
        let lines = wrap(text, 200.0, 10.0);
        assert!(lines.len() > 2);
        for line in &lines {
            assert!(measure(line, 10.0) <= 200.0, "{line}");
        }
        let joined: String = lines.concat();
        let squeezed: String = text.split_whitespace().collect();
        assert_eq!(joined.replace(' ', ""), squeezed);
    }

    #[test]
    fn text_is_written_as_win_ansi() {
        assert_eq!(
            win_ansi("Müller €5 – “ok”"),
            b"M\xfcller \x805 \x96 \x93ok\x94"
        );
        assert_eq!(win_ansi("日本\u{7}"), b"?? ");
    }
}
