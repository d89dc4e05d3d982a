//! Declarative Jenkinsfiles: lexer, parser, typed model and the checks `sluice lint` and
//! `POST /api/v1/lint` report. Anything outside the supported subset is refused with
//! `file:line:col: message` before a run starts, never half-run.

mod analyze;
pub mod diagnostics;
pub mod lexer;
pub mod model;
pub mod syntax;

pub use diagnostics::{Diagnostic, Pos, Severity};
pub use model::Pipeline;

/// The outcome of checking a Jenkinsfile.
#[derive(Debug)]
pub struct Lint {
    /// The pipeline, when there is no error.
    pub pipeline: Option<Pipeline>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Lint {
    pub fn is_valid(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Parses and checks a Jenkinsfile.
pub fn lint(source: &str) -> Lint {
    let mut diagnostics = Vec::new();
    let nodes = syntax::parse(source, &mut diagnostics);
    let pipeline = analyze::Analyzer::new(&mut diagnostics).file(&nodes);
    diagnostics.sort_by_key(|d| d.pos);
    diagnostics.dedup();
    let valid = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    Lint {
        pipeline: pipeline.filter(|_| valid),
        diagnostics,
    }
}
