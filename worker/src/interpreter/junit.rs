//! JUnit XML (`<testsuites>`/`<testsuite>`/`<testcase>` with `<failure>`, `<error>` or
//! `<skipped>`) into a run's test summary.

use quick_xml::events::{BytesStart, Event};
use sluice_core::store::artifacts::{FailedTest, TestSummary};

fn attr(e: &BytesStart, name: &[u8]) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
        .unwrap_or_default()
}

type OpenCase = (String, String, Option<(bool, String)>);

/// Parses one report; an error names what is wrong with the file.
pub fn parse(xml: &str) -> Result<TestSummary, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut summary = TestSummary::default();
    let mut suite = String::new();
    // The open test case: name, class and outcome so far ((skipped, message)).
    let mut case: Option<OpenCase> = None;
    let mut seen_case = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not JUnit XML (at byte {}): {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testsuite" => {
                suite = attr(&e, b"name");
            }
            Event::Start(e) if e.name().as_ref() == b"testcase" => {
                seen_case = true;
                case = Some((attr(&e, b"name"), attr(&e, b"classname"), None));
            }
            Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                seen_case = true;
                summary.passed += 1;
            }
            Event::Start(e) | Event::Empty(e)
                if matches!(e.name().as_ref(), b"failure" | b"error" | b"skipped") =>
            {
                if let Some((_, _, outcome)) = case.as_mut() {
                    let skipped = e.name().as_ref() == b"skipped";
                    if outcome.is_none() || !skipped {
                        *outcome = Some((skipped, attr(&e, b"message")));
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some((name, class, outcome)) = case.take() {
                    match outcome {
                        None => summary.passed += 1,
                        Some((true, _)) => summary.skipped += 1,
                        Some((false, message)) => {
                            summary.failed += 1;
                            if summary.failures.len() < 200 {
                                let full = if class.is_empty() {
                                    name
                                } else {
                                    format!("{class}.{name}")
                                };
                                summary.failures.push(FailedTest {
                                    suite: suite.clone(),
                                    name: full,
                                    message: message.chars().take(500).collect(),
                                });
                            }
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_case && !xml.contains("<testsuite") {
        return Err("not JUnit XML: no <testsuite> or <testcase>".into());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_passed_failed_and_skipped() {
        let xml = r#"<?xml version="1.0"?>
<testsuites>
  <testsuite name="math" tests="4">
    <testcase classname="calc" name="adds"/>
    <testcase classname="calc" name="divides"><failure message="expected 2, got 3">trace</failure></testcase>
    <testcase classname="calc" name="errs"><error message="boom"/></testcase>
    <testcase classname="calc" name="later"><skipped/></testcase>
  </testsuite>
</testsuites>"#;
        let s = parse(xml).unwrap();
        assert_eq!((s.passed, s.failed, s.skipped), (1, 2, 1));
        assert_eq!(s.failures[0].name, "calc.divides");
        assert_eq!(s.failures[0].message, "expected 2, got 3");
        assert_eq!(s.failures[0].suite, "math");
    }

    #[test]
    fn refuses_what_is_not_junit() {
        assert!(parse("<html><body/></html>").is_err());
        assert!(parse("not xml at all <<<").is_err());
    }
}
