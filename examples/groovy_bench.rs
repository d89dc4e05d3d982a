//! The Jenkinsfile front end's cost: lint time per KB on a large real-shaped file, and the
//! Groovy interpreter's evaluation steps per second on loops, closures and string work.
//!
//!   cargo run --release --example groovy_bench -- [KB]
//!
//! Lint: `tests/jenkinsfiles/valid/groovy-scripts.groovy` with its stages repeated (renamed)
//! until the file is at least KB kilobytes (default 256), linted 20 times; it prints the
//! median time and the time per KB. Interpreter: three scripts run with the same step budget
//! until it is spent (so each runs exactly that many steps): a counting loop, closures over a
//! list, and string building; it prints steps per second for each, median of 5.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sluice_core::groovy::quiet::QuietHost;
use sluice_core::groovy::{Interp, parse};

const CORPUS: &str = include_str!("../tests/jenkinsfiles/valid/groovy-scripts.groovy");

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// The corpus file with its `stages { … }` body repeated until it reaches `kb` KB.
fn big_jenkinsfile(kb: usize) -> String {
    let start = CORPUS.find("    stages {\n").unwrap() + "    stages {\n".len();
    let end = CORPUS.rfind("    }\n}").unwrap();
    let stages = &CORPUS[start..end];
    let mut body = String::new();
    let mut n = 0;
    while body.len() < kb * 1024 {
        // Every stage of the copy renamed, as stage names must be unique.
        let copy = stages.replace("stage('", &format!("stage('{n} "));
        body.push_str(&copy);
        n += 1;
    }
    format!("{}{}{}", &CORPUS[..start], body, &CORPUS[end..])
}

fn main() {
    let kb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let source = big_jenkinsfile(kb);
    let size_kb = source.len() as f64 / 1024.0;
    let result = sluice_core::pipeline::lint(&source);
    assert!(
        result.is_valid(),
        "{:?}",
        &result.diagnostics[..3.min(result.diagnostics.len())]
    );
    let times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let lint = sluice_core::pipeline::lint(&source);
            assert!(lint.is_valid());
            t.elapsed().as_secs_f64()
        })
        .collect();
    let t = median(times);
    println!(
        "lint: {size_kb:.0} KB in {:.2} ms (median of 20): {:.1} µs per KB",
        t * 1e3,
        t * 1e6 / size_kb
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let budget = 2_000_000;
    for (name, src) in [
        ("counting loop", "def n = 0\nwhile (true) { n += 1 }\n"),
        (
            "closures over a list",
            "def xs = (1..100).collect { it }\nwhile (true) { xs.findAll { it % 2 == 0 }.collect { it * 3 }.sum() }\n",
        ),
        (
            "string work",
            "while (true) { def v = 'release-1.2.3'.tokenize('-')[1].split(/\\./).collect { it.toInteger() + 1 }.join('.'); def s = \"v${v}\".toUpperCase() }\n",
        ),
    ] {
        let mut diags = Vec::new();
        let body = parse::program(src, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let rates: Vec<f64> = (0..5)
            .map(|_| {
                let interp = Interp::new(QuietHost::default()).with_budget(budget, 1 << 40);
                let t = Instant::now();
                let outcome = runtime.block_on(interp.run(&body, ()));
                let elapsed = t.elapsed().as_secs_f64();
                let failure = outcome.unwrap_err();
                assert!(failure.message.contains("evaluation steps"), "{failure:?}");
                budget as f64 / elapsed
            })
            .collect();
        println!(
            "interpreter, {name}: {:.2} M evaluation steps per second (median of 5, {budget} steps each)",
            median(rates) / 1e6
        );
    }
}
