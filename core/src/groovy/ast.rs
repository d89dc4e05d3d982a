//! The Groovy subset's syntax tree: statements and expressions, each with its position.

use std::sync::Arc;

use crate::pipeline::Pos;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

/// A call's argument: `value` or `name: value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Cmp,
    And,
    Or,
    In,
    NotIn,
    /// `=~`: a matcher, true when the pattern is found.
    Find,
    /// `==~`: the whole string matches.
    Match,
    /// `<<`: append to a list, or to a string.
    Shl,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Pow => "**",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Cmp => "<=>",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::In => "in",
            BinOp::NotIn => "!in",
            BinOp::Find => "=~",
            BinOp::Match => "==~",
            BinOp::Shl => "<<",
        }
    }
}

/// A piece of a GString: text, or an interpolated expression.
#[derive(Debug, Clone, PartialEq)]
pub enum GPart {
    Text(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    GStr(Vec<GPart>),
    List(Vec<Expr>),
    /// `[key: value]`; a bare word key is its name, `(expr)` is computed.
    Map(Vec<(Expr, Expr)>),
    Range {
        from: Box<Expr>,
        to: Box<Expr>,
        exclusive: bool,
    },
    Var(String),
    /// `obj.name`, `obj?.name`, `list*.name`.
    Prop {
        obj: Box<Expr>,
        name: String,
        safe: bool,
        spread: bool,
    },
    /// `obj[index]`.
    Index {
        obj: Box<Expr>,
        index: Box<Expr>,
    },
    /// `name(args)` (a step, a closure held in a variable) or `obj.name(args)`.
    Call {
        target: Option<Box<Expr>>,
        name: String,
        args: Vec<Arg>,
        safe: bool,
        spread: bool,
    },
    /// `(expr)(args)`: calling a computed closure.
    CallValue {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Closure(Arc<ClosureDef>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// `~/regex/`: a pattern (a `switch` case matching the whole string).
    Pattern(Box<Expr>),
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        other: Box<Expr>,
    },
    Elvis {
        value: Box<Expr>,
        other: Box<Expr>,
    },
    /// `target = value`, or `target op= value`.
    Assign {
        target: Box<Expr>,
        op: Option<BinOp>,
        value: Box<Expr>,
    },
    /// `x++`, `--x`: the value before (postfix) or after (prefix).
    Step {
        target: Box<Expr>,
        delta: i64,
        prefix: bool,
    },
    /// `expr as Type`, and `(Type) expr`.
    Cast {
        expr: Box<Expr>,
        ty: String,
    },
    /// `expr instanceof Type`.
    InstanceOf {
        expr: Box<Expr>,
        ty: String,
    },
    /// `new Type(args)`: only exceptions, for `throw new Exception('…')`.
    New {
        ty: String,
        args: Vec<Arg>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClosureDef {
    /// Declared parameters; none means the implicit `it`.
    pub params: Vec<String>,
    pub body: Vec<Stmt>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catch {
    pub var: String,
    /// The exception types named, empty for any.
    pub types: Vec<String>,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Expr(Expr),
    /// `def a = 1`, `String a`, `def (a, b) = [1, 2]`.
    Def {
        names: Vec<String>,
        value: Option<Expr>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        other: Option<Vec<Stmt>>,
    },
    ForIn {
        var: String,
        iter: Expr,
        body: Vec<Stmt>,
    },
    /// `for (init; cond; update)`.
    For {
        init: Option<Box<Stmt>>,
        cond: Option<Expr>,
        update: Vec<Expr>,
        body: Vec<Stmt>,
    },
    While {
        cond: Expr,
        body: Vec<Stmt>,
    },
    Switch {
        value: Expr,
        /// Each case's values (empty for `default`) and the statements that follow it.
        cases: Vec<(Vec<Expr>, Vec<Stmt>)>,
    },
    Try {
        body: Vec<Stmt>,
        catches: Vec<Catch>,
        finally: Option<Vec<Stmt>>,
    },
    Return(Option<Expr>),
    Break,
    Continue,
    Throw(Expr),
    Assert(Expr, Option<Expr>),
    Block(Vec<Stmt>),
}
