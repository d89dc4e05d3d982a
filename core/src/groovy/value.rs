//! Runtime values of the Groovy subset, with Groovy's truth, equality, ordering and
//! `toString`. Lists and maps are shared references, as in Groovy (`a.add(1)` is seen
//! through every name for `a`).

use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;

use super::ast::ClosureDef;
use super::eval::Frame;

/// A list or map that several names may share.
#[derive(Debug, Default)]
pub struct Shared<T>(Mutex<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Arc<Shared<T>> {
        Arc::new(Shared(Mutex::new(value)))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub type List = Arc<Shared<Vec<Value>>>;
pub type Map = Arc<Shared<IndexMap<String, Value>>>;

#[derive(Debug)]
pub struct Closure {
    pub def: Arc<ClosureDef>,
    pub frame: Arc<Frame>,
}

/// Build-state objects and the few Java objects scripts use.
#[derive(Debug, Clone)]
pub enum Obj {
    /// `env`: reads and writes the build's environment.
    Env,
    /// `params`: the build's parameters.
    Params,
    /// `currentBuild`.
    CurrentBuild,
    /// `currentBuild.previousBuild`: its result.
    PreviousBuild { result: Option<String> },
    /// `scm`, for `checkout scm`.
    Scm,
    /// `~/regex/`.
    Pattern(String),
    /// A thrown exception.
    Exception { class: String, message: String },
    /// `text =~ pattern`: every match, each with its groups (`None` for an unmatched group).
    Matcher { matches: Vec<Vec<Option<String>>> },
    /// A map entry, as `each { entry -> entry.key }` sees it.
    Entry { key: String, value: Box<Value> },
    /// A call whose result a step consumes, e.g. `string(credentialsId: 'x', variable: 'Y')`
    /// in `withCredentials`, or a parameter definition in `input`.
    Descriptor {
        name: String,
        args: Vec<(Option<String>, Value)>,
    },
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    List(List),
    Map(Map),
    /// An inclusive integer range; `from > to` counts down.
    Range {
        from: i64,
        to: i64,
    },
    Closure(Arc<Closure>),
    Obj(Box<Obj>),
}

/// How deep `toString` and equality look into nested lists and maps (a list may hold itself),
/// and how many elements they visit in all (a list holding itself twice doubles per level).
const SHOW_DEPTH: usize = 32;
const VISIT_LIMIT: usize = 1_000_000;

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Shared::new(items))
    }

    pub fn map(entries: IndexMap<String, Value>) -> Value {
        Value::Map(Shared::new(entries))
    }

    pub fn obj(o: Obj) -> Value {
        Value::Obj(Box::new(o))
    }

    /// Groovy's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "Boolean",
            Value::Int(_) => "Integer",
            Value::Float(_) => "BigDecimal",
            Value::Str(_) => "String",
            Value::List(_) => "List",
            Value::Map(_) => "Map",
            Value::Range { .. } => "Range",
            Value::Closure(_) => "Closure",
            Value::Obj(o) => match **o {
                Obj::Env => "env",
                Obj::Params => "params",
                Obj::CurrentBuild | Obj::PreviousBuild { .. } => "RunWrapper",
                Obj::Scm => "scm",
                Obj::Exception { .. } => "Exception",
                Obj::Pattern(_) => "Pattern",
                Obj::Matcher { .. } => "Matcher",
                Obj::Entry { .. } => "Map.Entry",
                Obj::Descriptor { .. } => "step descriptor",
            },
        }
    }

    /// Groovy truth: null, false, 0, "" and empty collections are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.lock().is_empty(),
            Value::Map(m) => !m.lock().is_empty(),
            Value::Range { .. } => true,
            Value::Closure(_) => true,
            Value::Obj(o) => match &**o {
                Obj::Matcher { matches } => !matches.is_empty(),
                _ => true,
            },
        }
    }

    /// Roughly how many bytes the value holds at its top level (the memory budget's unit).
    pub fn size(&self) -> u64 {
        match self {
            Value::Str(s) => s.len() as u64 + 16,
            Value::List(l) => l.lock().len() as u64 * 32 + 32,
            Value::Map(m) => {
                m.lock()
                    .iter()
                    .map(|(k, _)| k.len() as u64 + 48)
                    .sum::<u64>()
                    + 32
            }
            _ => 16,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_))
    }

    /// The items of a list or range, or the characters of a string, as Groovy iterates them.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(l) => Some(l.lock().clone()),
            Value::Range { from, to } => Some(range_items(*from, *to).map(Value::Int).collect()),
            Value::Str(s) => Some(s.chars().map(|c| Value::str(c.to_string())).collect()),
            Value::Map(m) => Some(
                m.lock()
                    .iter()
                    .map(|(k, v)| {
                        Value::obj(Obj::Entry {
                            key: k.clone(),
                            value: Box::new(v.clone()),
                        })
                    })
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => None,
        }
    }

    pub fn show(&self) -> String {
        let mut out = String::new();
        let mut visits = 0;
        self.write(&mut out, 0, &mut visits);
        out
    }

    /// Like `show`, but strings inside collections are not quoted (Groovy's `toString`).
    fn write(&self, out: &mut String, depth: usize, visits: &mut usize) {
        *visits += 1;
        if depth > SHOW_DEPTH || *visits > VISIT_LIMIT {
            out.push_str("[...]");
            return;
        }
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Float(f) => out.push_str(&show_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                // Copied out first: the list may hold itself, and its lock is not re-entrant.
                let items = l.lock().clone();
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out, depth + 1, visits);
                }
                out.push(']');
            }
            Value::Map(m) => {
                let m = m.lock().clone();
                if m.is_empty() {
                    out.push_str("[:]");
                    return;
                }
                out.push('[');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write(out, depth + 1, visits);
                }
                out.push(']');
            }
            Value::Range { from, to } => out.push_str(&format!("{from}..{to}")),
            Value::Closure(_) => out.push_str("Closure"),
            Value::Obj(o) => match &**o {
                Obj::Env => out.push_str("env"),
                Obj::Params => out.push_str("params"),
                Obj::CurrentBuild => out.push_str("currentBuild"),
                Obj::PreviousBuild { .. } => out.push_str("previousBuild"),
                Obj::Scm => out.push_str("scm"),
                Obj::Pattern(p) => out.push_str(p),
                Obj::Exception { class, message } => {
                    out.push_str(class);
                    if !message.is_empty() {
                        out.push_str(": ");
                        out.push_str(message);
                    }
                }
                Obj::Matcher { matches } => {
                    out.push_str(&format!("Matcher ({} matches)", matches.len()))
                }
                Obj::Entry { key, value } => {
                    out.push_str(key);
                    out.push('=');
                    value.write(out, depth + 1, visits);
                }
                Obj::Descriptor { name, .. } => {
                    out.push_str(name);
                    out.push_str("(…)");
                }
            },
        }
    }
}

pub fn range_items(from: i64, to: i64) -> Box<dyn Iterator<Item = i64> + Send> {
    if from <= to {
        Box::new(from..=to)
    } else {
        Box::new((to..=from).rev())
    }
}

pub fn range_len(from: i64, to: i64) -> u64 {
    from.abs_diff(to) + 1
}

/// Java's `Double.toString` for ordinary values: `1.0`, `2.5`, `1.0E20`.
pub fn show_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f.fract() == 0.0 && f.abs() < 1e7 {
        format!("{f:.1}")
    } else if f.abs() >= 1e7 || (f != 0.0 && f.abs() < 1e-3) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            Some((m, e)) => format!("{m}E{e}"),
            None => s,
        }
    } else {
        f.to_string()
    }
}

/// Groovy's `==`: numbers by value, strings by text, collections element by element.
pub fn equals(a: &Value, b: &Value) -> bool {
    equals_at(a, b, 0, &mut 0)
}

fn equals_at(a: &Value, b: &Value, depth: usize, visits: &mut usize) -> bool {
    *visits += 1;
    if depth > SHOW_DEPTH || *visits > VISIT_LIMIT {
        return false;
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (x, y) if x.is_number() && y.is_number() => x.as_f64() == y.as_f64(),
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            if Arc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.lock().clone(), y.lock().clone());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| equals_at(p, q, depth + 1, visits))
        }
        (Value::Range { .. }, Value::List(_)) | (Value::List(_), Value::Range { .. }) => {
            let (x, y) = (a.items().unwrap_or_default(), b.items().unwrap_or_default());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| equals_at(p, q, depth + 1, visits))
        }
        (Value::Range { from: a, to: b }, Value::Range { from: c, to: d }) => a == c && b == d,
        (Value::Map(x), Value::Map(y)) => {
            if Arc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.lock().clone(), y.lock().clone());
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equals_at(v, w, depth + 1, visits)))
        }
        (Value::Closure(x), Value::Closure(y)) => Arc::ptr_eq(x, y),
        (Value::Obj(x), Value::Obj(y)) => matches!(
            (&**x, &**y),
            (Obj::Env, Obj::Env)
                | (Obj::Params, Obj::Params)
                | (Obj::Scm, Obj::Scm)
                | (Obj::CurrentBuild, Obj::CurrentBuild)
        ),
        _ => false,
    }
}

/// Groovy's ordering (`<`, `<=>`, `sort()`): numbers, strings, booleans; `None` when the
/// values cannot be compared.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (x, y) if x.is_number() && y.is_number() => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Null, _) => Some(std::cmp::Ordering::Less),
        (_, Value::Null) => Some(std::cmp::Ordering::Greater),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_java_does() {
        assert_eq!(show_float(1.0), "1.0");
        assert_eq!(show_float(2.5), "2.5");
        assert_eq!(show_float(1e20), "1.0E20");
        assert_eq!(show_float(-3.0), "-3.0");
    }

    #[test]
    fn a_list_holding_itself_prints_and_compares_without_recursing_forever() {
        let l = Shared::new(Vec::new());
        l.lock().push(Value::List(l.clone()));
        let v = Value::List(l);
        assert!(v.show().contains("[...]"));
        assert!(equals(&v, &v));
        // Holding itself twice doubles the work per level: the visit limit bounds it.
        let twice = Shared::new(Vec::new());
        twice.lock().push(Value::List(twice.clone()));
        twice.lock().push(Value::List(twice.clone()));
        let twice = Value::List(twice);
        assert!(twice.show().len() < 64 * 1024 * 1024);
        let _ = equals(&twice, &Value::list(vec![twice.clone(), twice.clone()]));
    }

    #[test]
    fn groovy_truth_and_equality() {
        assert!(!Value::str("").truthy());
        assert!(Value::str("false").truthy());
        assert!(!Value::list(vec![]).truthy());
        assert!(equals(&Value::Int(1), &Value::Float(1.0)));
        assert!(!equals(&Value::Int(1), &Value::str("1")));
    }
}
