//! Declarations: variables (`def x`, typed, destructuring) and method definitions, which
//! run as closures assigned to their name (a default parameter value fills an argument left
//! null).

use super::super::ast::*;
use super::{Parser, TYPES};
use crate::pipeline::Pos;
use crate::pipeline::lexer::Tok;

impl Parser<'_, '_> {
    /// `def x`, `String x = …`, `List<String> xs = …`, `def (a, b) = …`.
    pub(super) fn is_declaration(&mut self) -> bool {
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

    /// `def name(…) {`, `String name(String a, int b) {`, `private static void name() {`:
    /// two or more words (modifiers, a type, the name), parentheses, then a block.
    pub(super) fn at_method_definition(&self) -> bool {
        let Tok::Word(first) = self.peek_at(0) else {
            return false;
        };
        let starts = matches!(
            first.as_str(),
            "def" | "void" | "private" | "public" | "protected" | "static" | "final"
        ) || TYPES.contains(&first.as_str())
            || first.starts_with(|c: char| c.is_ascii_uppercase());
        if !starts {
            return false;
        }
        let mut k = 0;
        let mut words = 0;
        loop {
            match self.peek_at(k) {
                Tok::Word(_) => words += 1,
                // Generic types: `List<String> names(…)`.
                Tok::Other(o) if o == "<" || o == ">" || o == "," => {}
                Tok::LParen if words >= 2 => break,
                _ => return false,
            }
            k += 1;
        }
        let mut depth = 0;
        loop {
            match self.peek_at(k) {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Eof => return false,
                _ => {}
            }
            k += 1;
        }
        k += 1;
        while matches!(self.peek_at(k), Tok::Newline) {
            k += 1;
        }
        matches!(self.peek_at(k), Tok::LBrace)
    }

    /// A method definition, run as a closure assigned to its name in the script's binding,
    /// so `script` blocks and other methods can call it.
    pub(super) fn method_definition(&mut self) -> Option<StmtKind> {
        let pos = self.pos();
        let mut name = String::new();
        while !self.at(&Tok::LParen) {
            if let Tok::Word(w) = self.advance().tok {
                name = w;
            }
        }
        self.advance(); // `(`
        let mut params = Vec::new();
        let mut defaults = Vec::new();
        let mut last_word = None;
        loop {
            match self.advance().tok {
                Tok::Word(w) => last_word = Some(w),
                Tok::Comma | Tok::RParen => {
                    if let Some(p) = last_word.take() {
                        params.push(p);
                    }
                    if self.tokens[self.i.saturating_sub(1)].tok == Tok::RParen {
                        break;
                    }
                }
                // `String channel = '#builds'`: a missing argument takes the default.
                Tok::Assign => {
                    let Some(param) = last_word.take() else {
                        self.error_here(format!(
                            "expected a parameter name before `=` in `{name}`"
                        ));
                        return None;
                    };
                    let value = self.expr()?;
                    defaults.push((param.clone(), value));
                    params.push(param);
                    if self.at(&Tok::Comma) {
                        self.advance();
                    } else if self.at(&Tok::RParen) {
                        self.advance();
                        break;
                    }
                }
                Tok::Other(o) if matches!(o.as_str(), "<" | ">" | "[" | "]") => {}
                Tok::LBracket | Tok::RBracket => {}
                other => {
                    self.error_here(format!(
                        "expected a parameter of `{name}`, found {}",
                        other.describe()
                    ));
                    return None;
                }
            }
        }
        self.skip_newlines();
        let mut body = self.braced_block()?;
        // Defaults fill the parameters left null (an argument not given).
        let filled = defaults.into_iter().map(|(param, value)| {
            let var = |p: Pos| Expr {
                kind: ExprKind::Var(param.clone()),
                pos: p,
            };
            let vpos = value.pos;
            Stmt {
                kind: StmtKind::If {
                    cond: Expr {
                        kind: ExprKind::Binary {
                            op: BinOp::Eq,
                            left: Box::new(var(vpos)),
                            right: Box::new(Expr {
                                kind: ExprKind::Null,
                                pos: vpos,
                            }),
                        },
                        pos: vpos,
                    },
                    then: vec![Stmt {
                        kind: StmtKind::Expr(Expr {
                            kind: ExprKind::Assign {
                                target: Box::new(var(vpos)),
                                op: None,
                                value: Box::new(value),
                            },
                            pos: vpos,
                        }),
                        pos: vpos,
                    }],
                    other: None,
                },
                pos: vpos,
            }
        });
        body.splice(0..0, filled);
        let closure = ClosureDef {
            // No parameters would mean the implicit `it`; a method without any takes none.
            params: if params.is_empty() {
                vec!["_".to_owned()]
            } else {
                params
            },
            body,
            pos,
        };
        Some(StmtKind::Expr(Expr {
            kind: ExprKind::Assign {
                target: Box::new(Expr {
                    kind: ExprKind::Var(name),
                    pos,
                }),
                op: None,
                value: Box::new(Expr {
                    kind: ExprKind::Closure(std::sync::Arc::new(closure)),
                    pos,
                }),
            },
            pos,
        }))
    }

    pub(super) fn declaration(&mut self) -> Option<StmtKind> {
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
                            other.describe()
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
                        other.describe()
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
}
