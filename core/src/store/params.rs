//! Run parameters checked against what the pipeline declares: the `parameters` block of the
//! project's last parsed Jenkinsfile at trigger time, and the Jenkinsfile of the run's own
//! commit when the run starts. Unknown names, a boolean that is not `true`/`false` and a
//! choice outside its list are refused, naming the parameter; missing ones get their default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pipeline::model::Parameter;
use crate::{Error, Result};

/// One declared parameter, as stored with the project (and shown with an approval gate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParamSpec {
    pub name: String,
    /// `string`, `text`, `boolean`, `choice` or `password`.
    pub kind: String,
    pub default: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// What the Jenkinsfile says the parameter is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl From<&Parameter> for ParamSpec {
    fn from(p: &Parameter) -> ParamSpec {
        let (kind, default, choices) = match p {
            Parameter::String { default, .. } => ("string", default.clone(), Vec::new()),
            Parameter::Text { default, .. } => ("text", default.clone(), Vec::new()),
            Parameter::Password { default, .. } => ("password", default.clone(), Vec::new()),
            Parameter::Boolean { default, .. } => ("boolean", default.to_string(), Vec::new()),
            Parameter::Choice { choices, .. } => (
                "choice",
                choices.first().cloned().unwrap_or_default(),
                choices.clone(),
            ),
        };
        let description = match p {
            Parameter::String { description, .. }
            | Parameter::Text { description, .. }
            | Parameter::Password { description, .. }
            | Parameter::Boolean { description, .. }
            | Parameter::Choice { description, .. } => description.clone(),
        };
        ParamSpec {
            name: p.name().to_owned(),
            kind: kind.to_owned(),
            default,
            choices,
            description,
        }
    }
}

/// The declared parameters as stored with the project.
pub fn to_json(parameters: &[Parameter]) -> String {
    let specs: Vec<ParamSpec> = parameters.iter().map(ParamSpec::from).collect();
    serde_json::to_string(&specs).unwrap_or_else(|_| "[]".into())
}

/// The stored parameters; none when nothing valid is stored.
pub fn from_json(json: &str) -> Vec<ParamSpec> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The values of `password` parameters in `values` (given or default), to mask in logs.
pub fn password_values(specs: &[ParamSpec], values: &BTreeMap<String, String>) -> Vec<String> {
    specs
        .iter()
        .filter(|s| s.kind == "password")
        .map(|s| values.get(&s.name).unwrap_or(&s.default).clone())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `values` with every `password` parameter's value hidden, for showing a run.
pub fn hide_passwords(specs: &[ParamSpec], values: &mut BTreeMap<String, String>) {
    for spec in specs.iter().filter(|s| s.kind == "password") {
        if let Some(v) = values.get_mut(&spec.name) {
            *v = "****".into();
        }
    }
}

/// `given` checked against `specs`, with defaults filled in for what was not given.
pub fn check(
    specs: &[ParamSpec],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    for name in given.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            let declared: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            let declared = if declared.is_empty() {
                "the pipeline declares no parameters".to_owned()
            } else {
                format!("declared: {}", declared.join(", "))
            };
            return Err(Error::invalid(
                "params",
                format!("`{name}` is not a parameter of this pipeline ({declared})"),
            ));
        }
    }
    let mut values = BTreeMap::new();
    for spec in specs {
        let value = given.get(&spec.name).unwrap_or(&spec.default).clone();
        match spec.kind.as_str() {
            "boolean" if value != "true" && value != "false" => {
                return Err(Error::invalid(
                    "params",
                    format!("`{}` must be true or false, not `{value}`", spec.name),
                ));
            }
            "choice" if !spec.choices.contains(&value) => {
                return Err(Error::invalid(
                    "params",
                    format!(
                        "`{}` must be one of {}, not `{value}`",
                        spec.name,
                        spec.choices.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        values.insert(spec.name.clone(), value);
    }
    Ok(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        let lint = crate::pipeline::lint(
            "pipeline { agent any\n parameters { string(name: 'TARGET', defaultValue: 'eu')\n \
             booleanParam(name: 'DRY', defaultValue: true)\n \
             choice(name: 'SIZE', choices: ['s', 'm', 'l']) }\n \
             stages { stage('a') { steps { echo 'x' } } } }",
        );
        from_json(&to_json(&lint.pipeline.unwrap().parameters))
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let values = check(&specs(), &given(&[("SIZE", "l")])).unwrap();
        assert_eq!(
            values,
            given(&[("TARGET", "eu"), ("DRY", "true"), ("SIZE", "l")])
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        for (pairs, says) in [
            (vec![("NOPE", "1")], "`NOPE` is not a parameter"),
            (vec![("DRY", "yes")], "`DRY` must be true or false"),
            (vec![("SIZE", "xl")], "`SIZE` must be one of s, m, l"),
        ] {
            let err = check(&specs(), &given(&pairs)).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
