//! Plugin steps whose arguments are reshaped at lint: `step([$class: …])` becomes the step it
//! stands for, `publishHTML(target: [...])` gets its map's entries as named arguments.

use super::super::model::*;
use super::super::syntax::{Node, Value};
use super::{Analyzer, call_step, text_of};

impl Analyzer<'_> {
    /// `step([$class: 'ArtifactArchiver', artifacts: '…'])` and `JUnitResultArchiver`: the
    /// old forms of `archiveArtifacts` and `junit`, run as those.
    pub(super) fn class_step(&mut self, node: &Node) -> Option<Step> {
        let entries: Vec<(String, Value)> = match node.args.positional.first() {
            Some(Value::Map(entries, _)) if node.args.positional.len() == 1 => entries.clone(),
            None => node.args.named.clone(),
            _ => {
                self.error(
                    node.pos,
                    "`step` takes a map: step([$class: 'ArtifactArchiver', artifacts: 'dist/**'])",
                );
                return None;
            }
        };
        let class = entries
            .iter()
            .find(|(k, _)| k == "$class")
            .and_then(|(_, v)| text_of(v));
        let name = match class.as_deref() {
            Some("ArtifactArchiver") => "archiveArtifacts",
            Some("JUnitResultArchiver") => "junit",
            Some(other) => {
                self.error(node.pos, format!("step([$class: '{other}']) is not supported: Sluice runs ArtifactArchiver and JUnitResultArchiver"));
                return None;
            }
            None => {
                self.error(node.pos, "`step` needs `$class:`, e.g. step([$class: 'ArtifactArchiver', artifacts: 'dist/**'])");
                return None;
            }
        };
        let call = Node {
            name: name.to_owned(),
            args: super::super::syntax::Args {
                positional: Vec::new(),
                named: entries.into_iter().filter(|(k, _)| k != "$class").collect(),
            },
            ..node.clone()
        };
        self.check_signature(&call);
        let key = if name == "junit" {
            "testResults"
        } else {
            "artifacts"
        };
        if call.args.named(key).is_none() {
            self.error(
                node.pos,
                format!(
                    "step([$class: '{}']) needs `{key}:`",
                    class.unwrap_or_default()
                ),
            );
            return None;
        }
        Some(call_step(&call))
    }

    /// `publishHTML(target: [reportDir: 'coverage', reportFiles: 'index.html', reportName:
    /// 'Coverage'])`, also `publishHTML([…])`: the report's files, archived.
    pub(super) fn publish_html(&mut self, node: &Node) -> Option<Step> {
        let entries = match (node.args.named("target"), node.args.positional.first()) {
            (Some(Value::Map(entries, _)), _) | (None, Some(Value::Map(entries, _))) => {
                entries.clone()
            }
            (None, None) => node.args.named.clone(),
            _ => {
                self.error(node.pos, "`publishHTML` takes target: [reportDir: '…', reportFiles: 'index.html', reportName: '…']");
                return None;
            }
        };
        let call = Node {
            args: super::super::syntax::Args {
                positional: Vec::new(),
                named: entries,
            },
            ..node.clone()
        };
        self.check_signature(&call);
        if call.args.named("reportDir").is_none() {
            self.error(
                node.pos,
                "`publishHTML` needs `reportDir:` (the directory holding the report)",
            );
            return None;
        }
        for (_, v) in &call.args.named {
            self.check_value(v);
        }
        Some(call_step(&call))
    }
}
