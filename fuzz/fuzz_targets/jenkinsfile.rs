//! The Jenkinsfile parser on arbitrary input: it must never panic, and every diagnostic must
//! point inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let result = sluice_core::pipeline::lint(source);
        let lines = source.split('\n').count() as u32;
        for d in &result.diagnostics {
            assert!(d.pos.line >= 1 && d.pos.line <= lines.max(1) && d.pos.col >= 1);
        }
    }
});
