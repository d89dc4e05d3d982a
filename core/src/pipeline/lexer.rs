//! Tokens of the declarative Jenkinsfile subset: words, Groovy strings (all four forms),
//! numbers and punctuation, with `//` and `/* */` comments skipped. Every token knows its
//! line and column so diagnostics can point at it.

use super::diagnostics::{Diagnostic, Pos};

/// A piece of a double-quoted string: literal text or an interpolated expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `${expr}` or `$name`: the expression text, e.g. `env.BRANCH_NAME` or `params.X`.
    Var(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Word(String),
    /// Single-quoted (no interpolation).
    Str(String),
    /// Double-quoted, possibly interpolated.
    GStr(Vec<Part>),
    Num(f64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Assign,
    Semi,
    Newline,
    /// Operators (`.`, `+`, `==`, `?.`, `=~`, …), longest match first: Groovy, which only
    /// `script` blocks, expressions and computed values accept.
    Other(String),
    Eof,
}

impl Tok {
    /// How a diagnostic names the token: "`{`", "a string", "the end of the line".
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(_) | Tok::GStr(_) => "a string".into(),
            Tok::Num(_) => "a number".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Assign => "`=`".into(),
            Tok::Semi => "`;`".into(),
            Tok::Newline => "the end of the line".into(),
            Tok::Other(s) => format!("`{s}`"),
            Tok::Eof => "the end of the file".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Splits `src` into tokens; lexical errors are reported and skipped.
pub fn lex(src: &str, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        after_value: false,
    };
    // A `#!…` first line (`#!/usr/bin/env groovy`) is ignored, as Groovy does.
    if src.starts_with("#!") {
        while lexer.peek(0).is_some_and(|c| c != '\n') {
            lexer.bump();
        }
    }
    let mut out: Vec<Token> = Vec::new();
    loop {
        let token = lexer.next(diags);
        lexer.after_value = ends_value(&token.tok);
        let end = token.tok == Tok::Eof;
        out.push(token);
        if end {
            return out;
        }
    }
}

/// Groovy's operators, longest first so that `==~` is not read as `==` then `~`.
const OPERATORS: &[&str] = &[
    "==~", "<=>", "..<", "**=", "?.", "?:", "*.", "=~", "==", "!=", "<=", ">=", "&&", "||", "..",
    "->", "++", "--", "+=", "-=", "*=", "/=", "%=", "<<", "**",
];

/// Whether a `/` after `tok` divides (it ends a value) rather than opening a slashy string.
fn ends_value(tok: &Tok) -> bool {
    match tok {
        Tok::Word(w) => !matches!(
            w.as_str(),
            "return" | "in" | "case" | "assert" | "throw" | "instanceof" | "else"
        ),
        Tok::Str(_) | Tok::GStr(_) | Tok::Num(_) | Tok::RParen | Tok::RBracket => true,
        Tok::Other(op) => op == "++" || op == "--",
        _ => false,
    }
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    /// The previous token ended a value, so a `/` is division.
    after_value: bool,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(k, c)| self.peek(k) == Some(c))
    }

    fn next(&mut self, diags: &mut Vec<Diagnostic>) -> Token {
        loop {
            // Whitespace other than newlines, comments, and line continuations.
            match self.peek(0) {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\\') if self.peek(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                Some('/') if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('/') if self.peek(1) == Some('*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek(0) {
                            None => {
                                diags.push(Diagnostic::error(start, "unterminated /* comment"));
                                break;
                            }
                            Some('*') if self.peek(1) == Some('/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        let pos = self.pos();
        let Some(c) = self.peek(0) else {
            return Token { tok: Tok::Eof, pos };
        };
        let tok = match c {
            '\n' => {
                self.bump();
                Tok::Newline
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ',' | ':' | ';' => {
                self.bump();
                match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    _ => Tok::Semi,
                }
            }
            '=' if !matches!(self.peek(1), Some('=' | '~')) => {
                self.bump();
                Tok::Assign
            }
            '\'' if self.starts_with("'''") => Tok::Str(self.raw_string("'''", pos, diags)),
            '\'' => Tok::Str(self.raw_string("'", pos, diags)),
            '"' if self.starts_with("\"\"\"") => Tok::GStr(self.gstring("\"\"\"", pos, diags)),
            '"' => Tok::GStr(self.gstring("\"", pos, diags)),
            '/' if !self.after_value => Tok::GStr(self.slashy(pos, diags)),
            c if c.is_ascii_digit() => {
                let mut text = String::new();
                while self.peek(0).is_some_and(|c| {
                    c.is_ascii_digit()
                        || c == '_'
                        || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
                }) {
                    text.extend(self.bump());
                }
                // Groovy's type suffixes (`10L`, `1.5d`) change nothing here.
                if self
                    .peek(0)
                    .is_some_and(|c| matches!(c, 'L' | 'l' | 'G' | 'g' | 'd' | 'D' | 'f' | 'F'))
                    && !self
                        .peek(1)
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                match text.replace('_', "").parse() {
                    Ok(n) => Tok::Num(n),
                    Err(_) => Tok::Other(text),
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let mut word = String::new();
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
                {
                    word.extend(self.bump());
                }
                Tok::Word(word)
            }
            _ => {
                let op = OPERATORS
                    .iter()
                    .find(|op| self.starts_with(op))
                    .map_or(1, |op| op.len());
                let mut text = String::new();
                for _ in 0..op {
                    text.extend(self.bump());
                }
                Tok::Other(text)
            }
        };
        Token { tok, pos }
    }

    /// A slashy string (`/a\d+/`, Groovy's regex literal): no escapes but `\/`, and `$name` or
    /// `${expr}` interpolate while a `$` before anything else is literal (`/^v\d+$/`).
    fn slashy(&mut self, start: Pos, diags: &mut Vec<Diagnostic>) -> Vec<Part> {
        self.bump();
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            match self.peek(0) {
                None | Some('\n') => {
                    diags.push(Diagnostic::error(start, "unterminated /slashy/ string"));
                    break;
                }
                Some('/') => {
                    self.bump();
                    break;
                }
                Some('\\') if self.peek(1) == Some('/') => {
                    self.bump();
                    text.extend(self.bump());
                }
                Some('$')
                    if self
                        .peek(1)
                        .is_some_and(|c| c == '{' || c.is_alphabetic() || c == '_') =>
                {
                    self.interpolation(&mut parts, &mut text, diags);
                }
                Some(_) => text.extend(self.bump()),
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Text(text));
        }
        parts
    }

    /// `${expr}` (braces inside balanced) or `$name.path` at a `$`, as a [`Part::Var`].
    fn interpolation(
        &mut self,
        parts: &mut Vec<Part>,
        text: &mut String,
        diags: &mut Vec<Diagnostic>,
    ) {
        let at = self.pos();
        self.bump();
        let mut expr = String::new();
        if self.peek(0) == Some('{') {
            self.bump();
            let mut depth = 0usize;
            loop {
                match self.peek(0) {
                    Some('}') if depth == 0 => {
                        self.bump();
                        break;
                    }
                    None | Some('\n') => {
                        diags.push(Diagnostic::error(at, "unterminated ${…} in string"));
                        break;
                    }
                    Some(c) => {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        expr.extend(self.bump());
                    }
                }
            }
        } else {
            while self
                .peek(0)
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            {
                expr.extend(self.bump());
            }
            // `"$name."` ends the name before the dot, as in Groovy.
            while expr.ends_with('.') {
                expr.pop();
                self.i -= 1;
                self.col -= 1;
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(text)));
        }
        parts.push(Part::Var(expr.trim().to_owned()));
    }

    /// A single-quoted string ('…' or '''…'''); backslash escapes are decoded.
    fn raw_string(&mut self, quote: &str, start: Pos, diags: &mut Vec<Diagnostic>) -> String {
        for _ in 0..quote.len() {
            self.bump();
        }
        let mut text = String::new();
        loop {
            if self.starts_with(quote) {
                for _ in 0..quote.len() {
                    self.bump();
                }
                return text;
            }
            match self.peek(0) {
                None => {
                    diags.push(Diagnostic::error(start, "unterminated string"));
                    return text;
                }
                Some('\n') if quote.len() == 1 => {
                    diags.push(Diagnostic::error(
                        start,
                        "unterminated string (use ''' for several lines)",
                    ));
                    return text;
                }
                Some('\\') => {
                    let at = self.pos();
                    self.bump();
                    text.extend(self.escape(at, diags));
                }
                Some(_) => text.extend(self.bump()),
            }
        }
    }

    /// Decodes the escape after a backslash (at `at`) as Groovy does: `\b \f \n \r \s \t`,
    /// `\\ \' \" \$`, octal `\0`-`\377`, `\uXXXX`, and a backslash ending the line joins it to
    /// the next (`None`). Anything else is an error, as it is in Groovy.
    fn escape(&mut self, at: Pos, diags: &mut Vec<Diagnostic>) -> Option<char> {
        let c = self.bump()?;
        Some(match c {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            's' => ' ',
            't' => '\t',
            '\\' | '\'' | '"' | '$' => c,
            '\n' => return None,
            '0'..='7' => {
                // Up to three digits when the first is 0-3 (at most \377), else two.
                let most = if c <= '3' { 2 } else { 1 };
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..most {
                    match self.peek(0).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            self.bump();
                            value = value * 8 + d;
                        }
                        None => break,
                    }
                }
                if value == 0 {
                    diags.push(Diagnostic::warning(
                        at,
                        "this escape puts a NUL character in the string: no process can receive one, so a script or environment value holding it fails its step",
                    ));
                }
                char::from_u32(value).unwrap_or('\u{fffd}')
            }
            'u' => {
                while self.peek(0) == Some('u') {
                    self.bump();
                }
                let mut hex = String::new();
                for _ in 0..4 {
                    match self.peek(0).filter(char::is_ascii_hexdigit) {
                        Some(d) => {
                            self.bump();
                            hex.push(d);
                        }
                        None => break,
                    }
                }
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => decoded,
                    _ => {
                        diags.push(Diagnostic::error(
                            at,
                            format!("`\\u{hex}` is not a unicode escape: it takes four hex digits, e.g. `\\u001b`"),
                        ));
                        '\u{fffd}'
                    }
                }
            }
            other => {
                diags.push(Diagnostic::error(
                    at,
                    format!(
                        "unknown escape `\\{other}` in a string (Groovy refuses it): write `\\\\{other}` for a backslash followed by `{other}`"
                    ),
                ));
                other
            }
        })
    }

    /// A double-quoted string ("…" or """…""") with `${expr}` and `$name` interpolation.
    fn gstring(&mut self, quote: &str, start: Pos, diags: &mut Vec<Diagnostic>) -> Vec<Part> {
        for _ in 0..quote.len() {
            self.bump();
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            if self.starts_with(quote) {
                for _ in 0..quote.len() {
                    self.bump();
                }
                break;
            }
            match self.peek(0) {
                None => {
                    diags.push(Diagnostic::error(start, "unterminated string"));
                    break;
                }
                Some('\n') if quote.len() == 1 => {
                    diags.push(Diagnostic::error(
                        start,
                        "unterminated string (use \"\"\" for several lines)",
                    ));
                    break;
                }
                Some('\\') => {
                    let at = self.pos();
                    self.bump();
                    text.extend(self.escape(at, diags));
                }
                Some('$')
                    if self
                        .peek(1)
                        .is_some_and(|c| c == '{' || c.is_alphabetic() || c == '_') =>
                {
                    self.interpolation(&mut parts, &mut text, diags);
                }
                Some(_) => text.extend(self.bump()),
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Text(text));
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut diags = Vec::new();
        let out = lex(src, &mut diags).into_iter().map(|t| t.tok).collect();
        assert!(diags.is_empty(), "{diags:?}");
        out
    }

    /// What `src` lexes to, and the messages of its diagnostics.
    fn lexed(src: &str) -> (Vec<Tok>, Vec<String>) {
        let mut diags = Vec::new();
        let out = lex(src, &mut diags).into_iter().map(|t| t.tok).collect();
        (out, diags.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn escapes_decode_as_groovy_does() {
        let esc = "\u{1b}";
        assert_eq!(
            toks(r#""\033[32mok\033[0m""#)[0],
            Tok::GStr(vec![Part::Text(format!("{esc}[32mok{esc}[0m"))])
        );
        assert_eq!(toks(r"'\u001b[1m'")[0], Tok::Str(format!("{esc}[1m")));
        assert_eq!(toks(r"'\uuu0041'")[0], Tok::Str("A".into()));
        assert_eq!(
            toks(r#"'\b\f\n\r\s\t\\\'\"'"#)[0],
            Tok::Str("\u{8}\u{c}\n\r \t\\'\"".into())
        );
        // Octal: three digits up to \377, two from \4 on.
        assert_eq!(toks(r"'\101\1010\477'")[0], Tok::Str("AA0'7".into()));
        assert_eq!(
            toks(r#""\$HOME ${X}""#)[0],
            Tok::GStr(vec![Part::Text("$HOME ".into()), Part::Var("X".into())])
        );
        // A backslash ending a line joins it to the next.
        assert_eq!(toks("'''a\\\nb'''")[0], Tok::Str("ab".into()));
    }

    #[test]
    fn unknown_escapes_are_refused_and_nul_is_warned_of() {
        let (_, diags) = lexed(r#"sh "grep '\d+' file""#);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].contains("unknown escape `\\d`"), "{diags:?}");
        let (_, diags) = lexed(r"'\u12'");
        assert!(diags[0].contains("not a unicode escape"), "{diags:?}");
        let (toks, diags) = lexed(r"'a\0b'");
        assert_eq!(toks[0], Tok::Str("a\0b".into()));
        assert!(diags[0].contains("NUL"), "{diags:?}");
    }

    #[test]
    fn strings_in_every_groovy_form() {
        assert_eq!(toks("'a\\'b'")[0], Tok::Str("a'b".into()));
        assert_eq!(toks("'''x\ny'''")[0], Tok::Str("x\ny".into()));
        assert_eq!(
            toks("\"hi ${env.USER} and $NAME!\"")[0],
            Tok::GStr(vec![
                Part::Text("hi ".into()),
                Part::Var("env.USER".into()),
                Part::Text(" and ".into()),
                Part::Var("NAME".into()),
                Part::Text("!".into())
            ])
        );
        assert_eq!(
            toks("\"\"\"a\n\"b\" \"\"\"")[0],
            Tok::GStr(vec![Part::Text("a\n\"b\" ".into())])
        );
    }

    #[test]
    fn comments_are_skipped_and_positions_kept() {
        let mut diags = Vec::new();
        let tokens = lex("// licence\n/* block\n comment */ stage", &mut diags);
        let stage = tokens
            .iter()
            .find(|t| t.tok == Tok::Word("stage".into()))
            .unwrap();
        assert_eq!((stage.pos.line, stage.pos.col), (3, 13));
    }

    #[test]
    fn unterminated_things_are_reported() {
        let mut diags = Vec::new();
        lex("sh 'oops\n", &mut diags);
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].pos.line, diags[0].pos.col), (1, 4));
    }
}
