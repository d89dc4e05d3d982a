//! The generic shape of a declarative Jenkinsfile: nested `name args { block }` statements
//! and `NAME = value` assignments. A recursive-descent parser over the lexer's tokens; on an
//! error it reports, skips to the end of the statement and carries on, so one run reports
//! every problem it can.

use std::sync::Arc;

use super::diagnostics::{Diagnostic, Pos};
use super::lexer::{Part, Tok, Token, lex};
use crate::groovy::ast::{Expr, Stmt};
use crate::groovy::parse as groovy;

/// Calls that are Groovy when used as a value: steps returning something
/// (`X = sh(script: 'git rev-parse HEAD', returnStdout: true)`).
const GROOVY_VALUE_CALLS: &[&str] = &["sh", "readFile", "fileExists", "input"];

/// An argument or assigned value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String, Pos),
    GStr(Vec<Part>, Pos),
    Num(f64, Pos),
    Bool(bool, Pos),
    /// A bare word such as `any`, `none` or `MINUTES`.
    Word(String, Pos),
    List(Vec<Value>, Pos),
    Map(Vec<(String, Value)>, Pos),
    /// A call used as a value, e.g. `credentials('id')` or `logRotator(numToKeepStr: '5')`.
    Call {
        name: String,
        args: Args,
        pos: Pos,
    },
    /// A Groovy expression, evaluated when the run gets there: `'v' + env.BUILD_NUMBER`,
    /// `sh(script: 'git describe', returnStdout: true).trim()`.
    Expr(Arc<Expr>, Pos),
}

impl Value {
    pub fn pos(&self) -> Pos {
        match self {
            Value::Str(_, p)
            | Value::GStr(_, p)
            | Value::Num(_, p)
            | Value::Bool(_, p)
            | Value::Word(_, p)
            | Value::List(_, p)
            | Value::Map(_, p) => *p,
            Value::Call { pos, .. } | Value::Expr(_, pos) => *pos,
        }
    }
}

/// Positional and named arguments, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    pub positional: Vec<Value>,
    pub named: Vec<(String, Value)>,
}

impl Args {
    pub fn is_empty(&self) -> bool {
        self.positional.is_empty() && self.named.is_empty()
    }

    pub fn named(&self, key: &str) -> Option<&Value> {
        self.named.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// One statement: `name args { block }` or `name = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub pos: Pos,
    pub args: Args,
    pub block: Option<Vec<Node>>,
    pub assign: Option<Value>,
    /// The Groovy statements of `script { }` and `expression { }`.
    pub script: Option<Arc<Vec<Stmt>>>,
}

/// How deeply blocks, lists, maps and calls may nest. Real pipelines stay under 20; the limit
/// bounds every recursion over the tree (parser, analyzer, executor) so that no input can
/// exhaust a thread's stack.
pub const MAX_NESTING: usize = 100;

/// Parses a whole file; the result holds the top-level statements, and is `None` when the
/// file nests deeper than [`MAX_NESTING`] (then one diagnostic says where, and there is
/// nothing worth analysing).
pub fn parse(src: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<Node>> {
    let tokens = lex(src, diags);
    let mut parser = Parser {
        tokens,
        i: 0,
        depth: 0,
        too_deep: None,
        diags,
    };
    let mut nodes = Vec::new();
    loop {
        parser.skip_separators();
        if parser.at(&Tok::Eof) {
            if let Some(keep) = parser.too_deep {
                parser.diags.truncate(keep);
                return None;
            }
            return Some(nodes);
        }
        if parser.at(&Tok::RBrace) {
            let pos = parser.pos();
            parser.diags.push(Diagnostic::error(pos, "unmatched `}`"));
            parser.i += 1;
            continue;
        }
        // Outside `pipeline { }` a Jenkinsfile is Groovy: method definitions and variables
        // the pipeline's `script` blocks use.
        if parser.at_groovy_definition() {
            let pos = parser.pos();
            let parsed = groovy::statement(&parser.tokens, parser.i, 0, parser.diags);
            parser.i = parsed.next.max(parser.i + 1).min(parser.tokens.len() - 1);
            if parsed.too_deep {
                parser.too_deep = Some(parser.diags.len());
                parser.i = parser.tokens.len() - 1;
                continue;
            }
            if let Some(stmt) = parsed.value {
                nodes.push(Node {
                    name: GROOVY_NODE.to_owned(),
                    pos,
                    args: Args::default(),
                    block: None,
                    assign: None,
                    script: Some(Arc::new(vec![stmt])),
                });
            }
            continue;
        }
        match parser.statement() {
            Some(node) => nodes.push(node),
            None => parser.recover(),
        }
    }
}

/// The name of a top-level node holding a Groovy statement from outside `pipeline { }`.
pub const GROOVY_NODE: &str = "(groovy)";

struct Parser<'d> {
    tokens: Vec<Token>,
    i: usize,
    /// Blocks, lists and calls open around the current token.
    depth: usize,
    /// Set when the input nested too deeply: parsing stopped there, and the diagnostics
    /// after that one (unclosed blocks, unexpected ends) are noise to drop.
    too_deep: Option<usize>,
    diags: &'d mut Vec<Diagnostic>,
}

impl Parser<'_> {
    /// A top-level Groovy definition: `def …`, `void name(…)`, `String name …`, a modifier,
    /// an annotation or an import (the last two are refused by the Groovy parser, by name).
    fn at_groovy_definition(&self) -> bool {
        match self.tok() {
            Tok::Other(at) => at == "@",
            Tok::Word(w) => {
                matches!(
                    w.as_str(),
                    "def"
                        | "void"
                        | "private"
                        | "public"
                        | "protected"
                        | "static"
                        | "final"
                        | "import"
                ) || (w.starts_with(|c: char| c.is_ascii_uppercase())
                    || matches!(w.as_str(), "int" | "long" | "boolean" | "double"))
                    && matches!(
                        self.tokens.get(self.i + 1).map(|t| &t.tok),
                        Some(Tok::Word(_))
                    )
            }
            _ => false,
        }
    }

    fn tok(&self) -> &Tok {
        &self.tokens[self.i.min(self.tokens.len() - 1)].tok
    }

    fn pos(&self) -> Pos {
        self.tokens[self.i.min(self.tokens.len() - 1)].pos
    }

    fn at(&self, tok: &Tok) -> bool {
        self.tok() == tok
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.i.min(self.tokens.len() - 1)].clone();
        if self.i < self.tokens.len() - 1 {
            self.i += 1;
        }
        token
    }

    fn skip_newlines(&mut self) {
        while self.at(&Tok::Newline) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.tok(), Tok::Newline | Tok::Semi) {
            self.i += 1;
        }
    }

    fn error(&mut self, message: impl Into<String>) {
        let pos = self.pos();
        self.diags.push(Diagnostic::error(pos, message));
    }

    /// Enters a block, list or call; false (with the diagnostic at the opening token) when
    /// that would nest deeper than [`MAX_NESTING`]. Parsing then stops: the rest of the file
    /// is skipped and the callers unwind.
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_NESTING {
            self.error(format!(
                "nested more than {MAX_NESTING} levels deep (blocks, lists and calls)"
            ));
            self.too_deep = Some(self.diags.len());
            self.i = self.tokens.len() - 1;
            return false;
        }
        self.depth += 1;
        true
    }

    /// Skips to the end of the current statement (a newline or `;` outside brackets, or the
    /// `}` closing the enclosing block, which is left in place).
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.tok() {
                Tok::Eof => return,
                Tok::LBrace | Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket if depth == 0 => {
                    if !self.at(&Tok::RBrace) {
                        self.i += 1;
                    }
                    return;
                }
                Tok::RBrace | Tok::RParen | Tok::RBracket => depth -= 1,
                Tok::Newline | Tok::Semi if depth == 0 => return,
                _ => {}
            }
            self.i += 1;
        }
    }

    fn statement(&mut self) -> Option<Node> {
        let pos = self.pos();
        let name = match self.tok().clone() {
            Tok::Word(w) if w == "def" => {
                self.error(
                    "`def` declares a Groovy variable, which Sluice runs only inside `script { }`",
                );
                return None;
            }
            Tok::Other(at) if at == "@" => {
                self.error("annotations such as `@Library` load Groovy, which this Jenkinsfile subset does not run");
                return None;
            }
            Tok::Word(w) => w,
            other => {
                self.error(format!(
                    "expected a section or step name, found {}",
                    other.describe()
                ));
                return None;
            }
        };
        self.advance();
        let mut node = Node {
            name,
            pos,
            args: Args::default(),
            block: None,
            assign: None,
            script: None,
        };
        if (node.name == "script" || node.name == "expression") && self.at(&Tok::LBrace) {
            let parsed = groovy::block(&self.tokens, self.i, self.depth, self.diags);
            self.i = parsed.next;
            if parsed.too_deep {
                self.too_deep = Some(self.diags.len());
                self.i = self.tokens.len() - 1;
                return None;
            }
            node.script = Some(Arc::new(parsed.value?));
            return Some(node);
        }
        match self.tok().clone() {
            Tok::Assign => {
                self.advance();
                node.assign = Some(self.value()?);
            }
            Tok::LParen => {
                self.advance();
                node.args = self.args(&Tok::RParen)?;
                if self.at(&Tok::LBrace) {
                    node.block = Some(self.block()?);
                }
            }
            Tok::LBrace => node.block = Some(self.block()?),
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => {}
            Tok::Other(s) if s == "." || s == "?." => {
                self.error(format!(
                    "`{}.…` is a Groovy statement: put it inside `script {{ }}`",
                    node.name
                ));
                return None;
            }
            _ => {
                node.args = self.command_args()?;
                if self.at(&Tok::LBrace) {
                    node.block = Some(self.block()?);
                }
            }
        }
        if !matches!(
            self.tok(),
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof
        ) {
            let found = self.tok().describe();
            self.error(format!(
                "expected the end of the statement after `{}`, found {found}",
                node.name
            ));
            return None;
        }
        Some(node)
    }

    fn block(&mut self) -> Option<Vec<Node>> {
        if !self.enter() {
            return None;
        }
        let nodes = self.block_body();
        self.depth -= 1;
        Some(nodes)
    }

    fn block_body(&mut self) -> Vec<Node> {
        let open = self.pos();
        self.advance(); // `{`
        let mut nodes = Vec::new();
        loop {
            self.skip_separators();
            match self.tok() {
                Tok::RBrace => {
                    self.advance();
                    return nodes;
                }
                Tok::Eof => {
                    self.diags
                        .push(Diagnostic::error(open, "this `{` is never closed"));
                    return nodes;
                }
                _ => match self.statement() {
                    Some(node) => nodes.push(node),
                    None => self.recover(),
                },
            }
        }
    }

    /// `a, b, key: c` up to (and consuming) `close`; newlines are free inside.
    fn args(&mut self, close: &Tok) -> Option<Args> {
        let mut args = Args::default();
        loop {
            self.skip_newlines();
            if self.at(close) {
                self.advance();
                return Some(args);
            }
            self.arg(&mut args)?;
            self.skip_newlines();
            if self.at(&Tok::Comma) {
                self.advance();
            } else if !self.at(close) {
                let found = self.tok().describe();
                self.error(format!(
                    "expected `,` or {}, found {found}",
                    close.describe()
                ));
                return None;
            }
        }
    }

    /// Arguments without parentheses (`sh 'make'`, `agent any`), up to the end of the line.
    fn command_args(&mut self) -> Option<Args> {
        let mut args = Args::default();
        loop {
            self.arg(&mut args)?;
            if self.at(&Tok::Comma) {
                self.advance();
                self.skip_newlines();
            } else {
                return Some(args);
            }
        }
    }

    fn arg(&mut self, args: &mut Args) -> Option<()> {
        let is_named = matches!(self.tok(), Tok::Word(_) | Tok::Str(_))
            || matches!(self.tok(), Tok::GStr(parts) if matches!(parts.as_slice(), [Part::Text(_)]));
        let is_named = is_named
            && self
                .tokens
                .get(self.i + 1)
                .is_some_and(|t| t.tok == Tok::Colon);
        if is_named {
            let key = match self.advance().tok {
                Tok::Word(w) | Tok::Str(w) => w,
                Tok::GStr(parts) => match parts.as_slice() {
                    [Part::Text(t)] => t.clone(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            self.advance(); // `:`
            self.skip_newlines();
            let value = self.value()?;
            args.named.push((key, value));
        } else {
            let value = self.value()?;
            args.positional.push(value);
        }
        Some(())
    }

    fn value(&mut self) -> Option<Value> {
        if !self.enter() {
            return None;
        }
        let value = self.value_inner();
        self.depth -= 1;
        value
    }

    /// Re-reads the value starting at token `start` as a Groovy expression.
    fn groovy_value(&mut self, start: usize, pos: Pos) -> Option<Value> {
        let parsed = groovy::expression(&self.tokens, start, self.depth, self.diags);
        self.i = parsed.next;
        if parsed.too_deep {
            self.too_deep = Some(self.diags.len());
            self.i = self.tokens.len() - 1;
            return None;
        }
        Some(Value::Expr(Arc::new(parsed.value?), pos))
    }

    fn value_inner(&mut self) -> Option<Value> {
        let pos = self.pos();
        let start = self.i;
        if matches!(self.tok(), Tok::LBrace | Tok::LParen)
            || matches!(self.tok(), Tok::Word(w) if GROOVY_VALUE_CALLS.contains(&w.as_str()) || w == "new")
            || matches!(self.tok(), Tok::Other(op) if op == "!" || op == "-" && !matches!(self.tokens.get(self.i + 1).map(|t| &t.tok), Some(Tok::Num(_))))
        {
            return self.groovy_value(start, pos);
        }
        let value = match self.tok().clone() {
            Tok::Str(s) => {
                self.advance();
                Value::Str(s, pos)
            }
            Tok::GStr(parts) => {
                self.advance();
                Value::GStr(parts, pos)
            }
            Tok::Num(n) => {
                self.advance();
                Value::Num(n, pos)
            }
            Tok::Other(s)
                if s == "-"
                    && matches!(
                        self.tokens.get(self.i + 1).map(|t| &t.tok),
                        Some(Tok::Num(_))
                    ) =>
            {
                self.advance();
                match self.advance().tok {
                    Tok::Num(n) => Value::Num(-n, pos),
                    _ => Value::Num(0.0, pos),
                }
            }
            Tok::Word(w) if w == "true" || w == "false" => {
                self.advance();
                Value::Bool(w == "true", pos)
            }
            Tok::Word(w) => {
                self.advance();
                if self.at(&Tok::LParen) {
                    self.advance();
                    let args = self.args(&Tok::RParen)?;
                    Value::Call { name: w, args, pos }
                } else {
                    Value::Word(w, pos)
                }
            }
            Tok::LBracket => {
                self.advance();
                self.skip_newlines();
                if self.at(&Tok::Colon) {
                    self.advance();
                    self.skip_newlines();
                    if !self.at(&Tok::RBracket) {
                        self.error("expected `]` after `[:`");
                        return None;
                    }
                    self.advance();
                    return Some(Value::Map(Vec::new(), pos));
                }
                let args = self.args(&Tok::RBracket)?;
                if args.named.is_empty() {
                    Value::List(args.positional, pos)
                } else if args.positional.is_empty() {
                    Value::Map(args.named, pos)
                } else {
                    self.diags.push(Diagnostic::error(
                        pos,
                        "a list cannot mix `key: value` pairs and plain values",
                    ));
                    return None;
                }
            }
            other => {
                self.error(format!("expected a value, found {}", other.describe()));
                return None;
            }
        };
        // An operator, a property or an index after the value: it is a Groovy expression.
        if matches!(self.tok(), Tok::Other(op) if op != "@")
            || matches!(self.tok(), Tok::Word(w) if w == "in" || w == "as" || w == "instanceof")
            || (self.at(&Tok::LBracket) && matches!(value, Value::Word(..) | Value::Call { .. }))
        {
            return self.groovy_value(start, pos);
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Vec<Node> {
        let mut diags = Vec::new();
        let nodes = parse(src, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        nodes
    }

    #[test]
    fn nested_blocks_calls_and_assignments() {
        let nodes = ok(
            "pipeline {\n  agent any\n  environment { A = 'x'; B = credentials('tok') }\n  stages {\n    stage('Build') { steps { sh script: 'make', returnStdout: false } }\n  }\n}\n",
        );
        let pipeline = &nodes[0];
        assert_eq!(pipeline.name, "pipeline");
        let body = pipeline.block.as_ref().unwrap();
        assert_eq!(
            body[0].args.positional,
            vec![Value::Word("any".into(), Pos { line: 2, col: 9 })]
        );
        let env = body[1].block.as_ref().unwrap();
        assert_eq!(env[0].name, "A");
        assert!(matches!(&env[1].assign, Some(Value::Call { name, .. }) if name == "credentials"));
        let stage = &body[2].block.as_ref().unwrap()[0];
        assert_eq!(
            stage.args.positional[0],
            Value::Str("Build".into(), Pos { line: 5, col: 11 })
        );
        let sh = &stage.block.as_ref().unwrap()[0].block.as_ref().unwrap()[0];
        assert_eq!(sh.args.named.len(), 2);
    }

    #[test]
    fn nesting_is_bounded_and_reported_where_it_goes_too_deep() {
        let levels = 10_000;
        let deep_blocks = format!(
            "pipeline {{\n{}{}}}\n",
            "a {\n".repeat(levels),
            "}\n".repeat(levels)
        );
        let deep_lists = format!("x({}{})\n", "[".repeat(levels), "]".repeat(levels));
        let deep_calls = format!("x({}{})\n", "f(".repeat(levels), ")".repeat(levels));
        for (src, at) in [
            (&deep_blocks, Pos { line: 101, col: 3 }),
            (&deep_lists, Pos { line: 1, col: 103 }),
            (&deep_calls, Pos { line: 1, col: 203 }),
        ] {
            let mut diags = Vec::new();
            assert!(parse(src, &mut diags).is_none());
            assert_eq!(diags.len(), 1, "{diags:?}");
            assert_eq!(diags[0].pos, at);
            assert!(diags[0].message.contains("nested more than 100 levels"));
        }
        // Right at the limit is fine.
        let at_limit = format!(
            "{}{}",
            "a {\n".repeat(MAX_NESTING),
            "}\n".repeat(MAX_NESTING)
        );
        ok(&at_limit);
    }

    #[test]
    fn lists_maps_trailing_commas_and_multiline_calls() {
        let nodes = ok("x(\n  a: ['p', 'q',],\n  b: [k: 1],\n  c: [:],\n)\n");
        let args = &nodes[0].args;
        assert!(matches!(args.named("a"), Some(Value::List(v, _)) if v.len() == 2));
        assert!(matches!(args.named("b"), Some(Value::Map(v, _)) if v.len() == 1));
        assert!(matches!(args.named("c"), Some(Value::Map(v, _)) if v.is_empty()));
    }

    #[test]
    fn several_errors_are_reported_in_one_pass() {
        let mut diags = Vec::new();
        parse(
            "pipeline {\n  agent any any2 )\n  stages { stage('a') { steps { sh 'x' + } } }\n  foo.bar()\n}\n",
            &mut diags,
        );
        assert!(diags.len() >= 3, "{diags:?}");
        assert!(diags.iter().any(|d| d.pos.line == 2));
        assert!(diags.iter().any(|d| d.pos.line == 3), "{diags:?}");
        assert!(diags.iter().any(|d| d.pos.line == 4));
    }

    #[test]
    fn values_with_operators_are_groovy_expressions() {
        let nodes = ok(
            "X = 'v' + env.BUILD_NUMBER\nY = sh(script: 'git describe', returnStdout: true).trim()\nscript {\n  def a = 1\n}\nZ = 'plain'\n",
        );
        assert!(matches!(nodes[0].assign, Some(Value::Expr(..))));
        assert!(matches!(nodes[1].assign, Some(Value::Expr(..))));
        assert_eq!(nodes[2].script.as_ref().map(|s| s.len()), Some(1));
        assert!(matches!(nodes[3].assign, Some(Value::Str(..))));
    }
}
