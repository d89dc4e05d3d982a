//! Expressions: precedence climbing over Groovy's operators, postfix chains (properties,
//! calls, indexes, trailing closures) and call arguments.

use super::super::ast::*;
use super::Parser;
use crate::pipeline::lexer::{Part, Tok};

impl Parser<'_, '_> {
    pub(crate) fn expr(&mut self) -> Option<Expr> {
        if !self.enter() {
            return None;
        }
        let e = self.assignment();
        self.leave();
        e
    }

    pub(super) fn assignment(&mut self) -> Option<Expr> {
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
        let value = self.value_or_command()?;
        Some(Expr {
            kind: ExprKind::Assign {
                target: Box::new(target),
                op,
                value: Box::new(value),
            },
            pos,
        })
    }

    pub(super) fn ternary(&mut self) -> Option<Expr> {
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
    pub(super) fn binary_op(&mut self) -> Option<(BinOp, u8, usize)> {
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
    pub(super) fn binary(&mut self, min: u8) -> Option<Expr> {
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

    pub(super) fn type_name(&mut self) -> Option<String> {
        let mut name = match self.advance().tok {
            Tok::Word(w) => w,
            other => {
                self.error_here(format!("expected a type name, found {}", other.describe()));
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

    pub(super) fn unary(&mut self) -> Option<Expr> {
        let pos = self.pos();
        let op = match self.tok() {
            Tok::Other(o) => o.clone(),
            _ => return self.power(),
        };
        let wrap: fn(Box<Expr>) -> ExprKind = match op.as_str() {
            "!" => ExprKind::Not,
            "-" => ExprKind::Neg,
            "~" => ExprKind::Pattern,
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

    pub(super) fn power(&mut self) -> Option<Expr> {
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

    pub(super) fn postfix(&mut self) -> Option<Expr> {
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
                                format!("expected a name after `{o}`, found {}", other.describe()),
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
    pub(super) fn call_args(&mut self) -> Option<Vec<Arg>> {
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

    pub(super) fn arg_list(&mut self, args: &mut Vec<Arg>, close: &Tok) -> Option<()> {
        loop {
            if self.at(close) {
                self.advance();
                return Some(());
            }
            args.push(self.arg()?);
            if self.at(&Tok::Comma) {
                self.advance();
            } else if !self.at(close) {
                let found = self.tok().describe();
                self.error_here(format!(
                    "expected `,` or {}, found {found}",
                    close.describe()
                ));
                return None;
            }
        }
    }

    /// `value` or `name: value`.
    pub(super) fn arg(&mut self) -> Option<Arg> {
        let plain = |t: &Tok| match t {
            Tok::Word(w) | Tok::Str(w) => Some(w.clone()),
            Tok::GStr(parts) => match parts.as_slice() {
                [Part::Text(t)] => Some(t.clone()),
                _ => None,
            },
            _ => None,
        };
        let key = plain(&self.tok().clone());
        if let Some(name) = key.filter(|_| *self.peek_at(1) == Tok::Colon) {
            self.advance();
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
}
