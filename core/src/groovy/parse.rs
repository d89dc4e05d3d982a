//! A recursive-descent parser for the Groovy subset, over the Jenkinsfile lexer's tokens.
//!
//! Newlines end statements, except inside `(…)` and `[…]`, after an operator, and before a
//! line that starts with `.`, `?.`, `?`, `:`, `&&` or `||` (a chained call or a condition
//! split over lines). Positions are those of the construct's first token (an operator's for
//! binary expressions), so an error names the line and column at fault.

use std::sync::Arc;

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

struct Parser<'t, 'd> {
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
    fn tok(&mut self) -> &Tok {
        if !self.lines.last().copied().unwrap_or(true) {
            while self.tokens[self.i.min(self.last())].tok == Tok::Newline {
                self.i += 1;
            }
        }
        &self.tokens[self.i.min(self.last())].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.i + ahead).min(self.last())].tok
    }

    fn pos(&mut self) -> Pos {
        self.tok();
        self.tokens[self.i.min(self.last())].pos
    }

    fn at(&mut self, tok: &Tok) -> bool {
        self.tok() == tok
    }

    fn at_op(&mut self, op: &str) -> bool {
        matches!(self.tok(), Tok::Other(o) if o == op)
    }

    fn at_word(&mut self, w: &str) -> bool {
        matches!(self.tok(), Tok::Word(x) if x == w)
    }

    fn at_eof(&mut self) -> bool {
        self.at(&Tok::Eof)
    }

    fn advance(&mut self) -> Token {
        self.tok();
        let t = self.tokens[self.i.min(self.last())].clone();
        if self.i < self.last() {
            self.i += 1;
        }
        t
    }

    fn skip_newlines(&mut self) {
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
    fn after_newlines(&self) -> &Tok {
        let mut k = self.i;
        while self.tokens[k.min(self.last())].tok == Tok::Newline {
            k += 1;
        }
        &self.tokens[k.min(self.last())].tok
    }

    fn error_at(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(pos, message));
    }

    fn error_here(&mut self, message: impl Into<String>) {
        let pos = self.pos();
        self.error_at(pos, message);
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Option<()> {
        if self.at(tok) {
            self.advance();
            Some(())
        } else {
            let found = describe(&self.tok().clone());
            self.error_here(format!("expected {} {what}, found {found}", describe(tok)));
            None
        }
    }

    fn enter(&mut self) -> bool {
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

    fn leave(&mut self) {
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
    fn braced_block(&mut self) -> Option<Vec<Stmt>> {
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

    fn statement(&mut self) -> Option<Stmt> {
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
            Some(self.expr()?)
        } else {
            None
        };
        Some(StmtKind::Def { names, value })
    }

    /// A call without parentheses: `echo 'hi'`, `sh script: 'make', returnStdout: true`.
    fn is_command(&mut self) -> bool {
        if !matches!(self.tok(), Tok::Word(_)) {
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

    // ---- expressions ----

    pub(crate) fn expr(&mut self) -> Option<Expr> {
        if !self.enter() {
            return None;
        }
        let e = self.assignment();
        self.leave();
        e
    }

    fn assignment(&mut self) -> Option<Expr> {
        let target = self.ternary()?;
        let op = match self.tok().clone() {
            Tok::Assign => Some(None),
            Tok::Other(o) => match o.as_str() {
                "+=" => Some(Some(BinOp::Add)),
                "-=" => Some(Some(BinOp::Sub)),
                "*=" => Some(Some(BinOp::Mul)),
                "/=" => Some(Some(BinOp::Div)),
                "%=" => Some(Some(BinOp::Rem)),
                "**=" => Some(Some(BinOp::Pow)),
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else {
            return Some(target);
        };
        let pos = self.pos();
        if !matches!(
            target.kind,
            ExprKind::Var(_) | ExprKind::Prop { .. } | ExprKind::Index { .. }
        ) {
            self.error_at(
                pos,
                "only a variable, a property or an element can be assigned",
            );
            return None;
        }
        self.advance();
        self.skip_newlines();
        let value = self.expr()?;
        Some(Expr {
            kind: ExprKind::Assign {
                target: Box::new(target),
                op,
                value: Box::new(value),
            },
            pos,
        })
    }

    fn ternary(&mut self) -> Option<Expr> {
        let cond = self.binary(0)?;
        let next = self.after_newlines().clone();
        match next {
            Tok::Other(o) if o == "?:" => {
                self.skip_newlines();
                let pos = self.advance().pos;
                self.skip_newlines();
                let other = self.expr()?;
                Some(Expr {
                    kind: ExprKind::Elvis {
                        value: Box::new(cond),
                        other: Box::new(other),
                    },
                    pos,
                })
            }
            Tok::Other(o) if o == "?" => {
                self.skip_newlines();
                let pos = self.advance().pos;
                self.skip_newlines();
                let then = self.expr()?;
                self.skip_newlines();
                self.expect(&Tok::Colon, "in `condition ? a : b`")?;
                self.skip_newlines();
                let other = self.expr()?;
                Some(Expr {
                    kind: ExprKind::Ternary {
                        cond: Box::new(cond),
                        then: Box::new(then),
                        other: Box::new(other),
                    },
                    pos,
                })
            }
            _ => Some(cond),
        }
    }

    /// The binary operator at the current token, with its binding power.
    fn binary_op(&mut self) -> Option<(BinOp, u8, usize)> {
        let (op, bp) = match self.tok().clone() {
            Tok::Other(o) => match o.as_str() {
                "||" => (BinOp::Or, 1),
                "&&" => (BinOp::And, 2),
                "==" => (BinOp::Eq, 3),
                "!=" => (BinOp::Ne, 3),
                "<=>" => (BinOp::Cmp, 3),
                "=~" => (BinOp::Find, 3),
                "==~" => (BinOp::Match, 3),
                "<" => (BinOp::Lt, 4),
                "<=" => (BinOp::Le, 4),
                ">" => (BinOp::Gt, 4),
                ">=" => (BinOp::Ge, 4),
                "!" if matches!(self.peek_at(1), Tok::Word(w) if w == "in") => {
                    return Some((BinOp::NotIn, 4, 2));
                }
                "<<" => (BinOp::Shl, 6),
                "+" => (BinOp::Add, 7),
                "-" => (BinOp::Sub, 7),
                "*" => (BinOp::Mul, 8),
                "/" => (BinOp::Div, 8),
                "%" => (BinOp::Rem, 8),
                _ => return None,
            },
            Tok::Word(w) if w == "in" => (BinOp::In, 4),
            _ => return None,
        };
        Some((op, bp, 1))
    }

    /// Precedence climbing over the binary operators; `as`, `instanceof` and ranges bind
    /// at their Groovy levels.
    fn binary(&mut self, min: u8) -> Option<Expr> {
        let mut left = self.unary()?;
        loop {
            // `&&` and `||` may start the next line.
            if matches!(self.after_newlines(), Tok::Other(o) if o == "&&" || o == "||") {
                self.skip_newlines();
            }
            if min <= 4 && (self.at_word("as") || self.at_word("instanceof")) {
                let pos = self.pos();
                let as_cast = self.at_word("as");
                self.advance();
                let ty = self.type_name()?;
                let expr = Box::new(left);
                left = Expr {
                    kind: if as_cast {
                        ExprKind::Cast { expr, ty }
                    } else {
                        ExprKind::InstanceOf { expr, ty }
                    },
                    pos,
                };
                continue;
            }
            if min <= 5 && (self.at_op("..") || self.at_op("..<")) {
                let pos = self.pos();
                let exclusive = self.at_op("..<");
                self.advance();
                let to = self.binary(6)?;
                left = Expr {
                    kind: ExprKind::Range {
                        from: Box::new(left),
                        to: Box::new(to),
                        exclusive,
                    },
                    pos,
                };
                continue;
            }
            let Some((op, bp, width)) = self.binary_op() else {
                return Some(left);
            };
            if bp < min {
                return Some(left);
            }
            let pos = self.pos();
            self.i += width;
            self.skip_newlines();
            if !self.enter() {
                return None;
            }
            let right = self.binary(bp + 1);
            self.leave();
            left = Expr {
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right?),
                },
                pos,
            };
        }
    }

    fn type_name(&mut self) -> Option<String> {
        let mut name = match self.advance().tok {
            Tok::Word(w) => w,
            other => {
                self.error_here(format!("expected a type name, found {}", describe(&other)));
                return None;
            }
        };
        while self.at_op(".") && matches!(self.peek_at(1), Tok::Word(_)) {
            self.advance();
            if let Tok::Word(w) = self.advance().tok {
                name = format!("{name}.{w}");
            }
        }
        if self.at(&Tok::LBracket) && *self.peek_at(1) == Tok::RBracket {
            self.i += 2;
            name.push_str("[]");
        }
        Some(name)
    }

    fn unary(&mut self) -> Option<Expr> {
        let pos = self.pos();
        let op = match self.tok() {
            Tok::Other(o) => o.clone(),
            _ => return self.power(),
        };
        let wrap: fn(Box<Expr>) -> ExprKind = match op.as_str() {
            "!" => ExprKind::Not,
            "-" => ExprKind::Neg,
            "+" => {
                self.advance();
                return self.unary();
            }
            "++" | "--" => {
                self.advance();
                if !self.enter() {
                    return None;
                }
                let target = self.unary();
                self.leave();
                return Some(Expr {
                    kind: ExprKind::Step {
                        target: Box::new(target?),
                        delta: if op == "++" { 1 } else { -1 },
                        prefix: true,
                    },
                    pos,
                });
            }
            _ => return self.power(),
        };
        self.advance();
        if !self.enter() {
            return None;
        }
        let inner = self.unary();
        self.leave();
        let inner = inner?;
        // Fold negative literals so `-1` is a number.
        if op == "-" {
            match inner.kind {
                ExprKind::Int(n) => {
                    return Some(Expr {
                        kind: ExprKind::Int(n.wrapping_neg()),
                        pos,
                    });
                }
                ExprKind::Float(f) => {
                    return Some(Expr {
                        kind: ExprKind::Float(-f),
                        pos,
                    });
                }
                _ => {}
            }
        }
        Some(Expr {
            kind: wrap(Box::new(inner)),
            pos,
        })
    }

    fn power(&mut self) -> Option<Expr> {
        let base = self.postfix()?;
        if self.at_op("**") {
            let pos = self.advance().pos;
            if !self.enter() {
                return None;
            }
            let exp = self.unary();
            self.leave();
            return Some(Expr {
                kind: ExprKind::Binary {
                    op: BinOp::Pow,
                    left: Box::new(base),
                    right: Box::new(exp?),
                },
                pos,
            });
        }
        Some(base)
    }

    fn postfix(&mut self) -> Option<Expr> {
        let mut e = self.primary()?;
        loop {
            // A chained call may continue on the next line: `sh(…)\n  .trim()`.
            if matches!(self.after_newlines(), Tok::Other(o) if o == "." || o == "?." || o == "*.")
            {
                self.skip_newlines();
            }
            let pos = self.pos();
            match self.tok().clone() {
                Tok::Other(o) if o == "." || o == "?." || o == "*." => {
                    self.advance();
                    let name = match self.advance().tok {
                        Tok::Word(w) => w,
                        Tok::Str(s) => s,
                        other => {
                            self.error_at(
                                pos,
                                format!("expected a name after `{o}`, found {}", describe(&other)),
                            );
                            return None;
                        }
                    };
                    let (safe, spread) = (o == "?.", o == "*.");
                    if self.at(&Tok::LParen) || self.at(&Tok::LBrace) {
                        let args = self.call_args()?;
                        e = Expr {
                            kind: ExprKind::Call {
                                target: Some(Box::new(e)),
                                name,
                                args,
                                safe,
                                spread,
                            },
                            pos,
                        };
                    } else {
                        e = Expr {
                            kind: ExprKind::Prop {
                                obj: Box::new(e),
                                name,
                                safe,
                                spread,
                            },
                            pos,
                        };
                    }
                }
                Tok::LBracket => {
                    self.advance();
                    self.lines.push(false);
                    let index = self.expr();
                    let closed =
                        index.is_some() && self.expect(&Tok::RBracket, "after the index").is_some();
                    self.lines.pop();
                    if !closed {
                        return None;
                    }
                    e = Expr {
                        kind: ExprKind::Index {
                            obj: Box::new(e),
                            index: Box::new(index?),
                        },
                        pos,
                    };
                }
                Tok::LParen => {
                    let args = self.call_args()?;
                    e = match e.kind {
                        ExprKind::Var(name) => Expr {
                            kind: ExprKind::Call {
                                target: None,
                                name,
                                args,
                                safe: false,
                                spread: false,
                            },
                            pos: e.pos,
                        },
                        _ => Expr {
                            kind: ExprKind::CallValue {
                                callee: Box::new(e),
                                args,
                            },
                            pos,
                        },
                    };
                }
                // A trailing closure: `list.each { … }`, `dir('x') { … }`, `node { … }`.
                Tok::LBrace if matches!(e.kind, ExprKind::Var(_) | ExprKind::Call { .. }) => {
                    let cpos = self.pos();
                    let closure = self.closure()?;
                    let arg = Arg {
                        name: None,
                        value: Expr {
                            kind: ExprKind::Closure(closure),
                            pos: cpos,
                        },
                    };
                    e = match e.kind {
                        ExprKind::Var(name) => Expr {
                            kind: ExprKind::Call {
                                target: None,
                                name,
                                args: vec![arg],
                                safe: false,
                                spread: false,
                            },
                            pos: e.pos,
                        },
                        ExprKind::Call {
                            target,
                            name,
                            mut args,
                            safe,
                            spread,
                        } => {
                            args.push(arg);
                            Expr {
                                kind: ExprKind::Call {
                                    target,
                                    name,
                                    args,
                                    safe,
                                    spread,
                                },
                                pos: e.pos,
                            }
                        }
                        _ => return None,
                    };
                }
                Tok::Other(o) if o == "++" || o == "--" => {
                    self.advance();
                    e = Expr {
                        kind: ExprKind::Step {
                            target: Box::new(e),
                            delta: if o == "++" { 1 } else { -1 },
                            prefix: false,
                        },
                        pos,
                    };
                }
                _ => return Some(e),
            }
        }
    }

    /// `(args)` and any trailing closure, or a trailing closure alone.
    fn call_args(&mut self) -> Option<Vec<Arg>> {
        let mut args = Vec::new();
        if self.at(&Tok::LParen) {
            self.advance();
            self.lines.push(false);
            let ok = self.arg_list(&mut args, &Tok::RParen);
            self.lines.pop();
            ok?;
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
        Some(args)
    }

    fn arg_list(&mut self, args: &mut Vec<Arg>, close: &Tok) -> Option<()> {
        loop {
            if self.at(close) {
                self.advance();
                return Some(());
            }
            args.push(self.arg()?);
            if self.at(&Tok::Comma) {
                self.advance();
            } else if !self.at(close) {
                let found = describe(&self.tok().clone());
                self.error_here(format!(
                    "expected `,` or {}, found {found}",
                    describe(close)
                ));
                return None;
            }
        }
    }

    /// `value` or `name: value`.
    fn arg(&mut self) -> Option<Arg> {
        let named =
            matches!(self.tok(), Tok::Word(_) | Tok::Str(_)) && *self.peek_at(1) == Tok::Colon;
        if named {
            let name = match self.advance().tok {
                Tok::Word(w) | Tok::Str(w) => w,
                _ => String::new(),
            };
            self.advance(); // `:`
            self.skip_newlines();
            let value = self.expr()?;
            return Some(Arg {
                name: Some(name),
                value,
            });
        }
        Some(Arg {
            name: None,
            value: self.expr()?,
        })
    }

    /// `{ a, b -> … }` or `{ … }` (with the implicit `it`), at the `{`.
    fn closure(&mut self) -> Option<Arc<ClosureDef>> {
        let pos = self.pos();
        // Look ahead for `name, name ->` (each name may have a type before it).
        let mut k = 1;
        while self.peek_at(k) == &Tok::Newline {
            k += 1;
        }
        let mut params = Vec::new();
        let mut j = k;
        let mut has_params = false;
        loop {
            match (self.peek_at(j).clone(), self.peek_at(j + 1).clone()) {
                (Tok::Other(o), _) if o == "->" && params.is_empty() => {
                    has_params = true;
                    j += 1;
                    break;
                }
                (Tok::Word(_), Tok::Word(name)) => {
                    params.push(name);
                    j += 2;
                }
                (Tok::Word(name), _) => {
                    params.push(name);
                    j += 1;
                }
                _ => break,
            }
            match self.peek_at(j).clone() {
                Tok::Comma => j += 1,
                Tok::Other(o) if o == "->" => {
                    has_params = true;
                    j += 1;
                    break;
                }
                _ => break,
            }
        }
        if !has_params {
            params.clear();
        }
        if !self.enter() {
            return None;
        }
        self.lines.push(true);
        self.i += if has_params { j } else { 1 };
        let mut body = Vec::new();
        let result = loop {
            self.skip_separators();
            match self.tokens[self.i.min(self.last())].tok {
                Tok::RBrace => {
                    self.i += 1;
                    break Some(());
                }
                Tok::Eof => {
                    if !self.too_deep {
                        self.error_at(pos, "this closure's `{` is never closed");
                    }
                    break None;
                }
                _ => match self.statement() {
                    Some(s) => body.push(s),
                    None if self.too_deep => break None,
                    None => self.recover(),
                },
            }
        };
        self.lines.pop();
        self.leave();
        result?;
        Some(Arc::new(ClosureDef {
            params: if has_params { params } else { Vec::new() },
            body,
            pos,
        }))
    }

    fn primary(&mut self) -> Option<Expr> {
        let pos = self.pos();
        let tok = self.tok().clone();
        let kind = match tok {
            Tok::Num(n) => {
                self.advance();
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    ExprKind::Int(n as i64)
                } else {
                    ExprKind::Float(n)
                }
            }
            Tok::Str(s) => {
                self.advance();
                ExprKind::Str(s)
            }
            Tok::GStr(parts) => {
                self.advance();
                let parts = gstring(&parts, pos, self.diags)?;
                match parts.as_slice() {
                    [] => ExprKind::Str(String::new()),
                    [GPart::Text(t)] => ExprKind::Str(t.clone()),
                    _ => ExprKind::GStr(parts),
                }
            }
            Tok::Word(w) => {
                self.advance();
                match w.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "null" => ExprKind::Null,
                    "new" => return self.new_expr(pos),
                    _ => ExprKind::Var(w),
                }
            }
            Tok::LParen => {
                self.advance();
                self.lines.push(false);
                let inner = self.expr();
                let closed = inner.is_some() && self.expect(&Tok::RParen, "to close `(`").is_some();
                self.lines.pop();
                if !closed {
                    return None;
                }
                return inner;
            }
            Tok::LBracket => return self.list_or_map(),
            Tok::LBrace => ExprKind::Closure(self.closure()?),
            other => {
                self.error_here(format!("expected a value, found {}", describe(&other)));
                return None;
            }
        };
        Some(Expr { kind, pos })
    }

    fn new_expr(&mut self, pos: Pos) -> Option<Expr> {
        let ty = self.type_name()?;
        let args = if self.at(&Tok::LParen) {
            self.call_args()?
        } else {
            self.error_here(format!("expected `(` after `new {ty}`"));
            return None;
        };
        Some(Expr {
            kind: ExprKind::New { ty, args },
            pos,
        })
    }

    fn list_or_map(&mut self) -> Option<Expr> {
        let pos = self.pos();
        self.advance(); // `[`
        self.lines.push(false);
        let result = self.list_or_map_inner(pos);
        self.lines.pop();
        result
    }

    fn list_or_map_inner(&mut self, pos: Pos) -> Option<Expr> {
        if self.at(&Tok::Colon) {
            self.advance();
            self.expect(&Tok::RBracket, "after `[:`")?;
            return Some(Expr {
                kind: ExprKind::Map(Vec::new()),
                pos,
            });
        }
        let mut items = Vec::new();
        let mut entries = Vec::new();
        loop {
            if self.at(&Tok::RBracket) {
                self.advance();
                break;
            }
            let key_pos = self.pos();
            let key = match (self.tok().clone(), self.peek_at(1).clone()) {
                (Tok::Word(w) | Tok::Str(w), Tok::Colon) => {
                    self.advance();
                    Some(Expr {
                        kind: ExprKind::Str(w),
                        pos: key_pos,
                    })
                }
                (Tok::GStr(_) | Tok::Num(_), Tok::Colon) => Some(self.primary()?),
                (Tok::LParen, _) => {
                    let e = self.expr()?;
                    if self.at(&Tok::Colon) {
                        Some(e)
                    } else {
                        items.push(e);
                        None
                    }
                }
                _ => {
                    items.push(self.expr()?);
                    None
                }
            };
            if let Some(key) = key {
                self.expect(&Tok::Colon, "after the map key")?;
                entries.push((key, self.expr()?));
            }
            if !items.is_empty() && !entries.is_empty() {
                self.error_at(pos, "a list cannot mix `key: value` pairs and plain values");
                return None;
            }
            if self.at(&Tok::Comma) {
                self.advance();
            } else if !self.at(&Tok::RBracket) {
                let found = describe(&self.tok().clone());
                self.error_here(format!("expected `,` or `]`, found {found}"));
                return None;
            }
        }
        let kind = if entries.is_empty() {
            ExprKind::List(items)
        } else {
            ExprKind::Map(entries)
        };
        Some(Expr { kind, pos })
    }
}

enum ForHead {
    In(String, Expr),
    C(Option<Box<Stmt>>, Option<Expr>, Vec<Expr>),
}
