//! String methods of Groovy's GDK.

use std::sync::Arc;

use super::super::ast::BinOp;
use super::super::value::Value;
use super::{
    E, arithmetic, bad_arg, int_arg, no_method, parse_float, parse_int, regex, replacement,
    str_arg, whole_match,
};

pub(super) fn string_method(
    s: &Arc<str>,
    recv: &Value,
    name: &str,
    args: &[Value],
) -> Result<Value, E> {
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
