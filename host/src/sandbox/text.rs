//! Plugin text on the operator's terminal and in log lines: shown, never obeyed.
//!
//! Whatever a plugin says (error messages, log messages and fields, step names and ids,
//! the hosts it asks for) may carry terminal control: ESC sequences that clear the
//! screen or recolour it, `\r` that overwrites a line, `\n` that forges a new one, bidi
//! overrides that reorder what is shown. Printed through [`Untrusted`], each such
//! character becomes a visible escape (`\u{1b}`, `\n`), so one plugin line stays one
//! output line and the operator's terminal stays the operator's. JSON outputs keep the
//! text as it was: JSON has escapes of its own.
//!
//! Backslashes are left alone, so escaping twice changes nothing: a line escaped where
//! it is built and again by the log formatter reads the same.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Text from a plugin, escaped when displayed: `format!("{}", Untrusted(text))`, or
/// `%Untrusted(text)` in a tracing field. Honours width and alignment (`{:<24}`).
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() || f.precision().is_some() {
            return f.pad(&escape(self.0));
        }
        write_escaped(f, self.0)
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_escaped(f, self.0)?;
        f.write_char('"')
    }
}

/// Whether `c` must not reach a terminal as is: C0 and C1 controls (ESC, BEL, CR, LF,
/// DEL, CSI...), line and paragraph separators, and the invisible format characters that
/// reorder or hide text (bidi embeddings, overrides and isolates, zero-width marks).
pub fn is_terminal_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` with every terminal control character escaped (`\n`, `\r`, `\t`, else
/// `\u{1b}`); borrowed when there is none, which is the common case.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_terminal_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    write_escaped(&mut escaped, text).expect("writing to a String does not fail");
    Cow::Owned(escaped)
}

fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut clean_from = 0;
    for (at, c) in text.char_indices() {
        if !is_terminal_control(c) {
            continue;
        }
        out.write_str(&text[clean_from..at])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c => write!(out, "\\u{{{:x}}}", c as u32)?,
        }
        clean_from = at + c.len_utf8();
    }
    out.write_str(&text[clean_from..])
}

/// The first `max_bytes` bytes of `text` (cut at a character boundary), and whether
/// anything was cut.
pub fn prefix(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// `text` cut to at most `max_bytes` bytes, with a marker saying how long it was: long
/// plugin text is shortened, never dropped whole.
pub fn truncate(text: &str, max_bytes: usize) -> Cow<'_, str> {
    match prefix(text, max_bytes) {
        (_, false) => Cow::Borrowed(text),
        (kept, true) => Cow::Owned(format!("{kept}{}", cut_marker(text.len()))),
    }
}

/// What follows a cut text: `…[truncated: 16777225 bytes in all]`.
pub fn cut_marker(original_len: usize) -> String {
    format!("…[truncated: {original_len} bytes in all]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        let attack = "\u{1b}[2J\u{1b}[31mred\u{1b}[0m\nforged line\rover\u{7}\u{9b}";
        let shown = Untrusted(attack).to_string();
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}[31mred\\u{1b}[0m\\nforged line\\rover\\u{7}\\u{9b}"
        );
        assert!(!shown.chars().any(is_terminal_control));
    }

    #[test]
    fn invisible_reordering_characters_are_escaped() {
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\u{200b}"),
            "a\\u{202e}b\\u{2066}c\\u{200b}"
        );
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in ["plain", "élan – ünïcödé 漢字 🦀", "C:\\path\\n is text", ""] {
            assert!(
                matches!(escape(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("\u{1b}[2J\n\\u{1b}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn width_and_alignment_apply_to_the_escaped_text() {
        assert_eq!(format!("{:<8}|", Untrusted("a\nb")), "a\\nb    |");
        assert_eq!(format!("{:?}", Untrusted("a\"\u{1b}")), "\"a\"\\u{1b}\"");
    }

    #[test]
    fn truncation_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééé", 3), "é…[truncated: 6 bytes in all]");
        assert_eq!(prefix("abcdef", 4), ("abcd", true));
    }
}
