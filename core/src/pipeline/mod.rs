//! Declarative Jenkinsfiles: lexer, parser, typed model and the checks `sluice lint` and
//! `POST /api/v1/lint` report. Anything outside the supported subset is refused with
//! `file:line:col: message` before a run starts, never half-run.

mod analyze;
pub mod cron;
pub mod deploy;
pub mod diagnostics;
pub mod lexer;
pub mod model;
mod suggest;
pub mod syntax;

pub use analyze::groovy_step;
pub use diagnostics::{Diagnostic, Pos, Severity};
pub use model::Pipeline;
pub use suggest::suggest;

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
    let pipeline = match syntax::parse(source, &mut diagnostics) {
        Some(nodes) => analyze::Analyzer::new(&mut diagnostics).file(&nodes),
        None => None,
    };
    diagnostics.sort_by_key(|d| d.pos);
    diagnostics.dedup();
    let valid = !diagnostics.iter().any(|d| d.severity == Severity::Error);
    Lint {
        pipeline: pipeline.filter(|_| valid),
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FULL: &str = include_str!("../../../tests/jenkinsfiles/valid/full.groovy");

    fn positions_are_in_the_source(source: &str, result: &Lint) -> bool {
        let lines = source.split('\n').count() as u32;
        result
            .diagnostics
            .iter()
            .all(|d| d.pos.line >= 1 && d.pos.line <= lines.max(1) && d.pos.col >= 1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Arbitrary text never crashes the linter, and every diagnostic points into it.
        #[test]
        fn arbitrary_text_never_panics(source in "(?s).{0,400}") {
            let result = lint(&source);
            prop_assert!(positions_are_in_the_source(&source, &result));
        }

        /// Jenkinsfile-shaped noise, which reaches deeper into the parser.
        #[test]
        fn token_soup_never_panics(words in proptest::collection::vec(
            prop_oneof![
                Just("pipeline"), Just("stages"), Just("stage('x')"), Just("steps"), Just("sh 'a'"),
                Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"), Just(","), Just(":"),
                Just("="), Just("\n"), Just("'s'"), Just("\"${x}\""), Just("'''m\nl'''"), Just("42"),
                Just("matrix"), Just("axis"), Just("when"), Just("post"), Just("agent any"), Just("//c\n"),
            ],
            0..80,
        )) {
            let source = words.join(" ");
            let result = lint(&source);
            prop_assert!(positions_are_in_the_source(&source, &result));
        }

        /// A real Jenkinsfile with a slice cut out or text spliced in still lints without crashing.
        #[test]
        fn mutated_real_files_never_panic(start in 0usize..FULL.len(), len in 0usize..200, insert in "(?s).{0,20}") {
            let mut chars: Vec<char> = FULL.chars().collect();
            let start = start.min(chars.len());
            let end = (start + len).min(chars.len());
            chars.splice(start..end, insert.chars());
            let source: String = chars.into_iter().collect();
            let result = lint(&source);
            prop_assert!(positions_are_in_the_source(&source, &result));
        }
    }

    #[test]
    fn the_full_example_is_valid() {
        let result = lint(FULL);
        assert!(result.is_valid(), "{:#?}", result.diagnostics);
    }
}
