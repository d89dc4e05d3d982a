//! Lint checks on parsed Groovy: what the sandbox refuses (reaching the JVM, the Jenkins
//! controller or the host; metaprogramming; loading code), and calls to names that are
//! neither steps nor closures the script defines, with "did you mean".

use std::collections::HashSet;

use super::ast::*;
use super::eval::{BUILTINS, DESCRIPTORS};
use crate::pipeline::{Diagnostic, Pos};

/// Names that reach outside the sandbox, and why they are refused.
const REFUSED_NAMES: &[(&str, &str)] = &[
    ("Jenkins", "`Jenkins` reaches the controller's internals"),
    ("Hudson", "`Hudson` reaches the controller's internals"),
    ("System", "`System` reaches the JVM"),
    ("Runtime", "`Runtime` reaches the JVM"),
    ("Thread", "`Thread` reaches the JVM"),
    ("Class", "`Class` is reflection"),
    ("ClassLoader", "`ClassLoader` loads code"),
    ("GroovyShell", "`GroovyShell` evaluates code"),
    ("Eval", "`Eval` evaluates code"),
    (
        "ProcessBuilder",
        "`ProcessBuilder` starts processes outside the steps",
    ),
    (
        "File",
        "`File` reads the worker's files: use readFile, writeFile and fileExists",
    ),
    ("this", "`this` is the script object"),
];

/// Methods and properties that are metaprogramming or escape the sandbox.
const REFUSED_MEMBERS: &[(&str, &str)] = &[
    ("metaClass", "metaprogramming"),
    ("getMetaClass", "metaprogramming"),
    ("setMetaClass", "metaprogramming"),
    ("invokeMethod", "metaprogramming"),
    ("class", "reflection"),
    ("getClass", "reflection"),
    ("declaredMethods", "reflection"),
    ("getDeclaredMethods", "reflection"),
    ("rawBuild", "access to the controller's internals"),
    ("getRawBuild", "access to the controller's internals"),
    ("execute", "starting processes outside the steps (use sh)"),
];

/// Functions that load or evaluate code.
const REFUSED_CALLS: &[(&str, &str)] = &[
    ("evaluate", "evaluating code"),
    ("load", "loading Groovy files (`load`)"),
    ("library", "shared libraries"),
];

pub struct Checker<'a> {
    diags: &'a mut Vec<Diagnostic>,
    /// Whether a name is a step the script may call.
    is_step: &'a dyn Fn(&str) -> bool,
    /// Every name the script declares or assigns (closures called by name), this block's
    /// and earlier blocks'.
    defined: &'a mut HashSet<String>,
}

impl<'a> Checker<'a> {
    pub fn new(
        diags: &'a mut Vec<Diagnostic>,
        is_step: &'a dyn Fn(&str) -> bool,
        defined: &'a mut HashSet<String>,
    ) -> Checker<'a> {
        Checker {
            diags,
            is_step,
            defined,
        }
    }

    /// Checks statements, after noting the names they define.
    pub fn block(&mut self, body: &[Stmt]) {
        collect_names_block(body, self.defined);
        for s in body {
            self.stmt(s);
        }
    }

    pub fn expr_root(&mut self, e: &Expr) {
        collect_names_expr(e, self.defined);
        self.expr(e);
    }

    fn error(&mut self, pos: Pos, message: String) {
        self.diags.push(Diagnostic::error(pos, message));
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Expr(e) | StmtKind::Throw(e) => self.expr(e),
            StmtKind::Def { value, .. } => {
                if let Some(v) = value {
                    self.expr(v);
                }
            }
            StmtKind::If { cond, then, other } => {
                self.expr(cond);
                self.stmts(then);
                if let Some(o) = other {
                    self.stmts(o);
                }
            }
            StmtKind::ForIn { iter, body, .. } => {
                self.expr(iter);
                self.stmts(body);
            }
            StmtKind::For {
                init,
                cond,
                update,
                body,
            } => {
                if let Some(i) = init {
                    self.stmt(i);
                }
                if let Some(c) = cond {
                    self.expr(c);
                }
                for u in update {
                    self.expr(u);
                }
                self.stmts(body);
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.stmts(body);
            }
            StmtKind::Switch { value, cases } => {
                self.expr(value);
                for (labels, body) in cases {
                    for l in labels {
                        self.expr(l);
                    }
                    self.stmts(body);
                }
            }
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                self.stmts(body);
                for c in catches {
                    self.stmts(&c.body);
                }
                if let Some(f) = finally {
                    self.stmts(f);
                }
            }
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Assert(c, m) => {
                self.expr(c);
                if let Some(m) = m {
                    self.expr(m);
                }
            }
            StmtKind::Block(body) => self.stmts(body),
            StmtKind::Break | StmtKind::Continue => {}
        }
    }

    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn args(&mut self, args: &[Arg]) {
        for a in args {
            self.expr(&a.value);
        }
    }

    fn member(&mut self, name: &str, pos: Pos) {
        if let Some((_, why)) = REFUSED_MEMBERS.iter().find(|(n, _)| *n == name) {
            self.error(
                pos,
                format!("`.{name}` is {why}, which the Groovy subset refuses"),
            );
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Var(name) => {
                if let Some((_, why)) = REFUSED_NAMES.iter().find(|(n, _)| *n == name) {
                    self.error(e.pos, format!("{why}: the Groovy subset refuses it"));
                }
            }
            ExprKind::GStr(parts) => {
                for p in parts {
                    if let GPart::Expr(x) = p {
                        self.expr(x);
                    }
                }
            }
            ExprKind::List(items) => {
                for i in items {
                    self.expr(i);
                }
            }
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.expr(k);
                    self.expr(v);
                }
            }
            ExprKind::Range { from, to, .. } => {
                self.expr(from);
                self.expr(to);
            }
            ExprKind::Prop { obj, name, .. } => {
                self.member(name, e.pos);
                self.expr(obj);
            }
            ExprKind::Index { obj, index } => {
                self.expr(obj);
                self.expr(index);
            }
            ExprKind::Call {
                target: Some(t),
                name,
                args,
                ..
            } => {
                self.member(name, e.pos);
                self.expr(t);
                self.args(args);
            }
            ExprKind::Call {
                target: None,
                name,
                args,
                ..
            } => {
                self.function(name, e.pos);
                self.args(args);
            }
            ExprKind::CallValue { callee, args } => {
                self.expr(callee);
                self.args(args);
            }
            ExprKind::Closure(def) => self.stmts(&def.body),
            ExprKind::Not(x) | ExprKind::Neg(x) | ExprKind::Pattern(x) => self.expr(x),
            ExprKind::Binary { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Ternary { cond, then, other } => {
                self.expr(cond);
                self.expr(then);
                self.expr(other);
            }
            ExprKind::Elvis { value, other } => {
                self.expr(value);
                self.expr(other);
            }
            ExprKind::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            ExprKind::Step { target, .. } => self.expr(target),
            ExprKind::Cast { expr, .. } | ExprKind::InstanceOf { expr, .. } => self.expr(expr),
            ExprKind::New { ty, args } => {
                let simple = ty.rsplit('.').next().unwrap_or(ty);
                if !(simple.ends_with("Exception") || simple == "Error") {
                    self.error(
                        e.pos,
                        format!("`new {ty}(…)` creates a Java object, which the Groovy subset refuses (only exceptions, for `throw`)"),
                    );
                }
                self.args(args);
            }
            ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_) => {}
        }
    }

    fn function(&mut self, name: &str, pos: Pos) {
        if let Some((_, why)) = REFUSED_CALLS.iter().find(|(n, _)| *n == name) {
            self.error(
                pos,
                format!("`{name}(…)` is {why}, which the Groovy subset refuses"),
            );
            return;
        }
        if (self.is_step)(name)
            || BUILTINS.contains(&name)
            || DESCRIPTORS.contains(&name)
            || self.defined.contains(name)
        {
            return;
        }
        let hint = super::super::pipeline::suggest(name)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        self.error(pos, format!("unknown step or function `{name}`{hint}"));
    }
}

fn collect_names_block(body: &[Stmt], out: &mut HashSet<String>) {
    for s in body {
        match &s.kind {
            StmtKind::Def { names, value } => {
                out.extend(names.iter().cloned());
                if let Some(v) = value {
                    collect_names_expr(v, out);
                }
            }
            StmtKind::Expr(e) | StmtKind::Throw(e) | StmtKind::Return(Some(e)) => {
                collect_names_expr(e, out)
            }
            StmtKind::If { then, other, .. } => {
                collect_names_block(then, out);
                if let Some(o) = other {
                    collect_names_block(o, out);
                }
            }
            StmtKind::ForIn { var, body, .. } => {
                out.insert(var.clone());
                collect_names_block(body, out);
            }
            StmtKind::For { init, body, .. } => {
                if let Some(i) = init {
                    collect_names_block(std::slice::from_ref(i), out);
                }
                collect_names_block(body, out);
            }
            StmtKind::While { body, .. } | StmtKind::Block(body) => collect_names_block(body, out),
            StmtKind::Switch { cases, .. } => {
                for (_, body) in cases {
                    collect_names_block(body, out);
                }
            }
            StmtKind::Try {
                body,
                catches,
                finally,
            } => {
                collect_names_block(body, out);
                for c in catches {
                    out.insert(c.var.clone());
                    collect_names_block(&c.body, out);
                }
                if let Some(f) = finally {
                    collect_names_block(f, out);
                }
            }
            _ => {}
        }
    }
}

fn collect_names_expr(e: &Expr, out: &mut HashSet<String>) {
    match &e.kind {
        ExprKind::Assign { target, value, .. } => {
            if let ExprKind::Var(name) = &target.kind {
                out.insert(name.clone());
            }
            collect_names_expr(value, out);
        }
        ExprKind::Closure(def) => {
            out.extend(def.params.iter().cloned());
            collect_names_block(&def.body, out);
        }
        ExprKind::Call { args, .. } => {
            for a in args {
                collect_names_expr(&a.value, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groovy::parse;

    fn check(src: &str) -> Vec<String> {
        let mut diags = Vec::new();
        let body = parse::program(src, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let is_step = |n: &str| matches!(n, "sh" | "echo" | "dir");
        let mut defined = HashSet::new();
        Checker::new(&mut diags, &is_step, &mut defined).block(&body);
        diags
            .iter()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect()
    }

    #[test]
    fn the_sandbox_refuses_escapes_at_their_position() {
        let found = check(
            "def j = Jenkins.instance\nprintln 'x'.class\n'ls'.execute()\nevaluate('1')\ndef f = new File('/etc/passwd')\n",
        );
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].starts_with("1:9: `Jenkins`"), "{found:?}");
        assert!(
            found[1].starts_with("2:12: `.class` is reflection"),
            "{found:?}"
        );
        assert!(
            found[2].contains("`.execute` is starting processes"),
            "{found:?}"
        );
        assert!(found[3].starts_with("4:1: `evaluate(…)`"), "{found:?}");
        assert!(found[4].contains("`new File(…)`"), "{found:?}");
    }

    #[test]
    fn unknown_calls_are_errors_but_closures_in_variables_are_not() {
        let found = check("def greet = { n -> echo n }\ngreet('x')\nshh 'make'\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("unknown step or function `shh` (did you mean `sh`?)"),
            "{found:?}"
        );
    }
}
