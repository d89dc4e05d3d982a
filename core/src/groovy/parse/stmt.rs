//! Statements: blocks, declarations, `if`, loops, `switch`, `try`, and calls without
//! parentheses (`echo 'hi'`).

use super::super::ast::*;
use super::{Parser, REFUSED};
use crate::pipeline::Pos;
use crate::pipeline::lexer::Tok;

impl Parser<'_, '_> {
    /// `{ statements }`, at the `{`.
    pub(super) fn braced_block(&mut self) -> Option<Vec<Stmt>> {
        let open = self.pos();
        self.i += 1; // `{`
        self.statements_to_brace(open, "this `{` is never closed")
    }

    /// Statements up to the `}` closing a block whose `{` (at `open`) was just read; `unclosed`
    /// is the error when the file ends first. A block nests one level deeper, and newlines
    /// separate its statements.
    pub(super) fn statements_to_brace(&mut self, open: Pos, unclosed: &str) -> Option<Vec<Stmt>> {
        if !self.enter() {
            return None;
        }
        self.lines.push(true);
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
                        self.error_at(open, unclosed);
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
    pub(super) fn body(&mut self) -> Option<Vec<Stmt>> {
        self.skip_newlines();
        if self.at(&Tok::LBrace) {
            self.braced_block()
        } else {
            Some(vec![self.statement()?])
        }
    }

    pub(super) fn end_of_statement(&mut self) -> Option<()> {
        match self.tokens[self.i.min(self.last())].tok {
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => Some(()),
            ref other => {
                let found = other.describe();
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

    pub(super) fn statement_inner(&mut self) -> Option<Stmt> {
        let pos = self.pos();
        let kind = match self.tok().clone() {
            Tok::Other(at) if at == "@" => {
                self.error_here("annotations such as `@Grab` or `@Library` load code from outside the Jenkinsfile, which the Groovy subset does not run");
                return None;
            }
            Tok::Word(_) if self.at_method_definition() => self.method_definition()?,
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
    pub(super) fn condition(&mut self) -> Option<Expr> {
        self.expect(&Tok::LParen, "before the condition")?;
        self.lines.push(false);
        let cond = self.expr();
        let close = cond.is_some() && self.expect(&Tok::RParen, "after the condition").is_some();
        self.lines.pop();
        if close { cond } else { None }
    }

    pub(super) fn if_stmt(&mut self) -> Option<StmtKind> {
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

    pub(super) fn for_stmt(&mut self) -> Option<StmtKind> {
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

    pub(super) fn switch_stmt(&mut self) -> Option<StmtKind> {
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

    pub(super) fn switch_cases(&mut self) -> Option<Vec<(Vec<Expr>, Vec<Stmt>)>> {
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

    pub(super) fn try_stmt(&mut self) -> Option<StmtKind> {
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
    pub(super) fn is_command(&mut self) -> bool {
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

    pub(super) fn command(&mut self) -> Option<Expr> {
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
