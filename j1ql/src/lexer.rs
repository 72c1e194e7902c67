//! The lexer: query text to tokens with byte spans. `/* comments */` are dropped here,
//! so they may appear anywhere between tokens.
//!
//! Keywords are not tokens of their own: J1QL keywords are case-insensitive words, and
//! the parser decides by position whether `count` or `to` is a keyword or a name.

use crate::ast::Op;
use crate::error::{ErrorKind, QueryError};
use std::ops::Range;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A word: keyword, class, type, verb, alias or property name segment.
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    Num(f64),
    Regex {
        pattern: String,
        flags: String,
    },
    /// `[tag.special-name]`: a property name with any characters.
    Bracketed(String),
    /// The text inside `date(...)`.
    Date(String),
    /// A comparison operator: `=`, `!=`, `<`, ..., `!$=`.
    Cmp(Op),
    ArrowOut,
    ArrowIn,
    Bang,
    LParen,
    RParen,
    Pipe,
    Comma,
    Star,
    Dot,
    Minus,
    Plus,
    Question,
    /// `#SmartClass`: recognised only to refuse it by name.
    Hash,
    /// `${param.x}`: recognised only to refuse it by name.
    Param,
    /// `{{placeholder}}`: recognised only to refuse it by name.
    Placeholder,
    Eof,
}

impl Tok {
    /// How the token is named in "expected ..." and "unexpected ..." messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Num(_) => "a number".into(),
            Tok::Regex { .. } => "a regex".into(),
            Tok::Bracketed(s) => format!("`[{s}]`"),
            Tok::Date(_) => "a date(...)".into(),
            Tok::Eof => "the end of the query".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    pub(crate) fn symbol(&self) -> &'static str {
        match self {
            Tok::Cmp(op) => op.symbol(),
            Tok::ArrowOut => ">>",
            Tok::ArrowIn => "<<",
            Tok::Bang => "!",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Pipe => "|",
            Tok::Comma => ",",
            Tok::Star => "*",
            Tok::Dot => ".",
            Tok::Minus => "-",
            Tok::Plus => "+",
            Tok::Question => "?",
            Tok::Hash => "#",
            Tok::Param => "${...}",
            Tok::Placeholder => "{{...}}",
            _ => "",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Range<usize>,
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut lx = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.pos..].chars();
        it.next();
        it.next()
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> QueryError {
        QueryError::new(ErrorKind::Syntax, self.src, span, msg)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            span: start..self.pos,
        });
    }

    fn run(&mut self) -> Result<(), QueryError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                continue;
            }
            if self.rest().starts_with("/*") {
                match self.src[start + 2..].find("*/") {
                    Some(end) => self.pos = start + 2 + end + 2,
                    None => {
                        return Err(self
                            .err(start..start + 2, "unterminated comment: `/*` without `*/`")
                            .expected(vec!["`*/`".into()]));
                    }
                }
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                self.word(start)?;
                continue;
            }
            if c.is_ascii_digit() {
                self.number(start)?;
                continue;
            }
            match c {
                '\'' | '"' => self.string(start, c)?,
                '/' => self.regex(start)?,
                '[' => {
                    let Some(end) = self.src[start..].find(']') else {
                        return Err(self
                            .err(start..start + 1, "unterminated `[`")
                            .expected(vec!["`]`".into()]));
                    };
                    let name = self.src[start + 1..start + end].to_owned();
                    self.pos = start + end + 1;
                    if name.is_empty() {
                        return Err(self
                            .err(start..self.pos, "empty property name `[]`")
                            .expected(vec!["a property name".into()]));
                    }
                    self.push(Tok::Bracketed(name), start);
                }
                '$' if self.rest().starts_with("${") => {
                    self.pos = self.src[start..]
                        .find('}')
                        .map_or(self.src.len(), |e| start + e + 1);
                    self.push(Tok::Param, start);
                }
                '{' if self.rest().starts_with("{{") => {
                    self.pos = self.src[start..]
                        .find("}}")
                        .map_or(self.src.len(), |e| start + e + 2);
                    self.push(Tok::Placeholder, start);
                }
                _ => {
                    let (tok, len) = self.operator(c).ok_or_else(|| {
                        self.err(
                            start..start + c.len_utf8(),
                            format!("unexpected character `{c}`"),
                        )
                    })?;
                    self.pos += len;
                    self.push(tok, start);
                }
            }
        }
        let end = self.src.len();
        self.out.push(Token {
            tok: Tok::Eof,
            span: end..end,
        });
        Ok(())
    }

    fn operator(&self, c: char) -> Option<(Tok, usize)> {
        let r = self.rest();
        let two = |s: &str| r.starts_with(s);
        Some(match c {
            '=' => (Tok::Cmp(Op::Eq), 1),
            '!' if two("!=") => (Tok::Cmp(Op::Ne), 2),
            '!' if two("!~=") => (Tok::Cmp(Op::NotContains), 3),
            '!' if two("!^=") => (Tok::Cmp(Op::NotStartsWith), 3),
            '!' if two("!$=") => (Tok::Cmp(Op::NotEndsWith), 3),
            '!' => (Tok::Bang, 1),
            '<' if two("<<") => (Tok::ArrowIn, 2),
            '<' if two("<=") => (Tok::Cmp(Op::Le), 2),
            '<' => (Tok::Cmp(Op::Lt), 1),
            '>' if two(">>") => (Tok::ArrowOut, 2),
            '>' if two(">=") => (Tok::Cmp(Op::Ge), 2),
            '>' => (Tok::Cmp(Op::Gt), 1),
            '~' if two("~=") => (Tok::Cmp(Op::Contains), 2),
            '^' if two("^=") => (Tok::Cmp(Op::StartsWith), 2),
            '$' if two("$=") => (Tok::Cmp(Op::EndsWith), 2),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '|' => (Tok::Pipe, 1),
            ',' => (Tok::Comma, 1),
            '*' => (Tok::Star, 1),
            '.' => (Tok::Dot, 1),
            '-' => (Tok::Minus, 1),
            '+' => (Tok::Plus, 1),
            '?' => (Tok::Question, 1),
            '#' => (Tok::Hash, 1),
            _ => return None,
        })
    }

    fn word(&mut self, start: usize) -> Result<(), QueryError> {
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        let word = &self.src[start..self.pos];
        // `date(2019-10-30T...)`: ISO text is no J1QL token, so take it raw.
        if word.eq_ignore_ascii_case("date") && self.peek() == Some('(') {
            let open = self.pos;
            let Some(close) = self.src[open..].find(')') else {
                return Err(self
                    .err(open..open + 1, "unterminated `date(`")
                    .expected(vec!["`)`".into()]));
            };
            let inner = self.src[open + 1..open + close].trim().to_owned();
            self.pos = open + close + 1;
            self.push(Tok::Date(inner), start);
            return Ok(());
        }
        let word = word.to_owned();
        self.push(Tok::Word(word), start);
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), QueryError> {
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        self.pos += digits(self.rest());
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.pos += digits(self.rest());
        }
        let text = &self.src[start..self.pos];
        let n: f64 = text
            .parse()
            .map_err(|_| self.err(start..self.pos, format!("invalid number `{text}`")))?;
        self.push(Tok::Num(n), start);
        Ok(())
    }

    fn string(&mut self, start: usize, quote: char) -> Result<(), QueryError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self
                    .err(start..start + 1, "unterminated string")
                    .expected(vec![format!("a closing `{quote}`")]));
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => {
                    let Some(next) = self.peek() else { continue };
                    self.pos += next.len_utf8();
                    s.push(match next {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                c if c == quote => break,
                c => s.push(c),
            }
        }
        self.push(Tok::Str(s), start);
        Ok(())
    }

    fn regex(&mut self, start: usize) -> Result<(), QueryError> {
        self.pos += 1;
        let mut pattern = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self
                    .err(start..start + 1, "unterminated regex")
                    .expected(vec!["a closing `/`".into()]));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => break,
                '\\' if self.peek() == Some('/') => {
                    self.pos += 1;
                    pattern.push('/');
                }
                '\\' => {
                    pattern.push('\\');
                    if let Some(next) = self.peek() {
                        self.pos += next.len_utf8();
                        pattern.push(next);
                    }
                }
                c => pattern.push(c),
            }
        }
        let flags_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let flags = self.src[flags_start..self.pos].to_owned();
        self.push(Tok::Regex { pattern, flags }, start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_comments() {
        assert_eq!(
            toks("a!~=/* c */'x' >> << >= !$= !"),
            vec![
                Tok::Word("a".into()),
                Tok::Cmp(Op::NotContains),
                Tok::Str("x".into()),
                Tok::ArrowOut,
                Tok::ArrowIn,
                Tok::Cmp(Op::Ge),
                Tok::Cmp(Op::NotEndsWith),
                Tok::Bang,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_split_from_units_and_dates_are_raw() {
        assert_eq!(
            toks("date.now-12months date(2019-10-30T10:00Z)"),
            vec![
                Tok::Word("date".into()),
                Tok::Dot,
                Tok::Word("now".into()),
                Tok::Minus,
                Tok::Num(12.0),
                Tok::Word("months".into()),
                Tok::Date("2019-10-30T10:00Z".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn regex_brackets_and_escapes() {
        assert_eq!(
            toks(r#"/a\/b\d/i [tag.x-y] "q\"x""#),
            vec![
                Tok::Regex {
                    pattern: r"a/b\d".into(),
                    flags: "i".into()
                },
                Tok::Bracketed("tag.x-y".into()),
                Tok::Str("q\"x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn unterminated_things_point_at_their_start() {
        let e = lex("FIND x WITH a = 'abc").unwrap_err();
        assert_eq!((e.line, e.column), (1, 17));
        assert_eq!(e.expected, vec!["a closing `'`"]);
        let e = lex("FIND /* x").unwrap_err();
        assert_eq!(e.column, 6);
    }
}
