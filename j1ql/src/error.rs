//! Query errors: where (line, column, byte span), what, and what was expected there,
//! rendered like rustc's diagnostics.

use std::fmt::Write;
use std::ops::Range;

/// What kind of problem a [`QueryError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not J1QL: an unexpected token or a missing one.
    Syntax,
    /// `WHERE`, `RETURN` or `ORDER BY` names an alias the query does not define.
    UnknownAlias,
    /// A comparison whose two sides cannot be compared (`_createdOn > 'abc'`).
    TypeMismatch,
    /// Valid J1QL outside the subset we implement; the message names the feature.
    Unsupported,
    /// The query is valid but too broad to evaluate within the engine's limits.
    Limit,
}

impl ErrorKind {
    fn title(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::UnknownAlias => "unknown alias",
            ErrorKind::TypeMismatch => "type mismatch",
            ErrorKind::Unsupported => "not supported",
            ErrorKind::Limit => "query too broad",
        }
    }
}

/// A J1QL error that points into the query text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct QueryError {
    pub kind: ErrorKind,
    pub message: String,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
    /// What the parser would have accepted at that point, e.g. `` `THAT` ``, `a value`.
    pub expected: Vec<String>,
    /// Byte range of the offending text in the query.
    pub span: Range<usize>,
}

impl QueryError {
    pub(crate) fn new(
        kind: ErrorKind,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..start].chars().count() + 1;
        QueryError {
            kind,
            message: message.into(),
            line,
            column,
            expected: Vec::new(),
            span: start..span.end.max(start).min(source.len()),
        }
    }

    pub(crate) fn expected(mut self, expected: Vec<String>) -> Self {
        self.expected = expected;
        self
    }

    /// The error as rustc renders diagnostics: the message, the position, the source line
    /// with carets under the offending text, and what was expected.
    ///
    /// ```text
    /// error[unknown alias]: unknown alias `x`
    ///  --> 1:22
    ///   |
    /// 1 | FIND User AS u WHERE x.name = 'a'
    ///   |                      ^ not defined by FIND or THAT
    ///   |
    ///   = expected one of `u`, `User`
    /// ```
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error[{}]: {}", self.kind.title(), self.message);
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}--> {}:{}", self.line, self.column);
        let _ = writeln!(out, "{pad} |");
        let text = source.lines().nth(self.line - 1).unwrap_or("");
        let _ = writeln!(out, "{} | {}", self.line, text);
        // Indent with the line's own tabs so the carets line up however tabs render.
        let indent: String = text
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let start = self.span.start.min(source.len());
        let end = self.span.end.min(source.len());
        let width = source
            .get(start..end)
            .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count())
            .max(1);
        let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(width));
        if !self.expected.is_empty() {
            let _ = writeln!(out, "{pad} |");
            let what = if self.expected.len() == 1 {
                "expected"
            } else {
                "expected one of"
            };
            let _ = writeln!(out, "{pad} = {what} {}", self.expected.join(", "));
        }
        out
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_column_on_the_right_line() {
        let src = "FIND User\n  WITH x >> 1";
        let e = QueryError::new(ErrorKind::Syntax, src, 19..21, "unexpected `>>`")
            .expected(vec!["a comparison operator".into()]);
        assert_eq!((e.line, e.column), (2, 10));
        let r = e.render(src);
        assert_eq!(
            r,
            "error[syntax error]: unexpected `>>`\n --> 2:10\n  |\n2 |   WITH x >> 1\n  |          ^^\n  |\n  = expected a comparison operator\n"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = "FIND é x";
        let e = QueryError::new(ErrorKind::Syntax, src, 8..9, "m");
        assert_eq!(e.column, 8);
    }
}
