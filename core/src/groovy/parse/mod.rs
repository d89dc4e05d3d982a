//! A recursive-descent parser for the Groovy subset, over the Jenkinsfile lexer's tokens.
//!
//! Newlines end statements, except inside `(…)` and `[…]`, after an operator, and before a
//! line that starts with `.`, `?.`, `?`, `:`, `&&` or `||` (a chained call or a condition
//! split over lines). Positions are those of the construct's first token (an operator's for
//! binary expressions), so an error names the line and column at fault. Statements are
//! in `stmt`, expressions in `expr`, literals and closures in `literal`.

mod decl;
mod expr;
mod literal;
mod stmt;

use super::ast::*;
use crate::pipeline::lexer::{Part, Tok, Token, lex};
use crate::pipeline::syntax::MAX_NESTING;
use crate::pipeline::{Diagnostic, Pos};

/// How deeply expressions and blocks may nest inside one Groovy body (each level of brackets
/// costs two: the expression and its operand).
const MAX_DEPTH: usize = MAX_NESTING * 2;

/// Words that start a declaration when followed by a name: `String x = …`.
const TYPES: &[&str] = &[
    "def",
    "var",
    "final",
    "String",
    "GString",
    "int",
    "long",
    "short",
    "byte",
    "boolean",
    "double",
    "float",
    "char",
    "Integer",
    "Long",
    "Boolean",
    "Double",
    "Float",
    "BigDecimal",
    "Number",
    "Object",
    "List",
    "ArrayList",
    "Map",
    "HashMap",
    "LinkedHashMap",
    "Set",
    "HashSet",
    "Closure",
    "Collection",
    "Iterable",
];

/// Statements Groovy has and the subset refuses, with why.
const REFUSED: &[(&str, &str)] = &[
    ("class", "class definitions"),
    ("interface", "interface definitions"),
    ("enum", "enum definitions"),
    ("trait", "trait definitions"),
    ("import", "imports"),
    ("package", "package declarations"),
    ("synchronized", "`synchronized` blocks"),
    ("do", "`do … while` loops (use `while`)"),
];

/// What parsing a Groovy body found: the statements, or `None` when it nested too deeply
/// (then the rest of the file is not worth reading).
pub struct Parsed<T> {
    pub value: Option<T>,
    /// The index of the first token after what was parsed.
    pub next: usize,
    pub too_deep: bool,
}

/// Parses the block at `tokens[at]` (a `{`) as Groovy statements, up to its closing `}`.
pub fn block(
    tokens: &[Token],
    at: usize,
    depth: usize,
    diags: &mut Vec<Diagnostic>,
) -> Parsed<Vec<Stmt>> {
    let mut p = Parser::new(tokens, at, depth, diags);
    let value = p.braced_block();
    p.finish(value)
}

/// Parses one statement starting at `tokens[at]` (a Jenkinsfile's Groovy outside
/// `pipeline { }`: method definitions, variables).
pub fn statement(
    tokens: &[Token],
    at: usize,
    depth: usize,
    diags: &mut Vec<Diagnostic>,
) -> Parsed<Stmt> {
    let mut p = Parser::new(tokens, at, depth, diags);
    let value = p.statement();
    if value.is_none() {
        p.recover();
    }
    p.finish(value)
}

/// Parses one expression starting at `tokens[at]`: a newline ends it (outside brackets).
pub fn expression(
    tokens: &[Token],
    at: usize,
    depth: usize,
    diags: &mut Vec<Diagnostic>,
) -> Parsed<Expr> {
    let mut p = Parser::new(tokens, at, depth, diags);
    let value = p.expr();
    p.finish(value)
}

/// Parses a whole Groovy source (tests, the fuzz target and benchmarks use this).
pub fn program(src: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<Stmt>> {
    let tokens = lex(src, diags);
    let mut p = Parser::new(&tokens, 0, 0, diags);
    let mut stmts = Vec::new();
    loop {
        p.skip_separators();
        if p.at_eof() || p.too_deep {
            break;
        }
        if p.at(&Tok::RBrace) {
            p.error_here("unmatched `}`");
            p.i += 1;
            continue;
        }
        match p.statement() {
            Some(s) => stmts.push(s),
            None => p.recover(),
        }
    }
    (!p.too_deep).then_some(stmts)
}

/// A GString's `${…}` text as an expression, every position set to the string's.
pub fn interpolated(text: &str, pos: Pos, diags: &mut Vec<Diagnostic>) -> Option<Expr> {
    let mut inner = Vec::new();
    let mut tokens = lex(text, &mut inner);
    for t in &mut tokens {
        t.pos = pos;
    }
    for d in inner {
        diags.push(Diagnostic { pos, ..d });
    }
    if tokens.len() == 1 {
        diags.push(Diagnostic::error(pos, "empty `${}` in a string"));
        return None;
    }
    let mut p = Parser::new(&tokens, 0, 0, diags);
    let e = p.expr()?;
    p.skip_newlines();
    if !p.at_eof() {
        let found = p.tok().describe();
        p.error_here(format!("unexpected {found} in `${{{text}}}`"));
        return None;
    }
    Some(e)
}

/// Parts of a double-quoted string as GString parts.
pub fn gstring(parts: &[Part], pos: Pos, diags: &mut Vec<Diagnostic>) -> Option<Vec<GPart>> {
    let mut out = Vec::new();
    for part in parts {
        out.push(match part {
            Part::Text(t) => GPart::Text(t.clone()),
            Part::Var(v) => GPart::Expr(interpolated(v, pos, diags)?),
        });
    }
    Some(out)
}

pub(super) struct Parser<'t, 'd> {
    tokens: &'t [Token],
    i: usize,
    depth: usize,
    too_deep: bool,
    /// Whether newlines separate statements here (`{`) or are spaces (`(`, `[`).
    lines: Vec<bool>,
    diags: &'d mut Vec<Diagnostic>,
}

impl<'t, 'd> Parser<'t, 'd> {
    fn new(
        tokens: &'t [Token],
        at: usize,
        depth: usize,
        diags: &'d mut Vec<Diagnostic>,
    ) -> Parser<'t, 'd> {
        Parser {
            tokens,
            i: at,
            depth: depth * 2,
            too_deep: false,
            lines: vec![true],
            diags,
        }
    }

    fn finish<T>(self, value: Option<T>) -> Parsed<T> {
        Parsed {
            value: if self.too_deep { None } else { value },
            next: self.i,
            too_deep: self.too_deep,
        }
    }

    pub(super) fn last(&self) -> usize {
        self.tokens.len() - 1
    }

    /// The current token; newlines are skipped inside `(…)` and `[…]`.
    pub(super) fn tok(&mut self) -> &Tok {
        if !self.lines.last().copied().unwrap_or(true) {
            while self.tokens[self.i.min(self.last())].tok == Tok::Newline {
                self.i += 1;
            }
        }
        &self.tokens[self.i.min(self.last())].tok
    }

    pub(super) fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.i + ahead).min(self.last())].tok
    }

    pub(super) fn pos(&mut self) -> Pos {
        self.tok();
        self.tokens[self.i.min(self.last())].pos
    }

    pub(super) fn at(&mut self, tok: &Tok) -> bool {
        self.tok() == tok
    }

    pub(super) fn at_op(&mut self, op: &str) -> bool {
        matches!(self.tok(), Tok::Other(o) if o == op)
    }

    pub(super) fn at_word(&mut self, w: &str) -> bool {
        matches!(self.tok(), Tok::Word(x) if x == w)
    }

    pub(super) fn at_eof(&mut self) -> bool {
        self.at(&Tok::Eof)
    }

    pub(super) fn advance(&mut self) -> Token {
        self.tok();
        let t = self.tokens[self.i.min(self.last())].clone();
        if self.i < self.last() {
            self.i += 1;
        }
        t
    }

    pub(super) fn skip_newlines(&mut self) {
        while self.tokens[self.i.min(self.last())].tok == Tok::Newline {
            self.i += 1;
        }
    }

    pub(super) fn skip_separators(&mut self) {
        while matches!(
            self.tokens[self.i.min(self.last())].tok,
            Tok::Newline | Tok::Semi
        ) {
            self.i += 1;
        }
    }

    /// The next token after any newlines, without moving.
    pub(super) fn after_newlines(&self) -> &Tok {
        let mut k = self.i;
        while self.tokens[k.min(self.last())].tok == Tok::Newline {
            k += 1;
        }
        &self.tokens[k.min(self.last())].tok
    }

    pub(super) fn error_at(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(pos, message));
    }

    pub(super) fn error_here(&mut self, message: impl Into<String>) {
        let pos = self.pos();
        self.error_at(pos, message);
    }

    pub(super) fn expect(&mut self, tok: &Tok, what: &str) -> Option<()> {
        if self.at(tok) {
            self.advance();
            Some(())
        } else {
            let found = self.tok().describe();
            self.error_here(format!("expected {} {what}, found {found}", tok.describe()));
            None
        }
    }

    pub(super) fn enter(&mut self) -> bool {
        if self.too_deep {
            return false;
        }
        if self.depth >= MAX_DEPTH {
            self.error_here(format!(
                "nested more than {MAX_NESTING} levels deep (blocks, lists and calls)"
            ));
            self.too_deep = true;
            self.i = self.last();
            return false;
        }
        self.depth += 1;
        true
    }

    pub(super) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Skips to the end of the statement, leaving a closing `}` in place.
    pub(super) fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.tokens[self.i.min(self.last())].tok {
                Tok::Eof => return,
                Tok::LBrace | Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RBrace if depth == 0 => return,
                Tok::RParen | Tok::RBracket if depth == 0 => {}
                Tok::RBrace | Tok::RParen | Tok::RBracket => depth -= 1,
                Tok::Newline | Tok::Semi if depth == 0 => return,
                _ => {}
            }
            self.i += 1;
        }
    }
}
