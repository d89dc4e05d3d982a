//! A recursive-descent parser for the Groovy subset, over the Jenkinsfile lexer's tokens.
//!
//! Newlines end statements, except inside `(…)` and `[…]`, after an operator, and before a
//! line that starts with `.`, `?.`, `?`, `:`, `&&` or `||` (a chained call or a condition
//! split over lines). Positions are those of the construct's first token (an operator's for
//! binary expressions), so an error names the line and column at fault. Statements are
//! here, expressions in `expr`.

mod expr;

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
        let found = describe(&p.tok().clone());
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

pub(crate) fn describe(tok: &Tok) -> String {
    match tok {
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

    fn last(&self) -> usize {
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

    fn skip_separators(&mut self) {
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
            let found = describe(&self.tok().clone());
            self.error_here(format!("expected {} {what}, found {found}", describe(tok)));
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
    fn recover(&mut self) {
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

    // ---- statements ----

    /// `{ statements }`, at the `{`.
    pub(super) fn braced_block(&mut self) -> Option<Vec<Stmt>> {
        if !self.enter() {
            return None;
        }
        let open = self.pos();
        self.lines.push(true);
        self.i += 1; // `{`
        let mut stmts = Vec::new();
        let result = loop {
            self.skip_separators();
            match self.tokens[self.i.min(self.last())].tok {
                Tok::RBrace => {
                    self.i += 1;
                    break Some(stmts);
                }
                Tok::Eof => {
                    if !self.too_deep {
                        self.error_at(open, "this `{` is never closed");
                    }
                    break None;
                }
                _ => match self.statement() {
                    Some(s) => stmts.push(s),
                    None if self.too_deep => break None,
                    None => self.recover(),
                },
            }
        };
        self.lines.pop();
        self.leave();
        result
    }

    /// A block after `if (…)`, `for (…)`, `else`…: braced, or a single statement.
    fn body(&mut self) -> Option<Vec<Stmt>> {
        self.skip_newlines();
        if self.at(&Tok::LBrace) {
            self.braced_block()
        } else {
            Some(vec![self.statement()?])
        }
    }

    fn end_of_statement(&mut self) -> Option<()> {
        match self.tokens[self.i.min(self.last())].tok {
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => Some(()),
            ref other => {
                let found = describe(&other.clone());
                self.error_here(format!("expected the end of the statement, found {found}"));
                None
            }
        }
    }

    pub(super) fn statement(&mut self) -> Option<Stmt> {
        if !self.enter() {
            return None;
        }
        let s = self.statement_inner();
        self.leave();
        s
    }

    fn statement_inner(&mut self) -> Option<Stmt> {
        let pos = self.pos();
        let kind = match self.tok().clone() {
            Tok::Other(at) if at == "@" => {
                self.error_here("annotations such as `@Grab` or `@Library` load code from outside the Jenkinsfile, which the Groovy subset does not run");
                return None;
            }
            Tok::Word(w) => {
                if let Some((_, what)) = REFUSED.iter().find(|(k, _)| *k == w) {
                    self.error_here(format!(
                        "{what} are not part of the Groovy subset Sluice runs"
                    ));
                    return None;
                }
                match w.as_str() {
                    "if" => self.if_stmt()?,
                    "for" => self.for_stmt()?,
                    "while" => {
                        self.advance();
                        let cond = self.condition()?;
                        let body = self.body()?;
                        StmtKind::While { cond, body }
                    }
                    "switch" => self.switch_stmt()?,
                    "try" => self.try_stmt()?,
                    "return" => {
                        self.advance();
                        if matches!(
                            self.tokens[self.i.min(self.last())].tok,
                            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof
                        ) {
                            StmtKind::Return(None)
                        } else {
                            StmtKind::Return(Some(self.expr()?))
                        }
                    }
                    "break" => {
                        self.advance();
                        StmtKind::Break
                    }
                    "continue" => {
                        self.advance();
                        StmtKind::Continue
                    }
                    "throw" => {
                        self.advance();
                        StmtKind::Throw(self.expr()?)
                    }
                    "assert" => {
                        self.advance();
                        let cond = self.expr()?;
                        let message = if self.at(&Tok::Colon) || self.at(&Tok::Comma) {
                            self.advance();
                            Some(self.expr()?)
                        } else {
                            None
                        };
                        StmtKind::Assert(cond, message)
                    }
                    _ if self.is_declaration() => self.declaration()?,
                    _ if self.is_command() => StmtKind::Expr(self.command()?),
                    _ => StmtKind::Expr(self.expr()?),
                }
            }
            Tok::LBrace => {
                self.error_here("a bare `{ … }` here is a closure that never runs; remove the braces or call it");
                return None;
            }
            _ => StmtKind::Expr(self.expr()?),
        };
        let ends_with_block = matches!(
            kind,
            StmtKind::If { .. }
                | StmtKind::For { .. }
                | StmtKind::ForIn { .. }
                | StmtKind::While { .. }
                | StmtKind::Switch { .. }
                | StmtKind::Try { .. }
        );
        if !ends_with_block {
            self.end_of_statement()?;
        }
        Some(Stmt { kind, pos })
    }

    /// `(cond)` after `if` and `while`.
    fn condition(&mut self) -> Option<Expr> {
        self.expect(&Tok::LParen, "before the condition")?;
        self.lines.push(false);
        let cond = self.expr();
        let close = cond.is_some() && self.expect(&Tok::RParen, "after the condition").is_some();
        self.lines.pop();
        if close { cond } else { None }
    }

    fn if_stmt(&mut self) -> Option<StmtKind> {
        self.advance(); // if
        let cond = self.condition()?;
        let then = self.body()?;
        let other = if matches!(self.after_newlines(), Tok::Word(w) if w == "else") {
            self.skip_newlines();
            self.advance();
            self.skip_newlines();
            if self.at_word("if") {
                let pos = self.pos();
                let nested = self.if_stmt()?;
                Some(vec![Stmt { kind: nested, pos }])
            } else {
                Some(self.body()?)
            }
        } else {
            None
        };
        Some(StmtKind::If { cond, then, other })
    }

    fn for_stmt(&mut self) -> Option<StmtKind> {
        self.advance(); // for
        self.expect(&Tok::LParen, "after `for`")?;
        self.lines.push(false);
        let kind = self.for_head();
        self.lines.pop();
        let kind = kind?;
        match kind {
            ForHead::In(var, iter) => {
                let body = self.body()?;
                Some(StmtKind::ForIn { var, iter, body })
            }
            ForHead::C(init, cond, update) => {
                let body = self.body()?;
                Some(StmtKind::For {
                    init,
                    cond,
                    update,
                    body,
                })
            }
        }
    }

    fn for_head(&mut self) -> Option<ForHead> {
        // `for (x in xs)`, `for (def x in xs)`, `for (String x : xs)`.
        let mut k = 0;
        if matches!(self.peek_at(0), Tok::Word(_))
            && matches!(self.peek_at(1), Tok::Word(w) if w != "in")
        {
            k = 1;
        }
        if let (Tok::Word(var), true) = (
            self.peek_at(k).clone(),
            matches!(self.peek_at(k + 1), Tok::Word(w) if w == "in")
                || (k == 1 && *self.peek_at(k + 1) == Tok::Colon),
        ) {
            self.i += k + 2;
            let iter = self.expr()?;
            self.expect(&Tok::RParen, "after the loop's collection")?;
            return Some(ForHead::In(var, iter));
        }
        let init = if self.at(&Tok::Semi) {
            None
        } else {
            let pos = self.pos();
            let kind = if self.is_declaration() {
                self.declaration()?
            } else {
                StmtKind::Expr(self.expr()?)
            };
            Some(Box::new(Stmt { kind, pos }))
        };
        self.expect(&Tok::Semi, "in `for (init; condition; update)`")?;
        let cond = if self.at(&Tok::Semi) {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect(&Tok::Semi, "in `for (init; condition; update)`")?;
        let mut update = Vec::new();
        while !self.at(&Tok::RParen) {
            update.push(self.expr()?);
            if self.at(&Tok::Comma) {
                self.advance();
            } else {
                break;
            }
        }
        self.expect(&Tok::RParen, "after the loop's update")?;
        Some(ForHead::C(init, cond, update))
    }

    fn switch_stmt(&mut self) -> Option<StmtKind> {
        self.advance(); // switch
        let value = self.condition()?;
        self.skip_newlines();
        if !self.at(&Tok::LBrace) {
            self.error_here("expected `{` after `switch (…)`");
            return None;
        }
        if !self.enter() {
            return None;
        }
        self.i += 1;
        self.lines.push(true);
        let cases = self.switch_cases();
        self.lines.pop();
        self.leave();
        Some(StmtKind::Switch {
            value,
            cases: cases?,
        })
    }

    fn switch_cases(&mut self) -> Option<Vec<(Vec<Expr>, Vec<Stmt>)>> {
        let mut cases: Vec<(Vec<Expr>, Vec<Stmt>)> = Vec::new();
        loop {
            self.skip_separators();
            match self.tok().clone() {
                Tok::RBrace => {
                    self.i += 1;
                    return Some(cases);
                }
                Tok::Word(w) if w == "case" => {
                    self.advance();
                    let v = self.expr()?;
                    self.expect(&Tok::Colon, "after the case's value")?;
                    // Consecutive labels share one body.
                    match cases.last_mut() {
                        Some((values, body)) if body.is_empty() && !values.is_empty() => {
                            values.push(v)
                        }
                        _ => cases.push((vec![v], Vec::new())),
                    }
                }
                Tok::Word(w) if w == "default" => {
                    self.advance();
                    self.expect(&Tok::Colon, "after `default`")?;
                    cases.push((Vec::new(), Vec::new()));
                }
                Tok::Eof => {
                    self.error_here("this `switch` is never closed");
                    return None;
                }
                _ if cases.is_empty() => {
                    self.error_here("expected `case` or `default` in `switch`");
                    return None;
                }
                _ => {
                    let s = self.statement()?;
                    if let Some((_, body)) = cases.last_mut() {
                        body.push(s);
                    }
                }
            }
        }
    }

    fn try_stmt(&mut self) -> Option<StmtKind> {
        self.advance(); // try
        self.skip_newlines();
        if !self.at(&Tok::LBrace) {
            self.error_here("expected `{` after `try`");
            return None;
        }
        let body = self.braced_block()?;
        let mut catches = Vec::new();
        while matches!(self.after_newlines(), Tok::Word(w) if w == "catch") {
            self.skip_newlines();
            self.advance();
            self.expect(&Tok::LParen, "after `catch`")?;
            self.lines.push(false);
            let mut words = Vec::new();
            while let Tok::Word(w) = self.tok().clone() {
                self.advance();
                let mut name = w;
                while self.at_op(".") {
                    self.advance();
                    if let Tok::Word(more) = self.tok().clone() {
                        self.advance();
                        name = format!("{name}.{more}");
                    }
                }
                words.push(name);
                if self.at_op("|") {
                    self.advance();
                }
            }
            let closed = self.expect(&Tok::RParen, "after the caught exception");
            self.lines.pop();
            closed?;
            let Some(var) = words.pop() else {
                self.error_here("`catch` needs a variable, e.g. catch (err)");
                return None;
            };
            self.skip_newlines();
            if !self.at(&Tok::LBrace) {
                self.error_here("expected `{` after `catch (…)`");
                return None;
            }
            let body = self.braced_block()?;
            catches.push(Catch {
                var,
                types: words,
                body,
            });
        }
        let finally = if matches!(self.after_newlines(), Tok::Word(w) if w == "finally") {
            self.skip_newlines();
            self.advance();
            self.skip_newlines();
            Some(self.braced_block()?)
        } else {
            None
        };
        if catches.is_empty() && finally.is_none() {
            self.error_here("`try` needs a `catch` or a `finally`");
            return None;
        }
        Some(StmtKind::Try {
            body,
            catches,
            finally,
        })
    }

    /// `def x`, `String x = …`, `List<String> xs = …`, `def (a, b) = …`.
    fn is_declaration(&mut self) -> bool {
        let Tok::Word(first) = self.tok().clone() else {
            return false;
        };
        let mut k = 1;
        if *self.peek_at(k) == Tok::Other("<".into()) {
            let mut depth = 0;
            loop {
                match self.peek_at(k) {
                    Tok::Other(o) if o == "<" => depth += 1,
                    Tok::Other(o) if o == ">" => {
                        depth -= 1;
                        if depth == 0 {
                            k += 1;
                            break;
                        }
                    }
                    Tok::Word(_) | Tok::Comma => {}
                    _ => return false,
                }
                k += 1;
            }
        }
        if first == "def" || first == "final" || first == "var" {
            return true;
        }
        let typed =
            TYPES.contains(&first.as_str()) || first.starts_with(|c: char| c.is_ascii_uppercase());
        typed
            && matches!(self.peek_at(k), Tok::Word(_))
            && matches!(
                self.peek_at(k + 1),
                Tok::Assign | Tok::Newline | Tok::Semi | Tok::Eof | Tok::RBrace
            )
    }

    fn declaration(&mut self) -> Option<StmtKind> {
        // Skip modifiers and the type.
        while let Tok::Word(w) = self.tok().clone() {
            let next = self.peek_at(1).clone();
            match next {
                Tok::Word(_) => {
                    self.advance();
                }
                Tok::Other(o) if o == "<" => {
                    self.advance();
                    let mut depth = 0;
                    loop {
                        match self.advance().tok {
                            Tok::Other(o) if o == "<" => depth += 1,
                            Tok::Other(o) if o == ">" => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Tok::Eof => return None,
                            _ => {}
                        }
                    }
                }
                Tok::LParen if w == "def" => {
                    self.advance();
                    break;
                }
                _ => break,
            }
        }
        let names = if self.at(&Tok::LParen) {
            self.advance();
            let mut names = Vec::new();
            loop {
                match self.advance().tok {
                    Tok::Word(w) => names.push(w),
                    Tok::RParen => break,
                    Tok::Comma => {}
                    other => {
                        self.error_here(format!(
                            "expected a name in `def (a, b) = …`, found {}",
                            describe(&other)
                        ));
                        return None;
                    }
                }
            }
            names
        } else {
            match self.advance().tok {
                Tok::Word(w) => vec![w],
                other => {
                    self.error_here(format!(
                        "expected a variable name, found {}",
                        describe(&other)
                    ));
                    return None;
                }
            }
        };
        let value = if self.at(&Tok::Assign) {
            self.advance();
            self.skip_newlines();
            Some(self.value_or_command()?)
        } else {
            None
        };
        Some(StmtKind::Def { names, value })
    }

    /// The right side of `=`: an expression, or a call without parentheses
    /// (`def answer = input message: 'Deploy?'`).
    pub(super) fn value_or_command(&mut self) -> Option<Expr> {
        if self.is_command() {
            self.command()
        } else {
            self.expr()
        }
    }

    /// A call without parentheses: `echo 'hi'`, `sh script: 'make', returnStdout: true`.
    fn is_command(&mut self) -> bool {
        if !matches!(self.tok(), Tok::Word(w) if !matches!(w.as_str(), "new" | "true" | "false" | "null"))
        {
            return false;
        }
        match self.peek_at(1) {
            Tok::Str(_) | Tok::GStr(_) | Tok::Num(_) => true,
            Tok::Word(w) => !matches!(w.as_str(), "in" | "instanceof" | "as"),
            _ => false,
        }
    }

    fn command(&mut self) -> Option<Expr> {
        let token = self.advance();
        let Tok::Word(name) = token.tok else {
            return None;
        };
        let mut args = Vec::new();
        loop {
            args.push(self.arg()?);
            if self.at(&Tok::Comma) {
                self.advance();
                self.skip_newlines();
            } else {
                break;
            }
        }
        if self.at(&Tok::LBrace) {
            let pos = self.pos();
            let closure = self.closure()?;
            args.push(Arg {
                name: None,
                value: Expr {
                    kind: ExprKind::Closure(closure),
                    pos,
                },
            });
        }
        Some(Expr {
            kind: ExprKind::Call {
                target: None,
                name,
                args,
                safe: false,
                spread: false,
            },
            pos: token.pos,
        })
    }
}

enum ForHead {
    In(String, Expr),
    C(Option<Box<Stmt>>, Option<Expr>, Vec<Expr>),
}
