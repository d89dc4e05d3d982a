//! Problems found in a Jenkinsfile, each at a line and column, rendered the way compilers do:
//! `file:line:col: error: message`, the source line, and a caret under the column.

use serde::Serialize;

/// A 1-based position in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pipeline is refused.
    Error,
    /// Accepted, but worth knowing (e.g. a Jenkins option Sluice ignores).
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(flatten)]
    pub pos: Pos,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            pos,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            pos,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    /// `file:line:col: error: message`, then the source line and a caret.
    pub fn render(&self, file: &str, source: &str) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!(
            "{file}:{}:{}: {severity}: {}",
            self.pos.line, self.pos.col, self.message
        );
        if let Some(line) = source.lines().nth(self.pos.line.saturating_sub(1) as usize) {
            let caret: String = line
                .chars()
                .take(self.pos.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("\n    {line}\n    {caret}^"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_col_and_a_caret() {
        let d = Diagnostic::error(Pos { line: 2, col: 5 }, "unknown step `shh`");
        let text = d.render("Jenkinsfile", "stage {\n    shh 'x'\n}");
        assert_eq!(
            text,
            "Jenkinsfile:2:5: error: unknown step `shh`\n        shh 'x'\n        ^"
        );
    }
}
