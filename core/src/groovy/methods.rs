//! Methods, properties, indexing, casts and arithmetic on values: the usual String, List,
//! Map and number methods of Groovy's GDK. Those taking a closure are in `eval`, since a
//! closure may run steps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use indexmap::IndexMap;
use regex::{Regex, RegexBuilder};

use super::ast::BinOp;
use super::eval::Host;
use super::value::{Obj, Value, compare, equals, range_items, range_len};

/// An error: the exception's class and its message.
pub type E = (&'static str, String);

fn no_method(recv: &Value, name: &str) -> E {
    (
        "groovy.lang.MissingMethodException",
        format!(
            "No signature of method: {}.{name}() is supported",
            recv.type_name()
        ),
    )
}

fn bad_arg(name: &str, wants: &str) -> E {
    (
        "java.lang.IllegalArgumentException",
        format!("{name}() takes {wants}"),
    )
}

/// Longest string or list a single operation may build (the byte budget bounds the total).
const MAX_ITEMS: u64 = 16 << 20;

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
fn replacement(java: &str) -> String {
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

fn overflow() -> E {
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

fn too_big() -> E {
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

fn parse_int(s: &str) -> Result<i64, E> {
    s.trim().parse().map_err(|_| {
        (
            "java.lang.NumberFormatException",
            format!("For input string: \"{s}\""),
        )
    })
}

fn parse_float(s: &str) -> Result<f64, E> {
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

fn unique(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.iter().any(|x| equals(x, &item)) {
            out.push(item);
        }
    }
    out
}

/// A position from an index that may count from the end.
fn at(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let k = if i < 0 { len + i } else { i };
    (0..len).contains(&k).then_some(k as usize)
}

/// The span a range index selects, checked against `len`.
fn span(len: usize, from: i64, to: i64) -> Result<(usize, usize, bool), E> {
    let (a, b) = (at(len, from), at(len, to));
    match (a, b) {
        (Some(a), Some(b)) if a <= b => Ok((a, b + 1, false)),
        (Some(a), Some(b)) => Ok((b, a + 1, true)),
        _ => Err((
            "java.lang.IndexOutOfBoundsException",
            format!("range {from}..{to} is outside 0..{}", len as i64 - 1),
        )),
    }
}

pub fn index<H: Host>(o: &Value, i: &Value, host: &H, scope: &H::Scope) -> Result<Value, E> {
    Ok(match (o, i) {
        (Value::List(l), Value::Int(n)) => {
            let l = l.lock();
            at(l.len(), *n).map(|k| l[k].clone()).unwrap_or(Value::Null)
        }
        (Value::List(l), Value::Range { from, to }) => {
            let l = l.lock();
            let (a, b, rev) = span(l.len(), *from, *to)?;
            let mut part = l[a..b].to_vec();
            if rev {
                part.reverse();
            }
            Value::list(part)
        }
        (Value::Str(s), Value::Int(n)) => {
            let chars: Vec<char> = s.chars().collect();
            match at(chars.len(), *n) {
                Some(k) => Value::str(chars[k].to_string()),
                None => {
                    return Err((
                        "java.lang.StringIndexOutOfBoundsException",
                        format!(
                            "index {n} is outside a string of {} characters",
                            chars.len()
                        ),
                    ));
                }
            }
        }
        (Value::Str(s), Value::Range { from, to }) => {
            let chars: Vec<char> = s.chars().collect();
            let (a, b, rev) = span(chars.len(), *from, *to)?;
            let mut part: Vec<char> = chars[a..b].to_vec();
            if rev {
                part.reverse();
            }
            Value::str(part.into_iter().collect::<String>())
        }
        (Value::Range { from, to }, Value::Int(n)) => {
            let len = range_len(*from, *to);
            match at(len.min(usize::MAX as u64) as usize, *n) {
                Some(k) => Value::Int(if from <= to {
                    from + k as i64
                } else {
                    from - k as i64
                }),
                None => Value::Null,
            }
        }
        (Value::Map(m), key) => {
            let key = key.show();
            m.lock().get(&key).cloned().unwrap_or(Value::Null)
        }
        (Value::Obj(obj), key) => match &**obj {
            Obj::Matcher { matches } => {
                let Value::Int(n) = key else {
                    return Err(bad_arg("a matcher's index", "an integer"));
                };
                match at(matches.len(), *n) {
                    Some(k) => match_value(&matches[k]),
                    None => {
                        return Err((
                            "java.lang.IndexOutOfBoundsException",
                            format!("the pattern matched {} times, not {}", matches.len(), n + 1),
                        ));
                    }
                }
            }
            Obj::Env => host
                .env(scope, &key.show())
                .map(Value::str)
                .unwrap_or(Value::Null),
            Obj::Params => host.param(&key.show()).unwrap_or(Value::Null),
            _ => return Err(no_index(o, i)),
        },
        (Value::Null, _) => {
            return Err((
                "java.lang.NullPointerException",
                "Cannot get an element of a null object".into(),
            ));
        }
        _ => return Err(no_index(o, i)),
    })
}

fn no_index(o: &Value, i: &Value) -> E {
    (
        "groovy.lang.MissingMethodException",
        format!("cannot index a {} with a {}", o.type_name(), i.type_name()),
    )
}

/// One match as Groovy gives it: the text, or `[text, group1, …]` when there are groups.
fn match_value(groups: &[Option<String>]) -> Value {
    let show = |g: &Option<String>| g.as_deref().map(Value::str).unwrap_or(Value::Null);
    if groups.len() == 1 {
        show(&groups[0])
    } else {
        Value::list(groups.iter().map(show).collect())
    }
}

pub fn property<H: Host>(o: &Value, name: &str, host: &H, scope: &H::Scope) -> Result<Value, E> {
    let missing = || {
        (
            "groovy.lang.MissingPropertyException",
            format!("No such property: {name} for {}", o.type_name()),
        )
    };
    Ok(match o {
        Value::Map(m) => m.lock().get(name).cloned().unwrap_or(Value::Null),
        Value::List(l) => {
            // `list.name` collects the property from every element.
            let items = l.lock().clone();
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.push(property(item, name, host, scope)?);
            }
            Value::list(out)
        }
        Value::Obj(obj) => match &**obj {
            Obj::Env => host.env(scope, name).map(Value::str).unwrap_or(Value::Null),
            Obj::Params => host.param(name).unwrap_or(Value::Null),
            Obj::PreviousBuild { result } => match name {
                "result" | "currentResult" => {
                    result.as_deref().map(Value::str).unwrap_or(Value::Null)
                }
                _ => return Err(missing()),
            },
            Obj::Exception { message, class } => match name {
                "message" | "localizedMessage" => Value::str(message.as_str()),
                "cause" => Value::Null,
                "simpleName" => Value::str(class.rsplit('.').next().unwrap_or(class)),
                _ => return Err(missing()),
            },
            Obj::Entry { key, value } => match name {
                "key" => Value::str(key.as_str()),
                "value" => (**value).clone(),
                _ => return Err(missing()),
            },
            Obj::Descriptor { args, .. } => args
                .iter()
                .find(|(k, _)| k.as_deref() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null),
            Obj::Matcher { matches } if name == "count" => Value::Int(matches.len() as i64),
            _ => return Err(missing()),
        },
        Value::Range { from, to } => match name {
            "from" => Value::Int(*from.min(to)),
            "to" => Value::Int(*from.max(to)),
            _ => return Err(missing()),
        },
        _ => return Err(missing()),
    })
}

fn int_arg(args: &[Value], k: usize, name: &str) -> Result<i64, E> {
    args.get(k)
        .and_then(int_of)
        .ok_or_else(|| bad_arg(name, "an integer"))
}

fn str_arg(args: &[Value], k: usize, name: &str) -> Result<String, E> {
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

fn obj_method<H: Host>(
    obj: &Obj,
    recv: &Value,
    name: &str,
    args: &[Value],
    host: &H,
    scope: &H::Scope,
) -> Result<Value, E> {
    match (obj, name) {
        (Obj::Env, "getProperty") | (Obj::Env, "get") => Ok(host
            .env(scope, &str_arg(args, 0, name)?)
            .map(Value::str)
            .unwrap_or(Value::Null)),
        (Obj::Env, "setProperty") | (Obj::Env, "put") => {
            let key = str_arg(args, 0, name)?;
            let value = args
                .get(1)
                .filter(|v| !matches!(v, Value::Null))
                .map(Value::show);
            host.set_env(scope, &key, value);
            Ok(Value::Null)
        }
        (Obj::Env, "getEnvironment") | (Obj::Env, "getOverriddenEnvironment") => Ok(Value::map(
            host.env_all(scope)
                .into_iter()
                .map(|(k, v)| (k, Value::str(v)))
                .collect(),
        )),
        (Obj::Params, "get" | "getProperty") => {
            let key = str_arg(args, 0, name)?;
            Ok(host
                .param(&key)
                .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)))
        }
        (Obj::Params, "containsKey") => {
            let key = str_arg(args, 0, name)?;
            Ok(Value::Bool(host.param(&key).is_some()))
        }
        (Obj::Params, "keySet") => Ok(Value::list(
            host.params()
                .into_iter()
                .map(|(k, _)| Value::str(k))
                .collect(),
        )),
        (Obj::Params, "size") => Ok(Value::Int(host.params().len() as i64)),
        (Obj::Exception { message, .. }, "getMessage" | "getLocalizedMessage") => {
            Ok(Value::str(message.as_str()))
        }
        (Obj::Exception { .. }, "getCause") => Ok(Value::Null),
        (Obj::Matcher { matches }, "find" | "matches") => Ok(Value::Bool(!matches.is_empty())),
        (Obj::Matcher { matches }, "getCount" | "size") => Ok(Value::Int(matches.len() as i64)),
        (Obj::Matcher { matches }, "group") => {
            let n = match args.first() {
                Some(Value::Int(n)) => *n,
                None => 0,
                Some(Value::Str(g)) => {
                    return Err(bad_arg(
                        "group",
                        &format!("a group number (`{g}`: named groups are not supported)"),
                    ));
                }
                _ => return Err(bad_arg("group", "a group number")),
            };
            let Some(first) = matches.first() else {
                return Err(("java.lang.IllegalStateException", "No match found".into()));
            };
            usize::try_from(n)
                .ok()
                .and_then(|k| first.get(k))
                .map(|g| g.as_deref().map(Value::str).unwrap_or(Value::Null))
                .ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("No group {n}"),
                    )
                })
        }
        (Obj::Entry { key, .. }, "getKey") => Ok(Value::str(key.as_str())),
        (Obj::Entry { value, .. }, "getValue") => Ok((**value).clone()),
        (Obj::PreviousBuild { result }, "getResult") => {
            Ok(result.as_deref().map(Value::str).unwrap_or(Value::Null))
        }
        _ => Err(no_method(recv, name)),
    }
}

fn string_method(s: &Arc<str>, recv: &Value, name: &str, args: &[Value]) -> Result<Value, E> {
    let text: &str = s;
    Ok(match name {
        "trim" | "strip" => Value::str(text.trim()),
        "stripIndent" => {
            let indent = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            Value::str(
                text.lines()
                    .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        "size" | "length" => Value::Int(text.chars().count() as i64),
        "isEmpty" => Value::Bool(text.is_empty()),
        "toLowerCase" => Value::str(text.to_lowercase()),
        "toUpperCase" => Value::str(text.to_uppercase()),
        "capitalize" => {
            let mut c = text.chars();
            Value::str(match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            })
        }
        "reverse" => Value::str(text.chars().rev().collect::<String>()),
        "contains" => Value::Bool(text.contains(&*str_arg(args, 0, name)?)),
        "startsWith" => Value::Bool(text.starts_with(&*str_arg(args, 0, name)?)),
        "endsWith" => Value::Bool(text.ends_with(&*str_arg(args, 0, name)?)),
        "equalsIgnoreCase" => {
            Value::Bool(text.to_lowercase() == str_arg(args, 0, name)?.to_lowercase())
        }
        "indexOf" => Value::Int(
            text.find(&*str_arg(args, 0, name)?)
                .map_or(-1, |b| text[..b].chars().count() as i64),
        ),
        "lastIndexOf" => Value::Int(
            text.rfind(&*str_arg(args, 0, name)?)
                .map_or(-1, |b| text[..b].chars().count() as i64),
        ),
        "replace" => {
            let from = str_arg(args, 0, name)?;
            let to = str_arg(args, 1, name)?;
            if from.is_empty() {
                return Err(bad_arg(name, "a non-empty string to replace"));
            }
            Value::str(text.replace(&*from, &to))
        }
        "replaceAll" => {
            let re = regex(&str_arg(args, 0, name)?)?;
            Value::str(re.replace_all(text, replacement(&str_arg(args, 1, name)?).as_str()))
        }
        "replaceFirst" => {
            let re = regex(&str_arg(args, 0, name)?)?;
            Value::str(re.replace(text, replacement(&str_arg(args, 1, name)?).as_str()))
        }
        "matches" => whole_match(recv, args.first().unwrap_or(&Value::Null))?,
        "split" => {
            let parts: Vec<Value> = match args.first() {
                None => text.split_whitespace().map(Value::str).collect(),
                Some(sep) => {
                    // Java's split: a regex, trailing empty strings dropped.
                    let re = regex(&sep.show())?;
                    let mut parts: Vec<&str> = re.split(text).collect();
                    while parts.last() == Some(&"") && parts.len() > 1 {
                        parts.pop();
                    }
                    if parts == [""] && !text.is_empty() {
                        parts.clear();
                    }
                    parts.into_iter().map(Value::str).collect()
                }
            };
            Value::list(parts)
        }
        "tokenize" => {
            let delims: Vec<char> = match args.first() {
                None => vec![' ', '\t', '\n', '\r', '\u{c}'],
                Some(d) => d.show().chars().collect(),
            };
            Value::list(
                text.split(|c| delims.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(Value::str)
                    .collect(),
            )
        }
        "readLines" | "lines" => Value::list(text.lines().map(Value::str).collect()),
        "substring" => {
            let chars: Vec<char> = text.chars().collect();
            let a = int_arg(args, 0, name)?;
            let b = if args.len() > 1 {
                int_arg(args, 1, name)?
            } else {
                chars.len() as i64
            };
            if a < 0 || b < a || b as usize > chars.len() {
                return Err((
                    "java.lang.StringIndexOutOfBoundsException",
                    format!("begin {a}, end {b}, length {}", chars.len()),
                ));
            }
            Value::str(chars[a as usize..b as usize].iter().collect::<String>())
        }
        "take" => {
            let n = int_arg(args, 0, name)?.max(0) as usize;
            Value::str(text.chars().take(n).collect::<String>())
        }
        "drop" => {
            let n = int_arg(args, 0, name)?.max(0) as usize;
            Value::str(text.chars().skip(n).collect::<String>())
        }
        "padLeft" | "padRight" => {
            let width = int_arg(args, 0, name)?.clamp(0, 1 << 20) as usize;
            let pad = args.get(1).map_or(" ".to_owned(), Value::show);
            let len = text.chars().count();
            if len >= width || pad.is_empty() {
                Value::str(text)
            } else {
                let fill: String = pad.chars().cycle().take(width - len).collect();
                Value::str(if name == "padLeft" {
                    format!("{fill}{text}")
                } else {
                    format!("{text}{fill}")
                })
            }
        }
        "count" => {
            let needle = str_arg(args, 0, name)?;
            Value::Int(if needle.is_empty() {
                0
            } else {
                text.matches(&*needle).count() as i64
            })
        }
        "toInteger" | "toLong" => Value::Int(parse_int(text)?),
        "toDouble" | "toFloat" | "toBigDecimal" => Value::Float(parse_float(text)?),
        "toBoolean" => Value::Bool(matches!(
            text.trim().to_lowercase().as_str(),
            "true" | "y" | "1"
        )),
        "isInteger" | "isLong" | "isNumber" | "isDouble" | "isBigDecimal" => {
            Value::Bool(if name == "isInteger" || name == "isLong" {
                text.trim().parse::<i64>().is_ok()
            } else {
                text.trim().parse::<f64>().is_ok()
            })
        }
        "toList" | "chars" | "toCharArray" => Value::list(recv.items().unwrap_or_default()),
        "plus" => arithmetic(BinOp::Add, recv, args.first().unwrap_or(&Value::Null))?,
        "minus" => arithmetic(BinOp::Sub, recv, args.first().unwrap_or(&Value::Null))?,
        "multiply" => arithmetic(BinOp::Mul, recv, args.first().unwrap_or(&Value::Null))?,
        "center" => {
            let width = int_arg(args, 0, name)?.clamp(0, 1 << 20) as usize;
            let len = text.chars().count();
            if len >= width {
                Value::str(text)
            } else {
                let left = (width - len) / 2;
                Value::str(format!(
                    "{}{text}{}",
                    " ".repeat(left),
                    " ".repeat(width - len - left)
                ))
            }
        }
        "charAt" => {
            let i = int_arg(args, 0, name)?;
            text.chars()
                .nth(usize::try_from(i).map_err(|_| bad_arg(name, "an index from 0"))?)
                .map(|c| Value::str(c.to_string()))
                .ok_or_else(|| {
                    (
                        "java.lang.StringIndexOutOfBoundsException",
                        format!("index {i}"),
                    )
                })?
        }
        "encodeBase64" | "bytes" | "execute" => {
            return Err((
                "java.lang.SecurityException",
                format!("String.{name}() is not part of the Groovy subset"),
            ));
        }
        _ => return Err(no_method(recv, name)),
    })
}

fn list_method(recv: &Value, name: &str, args: &[Value]) -> Result<Value, E> {
    if let Value::Range { from, to } = recv {
        match name {
            "size" => return Ok(Value::Int(range_len(*from, *to) as i64)),
            "contains" => {
                return Ok(Value::Bool(
                    matches!(args.first(), Some(Value::Int(n)) if (*from.min(to)..=*from.max(to)).contains(n)),
                ));
            }
            "getFrom" => return Ok(Value::Int(*from.min(to))),
            "getTo" => return Ok(Value::Int(*from.max(to))),
            _ => {
                if range_len(*from, *to) > MAX_ITEMS {
                    return Err(too_big());
                }
                let list = Value::list(range_items(*from, *to).map(Value::Int).collect());
                return list_method(&list, name, args);
            }
        }
    }
    let Value::List(l) = recv else {
        return Err(no_method(recv, name));
    };
    let first = args.first().cloned().unwrap_or(Value::Null);
    let items = || l.lock().clone();
    Ok(match name {
        "size" => Value::Int(l.lock().len() as i64),
        "isEmpty" => Value::Bool(l.lock().is_empty()),
        "add" | "push" | "leftShift" if args.len() == 1 => {
            l.lock().push(first);
            Value::Bool(true)
        }
        "add" if args.len() == 2 => {
            let i = int_arg(args, 0, name)?;
            let mut l = l.lock();
            let k = usize::try_from(i)
                .ok()
                .filter(|k| *k <= l.len())
                .ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("Index: {i}, Size: {}", l.len()),
                    )
                })?;
            l.insert(k, args[1].clone());
            Value::Null
        }
        "addAll" => {
            let more = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            l.lock().extend(more);
            Value::Bool(true)
        }
        "remove" | "removeAt" => match first {
            Value::Int(i) => {
                let mut l = l.lock();
                let k = at(l.len(), i).filter(|_| i >= 0).ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("Index: {i}, Size: {}", l.len()),
                    )
                })?;
                l.remove(k)
            }
            other => {
                let found = items().iter().position(|x| equals(x, &other));
                let mut l = l.lock();
                match found.filter(|k| *k < l.len()) {
                    Some(k) => {
                        l.remove(k);
                        Value::Bool(true)
                    }
                    None => Value::Bool(false),
                }
            }
        },
        "pop" => l.lock().pop().ok_or_else(|| {
            (
                "java.util.NoSuchElementException",
                "Cannot pop() an empty List".into(),
            )
        })?,
        "clear" => {
            l.lock().clear();
            Value::Null
        }
        "get" | "getAt" => {
            let i = int_arg(args, 0, name)?;
            let l = l.lock();
            at(l.len(), i).map(|k| l[k].clone()).unwrap_or(Value::Null)
        }
        "contains" => Value::Bool(items().iter().any(|x| equals(x, &first))),
        "containsAll" => {
            let want = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            let have = items();
            Value::Bool(want.iter().all(|w| have.iter().any(|h| equals(h, w))))
        }
        "indexOf" => Value::Int(
            items()
                .iter()
                .position(|x| equals(x, &first))
                .map_or(-1, |k| k as i64),
        ),
        "join" => {
            let sep = args.first().map(Value::show).unwrap_or_default();
            Value::str(
                items()
                    .iter()
                    .map(Value::show)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )
        }
        "first" | "head" => items().into_iter().next().ok_or_else(empty)?,
        "last" => items().pop().ok_or_else(empty)?,
        "tail" => Value::list(items().into_iter().skip(1).collect()),
        "init" => {
            let mut v = items();
            v.pop();
            Value::list(v)
        }
        "take" => Value::list(
            items()
                .into_iter()
                .take(int_arg(args, 0, name)?.max(0) as usize)
                .collect(),
        ),
        "drop" => Value::list(
            items()
                .into_iter()
                .skip(int_arg(args, 0, name)?.max(0) as usize)
                .collect(),
        ),
        "subList" => {
            let v = items();
            let (a, b) = (int_arg(args, 0, name)?, int_arg(args, 1, name)?);
            if a < 0 || b < a || b as usize > v.len() {
                return Err((
                    "java.lang.IndexOutOfBoundsException",
                    format!("subList({a}, {b}) of {}", v.len()),
                ));
            }
            Value::list(v[a as usize..b as usize].to_vec())
        }
        "reverse" => Value::list(items().into_iter().rev().collect()),
        "sort" | "toSorted" => {
            let mut v = items();
            sort(&mut v)?;
            if name == "sort" {
                *l.lock() = v.clone();
            }
            Value::list(v)
        }
        "unique" | "toUnique" | "toSet" => {
            let v = unique(items());
            if name == "unique" {
                *l.lock() = v.clone();
            }
            Value::list(v)
        }
        "flatten" => {
            fn flat(v: &[Value], out: &mut Vec<Value>, depth: usize) {
                for x in v {
                    match x {
                        Value::List(inner) if depth < 32 => {
                            flat(&inner.lock().clone(), out, depth + 1)
                        }
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(&items(), &mut out, 0);
            Value::list(out)
        }
        "sum" => {
            let mut total = match items().first() {
                Some(Value::Str(_)) => Value::str(""),
                _ => Value::Int(0),
            };
            for x in items() {
                total = arithmetic(BinOp::Add, &total, &x)?;
            }
            total
        }
        "max" | "min" => {
            let mut v = items();
            sort(&mut v)?;
            (if name == "max" {
                v.pop()
            } else {
                v.into_iter().next()
            })
            .unwrap_or(Value::Null)
        }
        "count" => Value::Int(items().iter().filter(|x| equals(x, &first)).count() as i64),
        "plus" => arithmetic(BinOp::Add, recv, &first)?,
        "minus" => arithmetic(BinOp::Sub, recv, &first)?,
        "intersect" => {
            let other = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            Value::list(
                items()
                    .into_iter()
                    .filter(|x| other.iter().any(|y| equals(x, y)))
                    .collect(),
            )
        }
        "toList" | "asList" | "collect" => Value::list(items()),
        "asImmutable" | "asUnmodifiable" => recv.clone(),
        _ => return Err(no_method(recv, name)),
    })
}

fn empty() -> E {
    (
        "java.util.NoSuchElementException",
        "the list is empty".into(),
    )
}

fn sort(v: &mut [Value]) -> Result<(), E> {
    for pair in v.windows(2) {
        if compare(&pair[0], &pair[1]).is_none() {
            return Err((
                "java.lang.ClassCastException",
                format!(
                    "cannot sort a {} with a {}",
                    pair[0].type_name(),
                    pair[1].type_name()
                ),
            ));
        }
    }
    v.sort_by(|a, b| compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(())
}

fn map_method(
    m: &Arc<super::value::Shared<IndexMap<String, Value>>>,
    recv: &Value,
    name: &str,
    args: &[Value],
) -> Result<Value, E> {
    // The key is computed before the map is locked: it may be the map itself.
    let key = args.first().map(Value::show).unwrap_or_default();
    let key = || key.clone();
    Ok(match name {
        "size" => Value::Int(m.lock().len() as i64),
        "isEmpty" => Value::Bool(m.lock().is_empty()),
        "get" | "getAt" => m
            .lock()
            .get(&key())
            .cloned()
            .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)),
        "getOrDefault" => m
            .lock()
            .get(&key())
            .cloned()
            .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)),
        "containsKey" => Value::Bool(m.lock().contains_key(&key())),
        "containsValue" => {
            let want = args.first().cloned().unwrap_or(Value::Null);
            let values: Vec<Value> = m.lock().values().cloned().collect();
            Value::Bool(values.iter().any(|v| equals(v, &want)))
        }
        "put" => m
            .lock()
            .insert(key(), args.get(1).cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null),
        "putAll" => {
            let Some(Value::Map(other)) = args.first() else {
                return Err(bad_arg(name, "a map"));
            };
            let other = other.lock().clone();
            m.lock().extend(other);
            Value::Null
        }
        "remove" => m.lock().shift_remove(&key()).unwrap_or(Value::Null),
        "keySet" | "keys" => Value::list(m.lock().keys().map(|k| Value::str(k.as_str())).collect()),
        "values" => Value::list(m.lock().values().cloned().collect()),
        "entrySet" => Value::list(recv.items().unwrap_or_default()),
        "plus" => arithmetic(BinOp::Add, recv, args.first().unwrap_or(&Value::Null))?,
        "clear" => {
            m.lock().clear();
            Value::Null
        }
        _ => return Err(no_method(recv, name)),
    })
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
