//! The Groovy subset `script { }` blocks, `when { expression { } }` and computed environment
//! values run: parsed with the Jenkinsfile lexer, checked at lint, and interpreted without a
//! JVM under a budget of evaluation steps, memory and depth (docs/JENKINSFILE.md lists what
//! it covers and what it refuses).

pub mod ast;
pub mod check;
pub mod eval;
pub mod methods;
pub mod parse;
pub mod quiet;
pub mod value;

/// The stack each runtime thread gets: evaluation nests up to [`eval::MAX_DEPTH`] boxed
/// futures deep, which a debug build's 2 MiB default cannot hold (the memory is reserved,
/// and only used as deep evaluations touch it).
pub const STACK_BYTES: usize = 32 << 20;

pub use eval::{Cx, FailKind, Failure, Host, Interp, StepCall};
pub use value::{Obj, Value};

#[cfg(test)]
mod tests;
