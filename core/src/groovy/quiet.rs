//! A host with no build behind it, for the fuzz target and the benchmarks: `echo` keeps its
//! lines, `sh` answers an empty string or status 0, block steps run their body, and every
//! other step does nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::eval::{Failure, Host, StepCall};
use super::{Cx, Value};

#[derive(Default)]
pub struct QuietHost {
    pub echoed: Mutex<Vec<String>>,
    pub env: Mutex<BTreeMap<String, String>>,
}

impl Host for QuietHost {
    type Scope = ();

    fn is_step(&self, name: &str) -> bool {
        crate::pipeline::groovy_step(name)
    }

    fn step<'a>(
        &'a self,
        cx: &'a Cx<'a, Self>,
        call: StepCall,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            match call.name.as_str() {
                "echo" => {
                    let line = call.main("message").map(Value::show).unwrap_or_default();
                    if let Ok(mut e) = self.echoed.lock()
                        && e.len() < 10_000
                    {
                        e.push(line);
                    }
                    Ok(Value::Null)
                }
                "error" => Err(Failure::step(
                    call.main("message").map(Value::show).unwrap_or_default(),
                )),
                "sh" if call.named("returnStdout").is_some_and(Value::truthy) => Ok(Value::str("")),
                "sh" if call.named("returnStatus").is_some_and(Value::truthy) => Ok(Value::Int(0)),
                "fileExists" => Ok(Value::Bool(false)),
                "readFile" => Ok(Value::str("")),
                _ => match &call.body {
                    Some(body) => cx.call(body, Vec::new()).await,
                    None => Ok(Value::Null),
                },
            }
        })
    }

    fn env(&self, _: &(), name: &str) -> Option<String> {
        self.env.lock().ok()?.get(name).cloned()
    }

    fn env_all(&self, _: &()) -> Vec<(String, String)> {
        self.env
            .lock()
            .map(|e| e.clone().into_iter().collect())
            .unwrap_or_default()
    }

    fn set_env(&self, _: &(), name: &str, value: Option<String>) {
        if let Ok(mut env) = self.env.lock() {
            match value {
                Some(v) => env.insert(name.to_owned(), v),
                None => env.remove(name),
            };
        }
    }

    fn param(&self, _: &str) -> Option<Value> {
        None
    }

    fn params(&self) -> Vec<(String, Value)> {
        Vec::new()
    }

    fn build(&self, prop: &str) -> Option<Value> {
        match prop {
            "number" => Some(Value::Int(1)),
            "result" => Some(Value::Null),
            "currentResult" => Some(Value::str("SUCCESS")),
            _ => None,
        }
    }

    fn set_build(&self, _: &str, _: &Value) -> Result<(), String> {
        Ok(())
    }
}
