//! The interpreter against a host that records what steps were called: `echo` lines are
//! collected, `sh` answers from a table, `error` fails, and block steps run their body.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::eval::{FailKind, Failure, Host, Interp, StepCall};
use super::value::Value;
use super::{Cx, parse};

#[derive(Default)]
pub(crate) struct TestHost {
    pub echoed: Mutex<Vec<String>>,
    pub env: Mutex<BTreeMap<String, String>>,
    pub result: Mutex<Option<String>>,
    /// `sh` scripts and their (stdout, status).
    pub sh: BTreeMap<String, (String, i64)>,
}

impl Host for TestHost {
    type Scope = String;

    fn is_step(&self, name: &str) -> bool {
        matches!(
            name,
            "echo" | "sh" | "error" | "dir" | "parallel" | "readFile"
        )
    }

    fn step<'a>(
        &'a self,
        cx: &'a Cx<'a, Self>,
        call: StepCall,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let main = call.main("script").map(Value::show).unwrap_or_default();
            match call.name.as_str() {
                "echo" => {
                    let line = if cx.scope.is_empty() {
                        main
                    } else {
                        format!("[{}] {main}", cx.scope)
                    };
                    self.echoed.lock().unwrap().push(line);
                    Ok(Value::Null)
                }
                "sh" => {
                    let (out, status) = self.sh.get(&main).cloned().unwrap_or_default();
                    if call.named("returnStdout").is_some_and(Value::truthy) {
                        return Ok(Value::str(out));
                    }
                    if call.named("returnStatus").is_some_and(Value::truthy) {
                        return Ok(Value::Int(status));
                    }
                    if status != 0 {
                        return Err(Failure::step(format!("script returned exit code {status}")));
                    }
                    Ok(Value::Null)
                }
                "error" => Err(Failure::step(main)),
                "dir" => {
                    let inner = cx.with_scope(main);
                    let body = call.body.expect("dir has a body");
                    inner.call(&body, Vec::new()).await
                }
                "parallel" => {
                    // `parallel a: {…}, b: {…}` or `parallel([a: {…}])`.
                    let branches: Vec<(String, Value)> = match call.args.first() {
                        Some((None, Value::Map(m))) => m.lock().clone().into_iter().collect(),
                        _ => call
                            .args
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone()?, v.clone())))
                            .collect(),
                    };
                    let runs = branches.iter().filter_map(|(name, body)| match body {
                        Value::Closure(c) => Some((name.clone(), c.clone())),
                        _ => None,
                    });
                    let futures = runs.map(|(name, c)| async move {
                        let inner = cx.with_scope(name);
                        inner.call(&c, Vec::new()).await
                    });
                    for r in futures_util::future::join_all(futures).await {
                        r?;
                    }
                    Ok(Value::Null)
                }
                _ => Ok(Value::Null),
            }
        })
    }

    fn env(&self, _: &String, name: &str) -> Option<String> {
        self.env.lock().unwrap().get(name).cloned()
    }

    fn env_all(&self, _: &String) -> Vec<(String, String)> {
        self.env.lock().unwrap().clone().into_iter().collect()
    }

    fn set_env(&self, _: &String, name: &str, value: Option<String>) {
        let mut env = self.env.lock().unwrap();
        match value {
            Some(v) => env.insert(name.to_owned(), v),
            None => env.remove(name),
        };
    }

    fn param(&self, name: &str) -> Option<Value> {
        match name {
            "DEPLOY" => Some(Value::Bool(true)),
            "TARGET" => Some(Value::str("staging")),
            _ => None,
        }
    }

    fn params(&self) -> Vec<(String, Value)> {
        vec![
            ("DEPLOY".into(), Value::Bool(true)),
            ("TARGET".into(), Value::str("staging")),
        ]
    }

    fn build(&self, prop: &str) -> Option<Value> {
        match prop {
            "number" => Some(Value::Int(7)),
            "result" => Some(
                self.result
                    .lock()
                    .unwrap()
                    .clone()
                    .map(Value::str)
                    .unwrap_or(Value::Null),
            ),
            "currentResult" => Some(Value::str(
                self.result
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or("SUCCESS".into()),
            )),
            "previousBuild" => Some(Value::obj(super::Obj::PreviousBuild {
                result: Some("FAILURE".into()),
            })),
            _ => None,
        }
    }

    fn set_build(&self, prop: &str, value: &Value) -> Result<(), String> {
        match prop {
            "result" => {
                *self.result.lock().unwrap() = Some(value.show());
                Ok(())
            }
            other => Err(format!("currentBuild.{other} cannot be set")),
        }
    }
}

/// Runs `src` and returns what it echoed, or the failure.
pub(crate) fn run_with(host: TestHost, src: &str) -> (Result<Value, Failure>, Vec<String>) {
    let mut diags = Vec::new();
    let body = parse::program(src, &mut diags).expect("parses");
    assert!(diags.is_empty(), "{diags:?}");
    let interp = Interp::new(host);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = rt.block_on(interp.run(&body, String::new()));
    let echoed = interp.host.echoed.lock().unwrap().clone();
    (result, echoed)
}

fn echoed(src: &str) -> Vec<String> {
    let (result, lines) = run_with(TestHost::default(), src);
    if let Err(f) = result {
        panic!("{}", f.describe());
    }
    lines
}

fn value(src: &str) -> String {
    run_with(TestHost::default(), src).0.unwrap().show()
}

fn failure(src: &str) -> Failure {
    run_with(TestHost::default(), src).0.unwrap_err()
}

/// Like `failure`, with a step budget of 200,000 (the default's code path, sooner).
fn budget_failure(src: &str) -> Failure {
    let mut diags = Vec::new();
    let body = parse::program(src, &mut diags).expect("parses");
    let interp = Interp::new(TestHost::default()).with_budget(200_000, super::eval::BYTE_BUDGET);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(interp.run(&body, String::new())).unwrap_err()
}

#[test]
fn statements_and_operators() {
    let lines = echoed(
        r#"
def total = 0
for (i in 1..4) { total += i }
echo "total ${total}"
int n = 0
while (n < 3) { n++ }
for (int i = 0; i < 2; i++) { n = n * 10 }
echo "n=$n"
def grade = total > 5 ? 'big' : 'small'
echo grade
def missing = null
echo(missing ?: 'fallback')
echo "${missing?.size()}"
echo "${7 / 2} ${7.intdiv(2)} ${2 ** 10} ${-7 % 3} ${1.5 * 2}"
echo "${'b' in ['a', 'b']} ${3 in 1..2} ${'x' !in ['y']}"
if (total == 10 && !(n < 0)) { echo 'and' } else if (n) { echo 'no' } else { echo 'never' }
def (a, b) = [1, 'two']
echo "$a $b"
switch (grade) {
  case ['tiny', 'small']: echo 'small case'; break
  case 'big': echo 'big case'
  case 'fall': echo 'fell through'; break
  default: echo 'default'
}
"#,
    );
    assert_eq!(
        lines,
        [
            "total 10",
            "n=300",
            "big",
            "fallback",
            "null",
            "3.5 3 1024 -1 3.0",
            "true false true",
            "and",
            "1 two",
            "big case",
            "fell through"
        ]
    );
}

#[test]
fn strings_with_every_escape_and_method() {
    let lines = echoed(
        r#"
def v = '  Release-1.2.3  '.trim()
echo v.toLowerCase()
echo v.split('-')[1].tokenize('.').join('|')
echo "${v.startsWith('Rel')} ${v.endsWith('3')} ${v.contains('-1.')} ${v.size()} ${v.length()}"
echo v.replace('.', '_').replaceAll(/(\d+)_(\d+)/, '$2+$1')
echo "${v.substring(8)} ${v.substring(0, 3)} ${v.take(3)} ${v.drop(8)} ${v[-1]} ${v[0..2]}"
echo "${'42'.toInteger() + 1} ${''.isEmpty()} ${'a,b,,'.split(',').size()}"
echo '\u0041\101\t|\s|'
echo "${'abc' * 2} ${'x' + 1 + 2}"
"#,
    );
    assert_eq!(
        lines,
        [
            "release-1.2.3",
            "1|2|3",
            "true true true 13 13",
            "Release-2+1_3",
            "1.2.3 Rel Rel 1.2.3 3 Rel",
            "43 true 2",
            "AA\t| |",
            "abcabc x12"
        ]
    );
}

#[test]
fn closures_lists_and_maps() {
    let lines = echoed(
        r#"
def xs = [3, 1, 2]
echo xs.collect { it * 2 }.toString()
echo xs.findAll { it > 1 }.sort().toString()
echo "${xs.find { it > 1 }} ${xs.any { it > 2 }} ${xs.every { it > 2 }} ${xs.sum()} ${xs.max()}"
xs.eachWithIndex { x, i -> echo "$i:$x" }
def m = [name: 'app', tier: 'web']
m.each { k, v -> echo "$k=$v" }
m.each { e -> echo "${e.key}/${e.value}" }
m.extra = 1
m['other'] = 2
echo "${m.size()} ${m.containsKey('extra')} ${m.keySet()} ${m.get('nope', 'dflt')}"
echo m.collectEntries { k, v -> [(k.toUpperCase()): v] }.toString()
echo "${xs.inject(0) { acc, x -> acc + x }} ${[[1, 2], [3]].flatten()} ${(1..3).collect { it }}"
def shared = []
def add = { x -> shared << x }
add(1); add.call(2)
echo shared.toString()
def counter = 0
3.times { counter += it }
echo "$counter ${[1, 2, 3].indexOf(2)} ${[1, 1, 2].unique()} ${['b', 'a'].sort { it }}"
echo "${[a: 1] + [b: 2]} ${[1, 2] + [3]} ${[1, 2, 3] - [2]}"
"#,
    );
    assert_eq!(
        lines,
        [
            "[6, 2, 4]",
            "[2, 3]",
            "3 true false 6 3",
            "0:3",
            "1:1",
            "2:2",
            "name=app",
            "tier=web",
            "name/app",
            "tier/web",
            "4 true [name, tier, extra, other] dflt",
            "[NAME:app, TIER:web, EXTRA:1, OTHER:2]",
            "6 [1, 2, 3] [1, 2, 3]",
            "[1, 2]",
            "3 1 [1, 2] [a, b]",
            "[a:1, b:2] [1, 2, 3] [1, 3]"
        ]
    );
}

#[test]
fn regular_expressions() {
    let lines = echoed(
        r#"
def m = 'v1.20.3' =~ /v(\d+)\.(\d+)/
if (m) { echo "major ${m[0][1]} minor ${m[0][2]}" }
echo "${'abc' ==~ /a.c/} ${'abcd' ==~ /a.c/} ${('a1b22' =~ /\d+/).count}"
echo "${'release/2.0'.matches('release/.*')}"
switch ('release/2.1') {
  case ~/main/: echo 'main'; break
  case ~/release\/.*/: echo 'a release'; break
}
"#,
    );
    assert_eq!(
        lines,
        ["major 1 minor 20", "true false 2", "true", "a release"]
    );
}

#[test]
fn build_state_env_params_and_current_build() {
    let host = TestHost::default();
    host.env
        .lock()
        .unwrap()
        .insert("BRANCH_NAME".into(), "main".into());
    let (result, lines) = run_with(
        host,
        r#"
echo "${env.BRANCH_NAME} $BRANCH_NAME ${env.NOPE}"
env.VERSION = "1.${currentBuild.number}"
echo env.VERSION
echo "${params.DEPLOY} ${params.TARGET} ${params.DEPLOY == true}"
echo "${currentBuild.result} ${currentBuild.currentResult} ${currentBuild.previousBuild?.result}"
currentBuild.result = 'UNSTABLE'
echo currentBuild.result
"#,
    );
    result.unwrap();
    assert_eq!(
        lines,
        [
            "main main null",
            "1.7",
            "true staging true",
            "null SUCCESS FAILURE",
            "UNSTABLE"
        ]
    );
}

#[test]
fn steps_return_values_and_their_failures_are_exceptions() {
    let mut host = TestHost::default();
    host.sh
        .insert("git rev-parse HEAD".into(), ("abc123\n".into(), 0));
    host.sh.insert("false".into(), (String::new(), 1));
    let (result, lines) = run_with(
        host,
        r#"
def sha = sh(script: 'git rev-parse HEAD', returnStdout: true).trim()
echo "sha $sha"
def status = sh(script: 'false', returnStatus: true)
echo "status $status"
try {
  sh 'false'
  echo 'not reached'
} catch (err) {
  echo "caught: ${err.message}"
} finally {
  echo 'finally'
}
try {
  error 'custom'
} catch (hudson.AbortException e) {
  echo "abort: ${e.getMessage()}"
}
try {
  throw new IllegalStateException('bad state')
} catch (IllegalArgumentException e) {
  echo 'wrong catch'
} catch (Exception e) {
  echo "generic: $e"
}
dir('sub') { echo 'inside' }
parallel first: { echo 'one' }, second: { echo 'two' }
return sha
"#,
    );
    assert_eq!(result.unwrap().show(), "abc123");
    assert_eq!(
        lines,
        [
            "sha abc123",
            "status 1",
            "caught: script returned exit code 1",
            "finally",
            "abort: custom",
            "generic: java.lang.IllegalStateException: bad state",
            "[sub] inside",
            "[first] one",
            "[second] two"
        ]
    );
}

#[test]
fn uncaught_failures_name_their_line_and_column() {
    let f = failure("def x = 1\necho x.nope()\n");
    assert_eq!(f.kind, FailKind::Error);
    assert_eq!(f.describe().split(": ").next(), Some("line 2:7"));
    assert!(f.message.contains("nope"), "{f:?}");
    let f = failure("def m = null\nm.size()\n");
    assert!(f.message.contains("null object"), "{f:?}");
    let f = failure("undefinedThing + 1\n");
    assert!(
        f.message.contains("No such property: undefinedThing"),
        "{f:?}"
    );
    let f = failure("def x = 1 / 0\n");
    assert!(f.message.contains("Division by zero"), "{f:?}");
}

#[test]
fn the_script_binding_outlives_a_block_but_def_does_not() {
    let mut diags = Vec::new();
    let first = parse::program("shared = 'kept'\ndef local = 'gone'\n", &mut diags).unwrap();
    let second = parse::program("echo shared\necho local\n", &mut diags).unwrap();
    let interp = Interp::new(TestHost::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(interp.run(&first, String::new())).unwrap();
    let f = rt.block_on(interp.run(&second, String::new())).unwrap_err();
    assert!(f.message.contains("No such property: local"), "{f:?}");
    assert_eq!(*interp.host.echoed.lock().unwrap(), ["kept"]);
}

#[test]
fn budgets_stop_endless_loops_memory_and_recursion() {
    let f = budget_failure("while (true) { }\n");
    assert_eq!(f.kind, FailKind::Budget);
    assert!(f.message.contains("200000 evaluation steps"), "{f:?}");

    let f = failure("def s = 'x'\nwhile (true) { s = s + s }\n");
    assert_eq!(f.kind, FailKind::Budget);
    assert!(f.message.contains("MB"), "{f:?}");

    let f = failure("def s = 'x' * 1000000000\n");
    assert_eq!(f.kind, FailKind::Budget);

    let f = failure("for (i in 0..2000000000) { }\n");
    assert_eq!(f.kind, FailKind::Budget);

    // A budget failure is not caught by the script.
    let f = budget_failure("try { while (true) { } } catch (Throwable t) { echo 'caught' }\n");
    assert_eq!(f.kind, FailKind::Budget);
}

/// Recursion to the depth limit, and recursion with a deeply nested value at the bottom,
/// fit in the stack Sluice gives its runtime's threads (a debug build uses the most).
#[test]
fn the_deepest_evaluation_fits_a_runtime_threads_stack() {
    let on_runtime_stack = |src: String| {
        std::thread::Builder::new()
            .stack_size(super::STACK_BYTES)
            .spawn(move || run_with(TestHost::default(), &src).0)
            .unwrap()
            .join()
            .expect("no stack overflow")
    };
    let endless = "def f\nf = { n -> f(n + 1) }\nf(0)\n".to_owned();
    let f = on_runtime_stack(endless).unwrap_err();
    assert_eq!(f.kind, FailKind::Budget);
    assert!(f.message.contains("levels deep"), "{f:?}");
    let nested = format!("{}1{}", "[".repeat(90), "]".repeat(90));
    let src = format!("def f\nf = {{ n -> n < 20 ? f(n + 1) : {nested} }}\nf(0).size()\n");
    assert_eq!(on_runtime_stack(src).unwrap().show(), "1");
}

#[test]
fn the_value_of_the_last_statement_is_the_result() {
    assert_eq!(value("def a = 2\na * 21\n"), "42");
    assert_eq!(value("return [1, 2].size() == 2\n"), "true");
    assert_eq!(value("if (true) { 'x' } else { 'y' }\n"), "x");
}

/// Parses, checks and runs `src` under small budgets, on a thread with the runtime's stack.
fn survive(src: String) -> bool {
    std::thread::Builder::new()
        .stack_size(super::STACK_BYTES)
        .spawn(move || {
            let mut diags = Vec::new();
            let Some(body) = parse::program(&src, &mut diags) else {
                return true;
            };
            let mut names = Default::default();
            super::check::Checker::new(&mut diags, &crate::pipeline::groovy_step, &mut names)
                .block(&body);
            let lines = src.split('\n').count() as u32;
            let inside = diags
                .iter()
                .all(|d| d.pos.line >= 1 && d.pos.line <= lines.max(1) && d.pos.col >= 1);
            let interp =
                Interp::new(super::quiet::QuietHost::default()).with_budget(5_000, 1 << 20);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _ = rt.block_on(interp.run(&body, ()));
            inside
        })
        .unwrap()
        .join()
        .unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Arbitrary text never panics the parser, the checks or the interpreter.
    #[test]
    fn arbitrary_text_never_panics(src in "(?s).{0,200}") {
        proptest::prop_assert!(survive(src));
    }

    /// Groovy-shaped noise reaches deeper: loops, closures, calls, operators.
    #[test]
    fn groovy_token_soup_never_panics(words in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::strategy::Just("def x = "), proptest::strategy::Just("x"), proptest::strategy::Just("while (true)"),
            proptest::strategy::Just("for (i in 0..9)"), proptest::strategy::Just("{"), proptest::strategy::Just("}"),
            proptest::strategy::Just("("), proptest::strategy::Just(")"), proptest::strategy::Just("["), proptest::strategy::Just("]"),
            proptest::strategy::Just(","), proptest::strategy::Just(":"), proptest::strategy::Just("\n"), proptest::strategy::Just("'s'"),
            proptest::strategy::Just("\"${x}\""), proptest::strategy::Just("42"), proptest::strategy::Just("+"), proptest::strategy::Just("*"),
            proptest::strategy::Just("=="), proptest::strategy::Just("?:"), proptest::strategy::Just("?."), proptest::strategy::Just(".each { it -> "),
            proptest::strategy::Just(".collect"), proptest::strategy::Just("x << x"), proptest::strategy::Just("echo"), proptest::strategy::Just("sh(script: 'a', returnStdout: true)"),
            proptest::strategy::Just("try {"), proptest::strategy::Just("} catch (e) {"), proptest::strategy::Just("switch (x) { case 1:"), proptest::strategy::Just("=~ /a(b)/"),
        ],
        0..60,
    )) {
        proptest::prop_assert!(survive(words.join(" ")));
    }
}

#[test]
fn a_call_without_parentheses_can_be_assigned() {
    let lines = echoed(
        "def a = sh script: 'x', returnStatus: true\nb = error2 = 1\ndef c = dir 'sub', { 'inner' }\necho \"$a $c\"\n",
    );
    assert_eq!(lines, ["0 inner"]);
}

#[test]
fn comparators_formats_and_static_methods() {
    let lines = echoed(
        r#"
def people = [[name: 'bo', age: 41], [name: 'al', age: 29], [name: 'cy', age: 35]]
echo people.sort { a, b -> a.age <=> b.age }*.name.join(',')
echo people.sort { it.name }.collect { it.name }.join(',')
def letters = ['b', 'c', 'a']
echo letters.sort { x, y -> y <=> x }.join('')
echo String.format('%s-%03d', 'build', 7)
echo String.format('%.2f%%', 12.345)
echo "${Integer.parseInt(' 42 ') + 1} ${Math.max(3, 9)} ${String.valueOf(5).size()}"
"#,
    );
    assert_eq!(
        lines,
        [
            "al,cy,bo",
            "al,bo,cy",
            "cba",
            "build-007",
            "12.35%",
            "43 9 1"
        ]
    );
}
