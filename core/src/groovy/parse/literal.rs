//! Primary values: literals, GStrings, lists, maps, `new`, and closures.

use std::sync::Arc;

use super::super::ast::*;
use super::{Parser, gstring};
use crate::pipeline::Pos;
use crate::pipeline::lexer::Tok;

impl Parser<'_, '_> {
    /// `{ a, b -> … }` or `{ … }` (with the implicit `it`), at the `{`.
    pub(super) fn closure(&mut self) -> Option<Arc<ClosureDef>> {
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
        self.i += if has_params { j } else { 1 };
        let body = self.statements_to_brace(pos, "this closure's `{` is never closed")?;
        Some(Arc::new(ClosureDef {
            params: if has_params { params } else { Vec::new() },
            body,
            pos,
        }))
    }

    pub(super) fn primary(&mut self) -> Option<Expr> {
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
                self.error_here(format!("expected a value, found {}", other.describe()));
                return None;
            }
        };
        Some(Expr { kind, pos })
    }

    pub(super) fn new_expr(&mut self, pos: Pos) -> Option<Expr> {
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

    pub(super) fn list_or_map(&mut self) -> Option<Expr> {
        let pos = self.pos();
        self.advance(); // `[`
        self.lines.push(false);
        let result = self.list_or_map_inner(pos);
        self.lines.pop();
        result
    }

    pub(super) fn list_or_map_inner(&mut self, pos: Pos) -> Option<Expr> {
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
                let found = self.tok().describe();
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
