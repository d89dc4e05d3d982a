//! The static methods Jenkinsfiles call on Java classes: `String.format`, `String.valueOf`,
//! `Integer.parseInt`, `Math.max` and the like.

use super::{E, parse_float, parse_int};
use crate::groovy::value::Value;

/// Classes whose static methods the subset knows.
pub const CLASSES: &[&str] = &["String", "Integer", "Long", "Double", "Boolean", "Math"];

fn num(args: &[Value], k: usize, what: &str) -> Result<f64, E> {
    args.get(k).and_then(Value::as_f64).ok_or_else(|| {
        (
            "groovy.lang.MissingMethodException",
            format!("{what} takes numbers"),
        )
    })
}

/// `Class.name(args)`; None when the subset does not know it.
pub fn call(class: &str, name: &str, args: &[Value]) -> Option<Result<Value, E>> {
    let text = |k: usize| args.get(k).map(Value::show).unwrap_or_default();
    Some(match (class, name) {
        ("String", "format") => format(&text(0), &args[1.min(args.len())..]).map(Value::str),
        ("String", "valueOf") => Ok(Value::str(text(0))),
        ("String", "join") => {
            let items = match args.get(1).and_then(Value::items) {
                Some(items) if args.len() == 2 => items,
                _ => args.iter().skip(1).cloned().collect(),
            };
            let parts: Vec<String> = items.iter().map(Value::show).collect();
            Ok(Value::str(parts.join(&text(0))))
        }
        ("Integer" | "Long", "parseInt" | "parseLong" | "valueOf") => {
            parse_int(&text(0)).map(Value::Int)
        }
        ("Integer" | "Long", "toString") => Ok(Value::str(text(0))),
        ("Double", "parseDouble" | "valueOf") => parse_float(&text(0)).map(Value::Float),
        ("Boolean", "parseBoolean" | "valueOf") => {
            Ok(Value::Bool(text(0).eq_ignore_ascii_case("true")))
        }
        ("Math", "max" | "min") => {
            let (a, b) = match (args.first(), args.get(1)) {
                (Some(a), Some(b)) => (a.clone(), b.clone()),
                _ => {
                    return Some(Err((
                        "groovy.lang.MissingMethodException",
                        format!("Math.{name} takes two numbers"),
                    )));
                }
            };
            let (x, y) = match (num(args, 0, "Math"), num(args, 1, "Math")) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
            };
            Ok(if (name == "max") == (x >= y) { a } else { b })
        }
        ("Math", "abs") => match args.first() {
            Some(Value::Int(n)) => Ok(Value::Int(n.saturating_abs())),
            _ => num(args, 0, "Math.abs").map(|f| Value::Float(f.abs())),
        },
        ("Math", "ceil") => num(args, 0, "Math.ceil").map(|f| Value::Float(f.ceil())),
        ("Math", "floor") => num(args, 0, "Math.floor").map(|f| Value::Float(f.floor())),
        ("Math", "round") => num(args, 0, "Math.round").map(|f| Value::Int(f.round() as i64)),
        ("Math", "pow") => match (num(args, 0, "Math.pow"), num(args, 1, "Math.pow")) {
            (Ok(a), Ok(b)) => Ok(Value::Float(a.powf(b))),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        _ => return None,
    })
}

fn bad_format(spec: &str) -> E {
    (
        "java.util.UnknownFormatConversionException",
        format!(
            "Conversion = '{spec}' (the subset formats %s, %d, %f, %x, %o, %e, %b, %c, %% and %n, with flags - 0 + , and a width and precision)"
        ),
    )
}

/// Java's `String.format` for the common conversions: `%s %d %f %x %o %e %b %c %% %n`, with
/// the flags `-`, `0`, `+`, `,`, a width and a precision.
pub fn format(pattern: &str, args: &[Value]) -> Result<String, E> {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-0+, #".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = p.parse::<usize>().ok();
        }
        let Some(conv) = chars.next() else {
            return Err(bad_format("%"));
        };
        let arg = |next: &mut usize| {
            let v = args.get(*next).cloned().unwrap_or(Value::Null);
            *next += 1;
            v
        };
        let body = match conv {
            '%' => "%".to_owned(),
            'n' => "\n".to_owned(),
            's' | 'S' => {
                let mut s = arg(&mut next).show();
                if let Some(p) = precision {
                    s = s.chars().take(p).collect();
                }
                if conv == 'S' { s.to_uppercase() } else { s }
            }
            'b' | 'B' => arg(&mut next).truthy().to_string(),
            'c' => arg(&mut next)
                .show()
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default(),
            'd' => {
                let v = arg(&mut next);
                let n = match &v {
                    Value::Int(n) => *n,
                    other => other
                        .as_f64()
                        .map(|f| f as i64)
                        .ok_or_else(|| bad_format("d"))?,
                };
                let mut s = n.unsigned_abs().to_string();
                if flags.contains(',') {
                    s = grouped(&s);
                }
                sign(n < 0, &flags) + &s
            }
            'x' | 'X' | 'o' => {
                let n = match arg(&mut next) {
                    Value::Int(n) => n,
                    _ => return Err(bad_format(&conv.to_string())),
                };
                match conv {
                    'x' => format!("{n:x}"),
                    'X' => format!("{n:X}"),
                    _ => format!("{n:o}"),
                }
            }
            'f' | 'e' => {
                let f = arg(&mut next)
                    .as_f64()
                    .ok_or_else(|| bad_format(&conv.to_string()))?;
                let p = precision.unwrap_or(6);
                let s = if conv == 'f' {
                    format!("{:.p$}", f.abs())
                } else {
                    format!("{:.p$e}", f.abs())
                };
                let s = if flags.contains(',') && conv == 'f' {
                    match s.split_once('.') {
                        Some((int, frac)) => format!("{}.{frac}", grouped(int)),
                        None => grouped(&s),
                    }
                } else {
                    s
                };
                sign(f < 0.0, &flags) + &s
            }
            other => return Err(bad_format(&other.to_string())),
        };
        let width: usize = width.parse().unwrap_or(0).min(1000);
        let len = body.chars().count();
        if len >= width {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', width - len));
        } else if flags.contains('0') && "dfxXoe".contains(conv) {
            let (sign, digits) = match body.strip_prefix(['-', '+']) {
                Some(rest) => (&body[..1], rest),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', width - len));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', width - len));
            out.push_str(&body);
        }
    }
    Ok(out)
}

fn sign(negative: bool, flags: &str) -> String {
    if negative {
        "-".into()
    } else if flags.contains('+') {
        "+".into()
    } else {
        String::new()
    }
}

/// `1234567` → `1,234,567`.
fn grouped(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_format_conversions() {
        let f = |p: &str, a: Vec<Value>| format(p, &a).unwrap();
        assert_eq!(f("%s-%03d", vec![Value::str("b"), Value::Int(7)]), "b-007");
        assert_eq!(
            f("%-5s|%5s|", vec![Value::str("ab"), Value::str("cd")]),
            "ab   |   cd|"
        );
        assert_eq!(f("%.2f%%", vec![Value::Float(12.345)]), "12.35%");
        assert_eq!(
            f(
                "%,d %x %+d",
                vec![Value::Int(1234567), Value::Int(255), Value::Int(3)]
            ),
            "1,234,567 ff +3"
        );
        assert_eq!(f("%05d", vec![Value::Int(-42)]), "-0042");
        assert!(format("%q", &[]).is_err());
    }
}
