//! Methods, properties, indexing, casts and arithmetic on values: the usual String, List,
//! Map and number methods of Groovy's GDK. Those taking a closure are in `eval`, since a
//! closure may run steps. String methods are in `strings`, list and map ones in
//! `collections`, indexing, properties and the build-state objects' methods in `access`.

mod access;
mod collections;
pub mod statics;
mod strings;

use access::obj_method;
pub use access::{index, property};
use collections::{list_method, map_method};
use strings::string_method;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::{Regex, RegexBuilder};

use super::ast::BinOp;
use super::eval::Host;
use super::value::{Obj, Value, compare, equals};

/// An error: the exception's class and its message.
pub type E = (&'static str, String);

pub(super) fn no_method(recv: &Value, name: &str) -> E {
    (
        "groovy.lang.MissingMethodException",
        format!(
            "No signature of method: {}.{name}() is supported",
            recv.type_name()
        ),
    )
}

pub(super) fn bad_arg(name: &str, wants: &str) -> E {
    (
        "java.lang.IllegalArgumentException",
        format!("{name}() takes {wants}"),
    )
}

/// Longest string or list a single operation may build (the byte budget bounds the total).
pub(super) const MAX_ITEMS: u64 = 16 << 20;

/// Compiles a pattern (cached); Rust's `regex`, which runs in linear time: a pattern cannot
/// hang a worker, but look-around and back-references are refused with a clear message.
pub fn regex(pattern: &str) -> Result<Regex, E> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(r) = cache.lock().ok().and_then(|c| c.get(pattern).cloned()) {
        return Ok(r);
    }
    let compiled = RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(4 << 20)
        .build()
        .map_err(|e| {
            (
                "java.util.regex.PatternSyntaxException",
                format!(
                    "invalid or unsupported regular expression `{pattern}` (look-around and back-references are not supported): {}",
                    e.to_string().lines().last().unwrap_or_default()
                ),
            )
        })?;
    if let Ok(mut c) = cache.lock() {
        if c.len() > 256 {
            c.clear();
        }
        c.insert(pattern.to_owned(), compiled.clone());
    }
    Ok(compiled)
}

/// Java's replacement syntax (`$1`, `\$`) in Rust's (`${1}`, `$$`).
pub(super) fn replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

pub fn find(l: &Value, r: &Value) -> Result<Value, E> {
    let re = regex(&r.show())?;
    let text = l.show();
    let matches = re
        .captures_iter(&text)
        .take(100_000)
        .map(|c| {
            c.iter()
                .map(|g| g.map(|m| m.as_str().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Value::obj(Obj::Matcher { matches }))
}

pub fn whole_match(l: &Value, r: &Value) -> Result<Value, E> {
    let re = regex(&format!("^(?:{})$", r.show()))?;
    Ok(Value::Bool(re.is_match(&l.show())))
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

pub(super) fn overflow() -> E {
    ("java.lang.ArithmeticException", "integer overflow".into())
}

pub fn arithmetic(op: BinOp, l: &Value, r: &Value) -> Result<Value, E> {
    use Value::*;
    Ok(match (op, l, r) {
        (BinOp::Add, Str(a), b) => Value::str(format!("{a}{}", b.show())),
        (BinOp::Add, a, Str(b)) if !matches!(a, List(_)) => Value::str(format!("{}{b}", a.show())),
        (BinOp::Add, Int(a), Int(b)) => Int(a.checked_add(*b).ok_or_else(overflow)?),
        (BinOp::Sub, Int(a), Int(b)) => Int(a.checked_sub(*b).ok_or_else(overflow)?),
        (BinOp::Mul, Int(a), Int(b)) => Int(a.checked_mul(*b).ok_or_else(overflow)?),
        (BinOp::Div, Int(_), Int(0)) | (BinOp::Rem, Int(_), Int(0)) => {
            return Err(("java.lang.ArithmeticException", "Division by zero".into()));
        }
        (BinOp::Div, Int(a), Int(b)) => {
            if a % b == 0 {
                Int(a / b)
            } else {
                Float(*a as f64 / *b as f64)
            }
        }
        (BinOp::Rem, Int(a), Int(b)) => Int(a.checked_rem(*b).ok_or_else(overflow)?),
        (BinOp::Pow, Int(a), Int(b)) if *b >= 0 => {
            match u32::try_from(*b).ok().and_then(|b| a.checked_pow(b)) {
                Some(n) => Int(n),
                None => Float((*a as f64).powf(*b as f64)),
            }
        }
        (op, a, b) if a.is_number() && b.is_number() => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            match op {
                BinOp::Add => Float(x + y),
                BinOp::Sub => Float(x - y),
                BinOp::Mul => Float(x * y),
                BinOp::Div if y == 0.0 => {
                    return Err(("java.lang.ArithmeticException", "Division by zero".into()));
                }
                BinOp::Div => Float(x / y),
                BinOp::Rem => Float(x % y),
                BinOp::Pow => Float(x.powf(y)),
                _ => return Err(unsupported(op, a, b)),
            }
        }
        (BinOp::Add, List(a), List(b)) => {
            let mut out = a.lock().clone();
            out.extend(b.lock().iter().cloned());
            Value::list(out)
        }
        (BinOp::Add, List(a), b) => {
            let mut out = a.lock().clone();
            out.push(b.clone());
            Value::list(out)
        }
        (BinOp::Add, Map(a), Map(b)) => {
            let mut out = a.lock().clone();
            for (k, v) in b.lock().iter() {
                out.insert(k.clone(), v.clone());
            }
            Value::map(out)
        }
        (BinOp::Sub, List(a), List(b)) => {
            let remove = b.lock().clone();
            Value::list(
                a.lock()
                    .clone()
                    .iter()
                    .filter(|x| !remove.iter().any(|y| equals(x, y)))
                    .cloned()
                    .collect(),
            )
        }
        (BinOp::Sub, List(a), b) => Value::list(
            a.lock()
                .clone()
                .iter()
                .filter(|x| !equals(x, b))
                .cloned()
                .collect(),
        ),
        (BinOp::Sub, Str(a), b) => Value::str(a.replacen(&*b.show(), "", 1)),
        (BinOp::Mul, Str(a), Int(n)) => {
            let n = (*n).max(0) as u64;
            if (a.len() as u64).saturating_mul(n) > MAX_ITEMS * 16 {
                return Err(too_big());
            }
            Value::str(a.repeat(n as usize))
        }
        (BinOp::Mul, List(a), Int(n)) => {
            let n = (*n).max(0) as u64;
            let items = a.lock().clone();
            if (items.len() as u64).saturating_mul(n) > MAX_ITEMS {
                return Err(too_big());
            }
            Value::list(std::iter::repeat_n(items, n as usize).flatten().collect())
        }
        (BinOp::Shl, List(a), b) => {
            a.lock().push(b.clone());
            l.clone()
        }
        (BinOp::Shl, Str(a), b) => Value::str(format!("{a}{}", b.show())),
        (op, a, b) => return Err(unsupported(op, a, b)),
    })
}

pub(super) fn too_big() -> E {
    (
        "java.lang.OutOfMemoryError",
        "the result would be too large".into(),
    )
}

fn unsupported(op: BinOp, a: &Value, b: &Value) -> E {
    (
        "groovy.lang.MissingMethodException",
        format!(
            "cannot apply `{}` to a {} and a {}",
            op.symbol(),
            a.type_name(),
            b.type_name()
        ),
    )
}

pub fn cast(v: &Value, ty: &str) -> Result<Value, E> {
    let simple = ty.rsplit('.').next().unwrap_or(ty);
    Ok(match simple {
        "int" | "Integer" | "long" | "Long" | "short" | "Short" | "BigInteger" => match v {
            Value::Int(n) => Value::Int(*n),
            Value::Float(f) => Value::Int(*f as i64),
            Value::Str(s) => Value::Int(parse_int(s)?),
            Value::Bool(b) => Value::Int(i64::from(*b)),
            other => return Err(cannot_cast(other, ty)),
        },
        "double" | "Double" | "float" | "Float" | "BigDecimal" | "Number" => match v {
            Value::Int(n) => Value::Float(*n as f64),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Float(parse_float(s)?),
            other => return Err(cannot_cast(other, ty)),
        },
        "String" | "GString" | "CharSequence" => Value::str(v.show()),
        "boolean" | "Boolean" => Value::Bool(v.truthy()),
        "List" | "ArrayList" | "Collection" | "Iterable" | "Object[]" => {
            Value::list(v.items().ok_or_else(|| cannot_cast(v, ty))?)
        }
        "String[]" => Value::list(
            v.items()
                .ok_or_else(|| cannot_cast(v, ty))?
                .iter()
                .map(|x| Value::str(x.show()))
                .collect(),
        ),
        "Set" | "HashSet" | "LinkedHashSet" => {
            Value::list(unique(v.items().ok_or_else(|| cannot_cast(v, ty))?))
        }
        "Map" | "HashMap" | "LinkedHashMap" => match v {
            Value::Map(_) => v.clone(),
            other => return Err(cannot_cast(other, ty)),
        },
        "Object" | "def" => v.clone(),
        _ => {
            return Err((
                "org.codehaus.groovy.runtime.typehandling.GroovyCastException",
                format!(
                    "cannot cast to `{ty}` (the subset knows String, Integer, Long, Double, Boolean, List, Set and Map)"
                ),
            ));
        }
    })
}

fn cannot_cast(v: &Value, ty: &str) -> E {
    (
        "org.codehaus.groovy.runtime.typehandling.GroovyCastException",
        format!("Cannot cast a {} to {ty}", v.type_name()),
    )
}

pub(super) fn parse_int(s: &str) -> Result<i64, E> {
    s.trim().parse().map_err(|_| {
        (
            "java.lang.NumberFormatException",
            format!("For input string: \"{s}\""),
        )
    })
}

pub(super) fn parse_float(s: &str) -> Result<f64, E> {
    s.trim().parse().map_err(|_| {
        (
            "java.lang.NumberFormatException",
            format!("For input string: \"{s}\""),
        )
    })
}

pub fn instance_of(v: &Value, ty: &str) -> bool {
    let simple = ty.rsplit('.').next().unwrap_or(ty);
    match v {
        Value::Str(_) => matches!(simple, "String" | "CharSequence" | "GString" | "Object"),
        Value::Int(_) => matches!(simple, "Integer" | "Long" | "Number" | "Object"),
        Value::Float(_) => matches!(
            simple,
            "BigDecimal" | "Double" | "Float" | "Number" | "Object"
        ),
        Value::Bool(_) => matches!(simple, "Boolean" | "Object"),
        Value::List(_) | Value::Range { .. } => {
            matches!(
                simple,
                "List" | "Collection" | "Iterable" | "ArrayList" | "Object"
            )
        }
        Value::Map(_) => matches!(simple, "Map" | "LinkedHashMap" | "HashMap" | "Object"),
        Value::Closure(_) => matches!(simple, "Closure" | "Object"),
        Value::Obj(o) => match &**o {
            Obj::Exception { class, .. } => {
                let own = class.rsplit('.').next().unwrap_or(class);
                simple == own || matches!(simple, "Exception" | "Throwable" | "Object")
            }
            _ => simple == "Object",
        },
        Value::Null => false,
    }
}

pub(super) fn unique(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.iter().any(|x| equals(x, &item)) {
            out.push(item);
        }
    }
    out
}

/// A position from an index that may count from the end.
pub(super) fn at(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let k = if i < 0 { len + i } else { i };
    (0..len).contains(&k).then_some(k as usize)
}

pub(super) fn int_arg(args: &[Value], k: usize, name: &str) -> Result<i64, E> {
    args.get(k)
        .and_then(int_of)
        .ok_or_else(|| bad_arg(name, "an integer"))
}

pub(super) fn str_arg(args: &[Value], k: usize, name: &str) -> Result<String, E> {
    match args.get(k) {
        Some(Value::Null) | None => Err(bad_arg(name, "a string")),
        Some(v) => Ok(v.show()),
    }
}

/// Calls a method that takes no closure.
pub fn call<H: Host>(
    recv: &Value,
    name: &str,
    args: &[Value],
    host: &H,
    scope: &H::Scope,
) -> Result<Value, E> {
    // Methods every value has.
    match (name, args.len()) {
        ("toString", 0) => return Ok(Value::str(recv.show())),
        ("equals", 1) => return Ok(Value::Bool(equals(recv, &args[0]))),
        ("is", 1) => return Ok(Value::Bool(equals(recv, &args[0]))),
        ("compareTo", 1) => {
            return compare(recv, &args[0])
                .map(|o| Value::Int(o as i64))
                .ok_or_else(|| no_method(recv, name));
        }
        ("asBoolean", 0) => return Ok(Value::Bool(recv.truthy())),
        _ => {}
    }
    if matches!(recv, Value::Null) {
        return Err((
            "java.lang.NullPointerException",
            format!("Cannot invoke method {name}() on null object"),
        ));
    }
    match recv {
        Value::Str(s) => string_method(s, recv, name, args),
        Value::List(_) | Value::Range { .. } => list_method(recv, name, args),
        Value::Map(m) => map_method(m, recv, name, args),
        Value::Int(n) => match name {
            "toInteger" | "toLong" | "intValue" | "longValue" => Ok(Value::Int(*n)),
            "abs" => Ok(Value::Int(n.checked_abs().ok_or_else(overflow)?)),
            "toDouble" | "toFloat" | "toBigDecimal" | "doubleValue" => Ok(Value::Float(*n as f64)),
            "intdiv" => {
                let d = int_arg(args, 0, name)?;
                if d == 0 {
                    return Err(("java.lang.ArithmeticException", "Division by zero".into()));
                }
                Ok(Value::Int(n.checked_div(d).ok_or_else(overflow)?))
            }
            "plus" | "minus" | "multiply" | "div" | "mod" | "power" => {
                let op = match name {
                    "plus" => BinOp::Add,
                    "minus" => BinOp::Sub,
                    "multiply" => BinOp::Mul,
                    "div" => BinOp::Div,
                    "mod" => BinOp::Rem,
                    _ => BinOp::Pow,
                };
                arithmetic(op, recv, args.first().unwrap_or(&Value::Null))
            }
            _ => Err(no_method(recv, name)),
        },
        Value::Float(f) => match name {
            "toInteger" | "toLong" | "intValue" | "longValue" => Ok(Value::Int(*f as i64)),
            "toDouble" | "toFloat" | "toBigDecimal" | "doubleValue" => Ok(Value::Float(*f)),
            "round" => Ok(Value::Int(f.round() as i64)),
            "abs" => Ok(Value::Float(f.abs())),
            _ => Err(no_method(recv, name)),
        },
        Value::Bool(b) => match name {
            "booleanValue" => Ok(Value::Bool(*b)),
            _ => Err(no_method(recv, name)),
        },
        Value::Obj(obj) => obj_method(obj, recv, name, args, host, scope),
        _ => Err(no_method(recv, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements_become_rust_ones() {
        assert_eq!(replacement("$1-x"), "${1}-x");
        assert_eq!(replacement("\\$1"), "$$1");
        assert_eq!(replacement("a$"), "a$$");
    }

    #[test]
    fn unsupported_regex_features_are_named() {
        let err = regex("(?<=a)b").unwrap_err();
        assert!(err.1.contains("look-around"), "{err:?}");
    }
}
