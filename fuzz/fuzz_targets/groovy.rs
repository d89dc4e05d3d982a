//! The Groovy subset on arbitrary input: parsing, lint checks and evaluation must never
//! panic, every diagnostic must point inside the input, and an evaluation ends within its
//! budget (libFuzzer's `-timeout` catches one that would not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::groovy::check::Checker;
use sluice_core::groovy::quiet::QuietHost;
use sluice_core::groovy::{Interp, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let mut diags = Vec::new();
    let Some(body) = parse::program(source, &mut diags) else {
        return;
    };
    let mut names = Default::default();
    Checker::new(&mut diags, &sluice_core::pipeline::groovy_step, &mut names).block(&body);
    let lines = source.split('\n').count() as u32;
    for d in &diags {
        assert!(d.pos.line >= 1 && d.pos.line <= lines.max(1) && d.pos.col >= 1);
    }
    // Small budgets keep each execution short; the limits are the same code at any size.
    let interp = Interp::new(QuietHost::default()).with_budget(2_000, 4 << 20);
    RUNTIME.with(|runtime| {
        let _ = runtime.block_on(interp.run(&body, ()));
    });
});

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().build().unwrap();
}
