//! JUnit XML: one testsuite, one testcase per route, so CI systems show routes as tests. A
//! route fails when it breaks a gate threshold; without thresholds every route passes and
//! the counts are still there to read.

use super::gate::Thresholds;
use super::model::Report;
use super::text::percent;
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;

pub fn render(report: &Report, thresholds: Option<&Thresholds>) -> String {
    let failures = report
        .gate
        .as_ref()
        .map(|g| g.failures.as_slice())
        .unwrap_or_default();
    let mut suite = TestSuite::new("shadowdiff");
    if let Some(min) = thresholds.and_then(|t| t.min_compared) {
        let mut status = TestCaseStatus::success();
        if let Some(failure) = failures.iter().find(|f| f.route.is_none()) {
            status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(failure.message.clone());
            status.set_type(failure.threshold.clone());
        }
        let mut case = TestCase::new(format!("at least {min} comparisons"), status);
        case.set_classname("shadowdiff");
        suite.add_test_case(case);
    }
    for route in &report.routes {
        let broken: Vec<_> = failures
            .iter()
            .filter(|f| f.route.as_deref() == Some(route.route.as_str()))
            .collect();
        let mut status = TestCaseStatus::success();
        if !broken.is_empty() {
            status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let mut message: Vec<String> = broken.iter().map(|f| f.message.clone()).collect();
            let top: Vec<String> = route
                .top_differences
                .iter()
                .take(3)
                .map(|p| format!("{} ({})", p.path, percent(p.share)))
                .collect();
            if !top.is_empty() {
                message.push(format!("top differences: {}", top.join(", ")));
            }
            status.set_message(message.join("; "));
            status.set_type(broken[0].threshold.clone());
            let mut description = String::new();
            for path in &route.top_differences {
                let _ = writeln!(
                    description,
                    "{} {} ({})",
                    path.path,
                    path.count,
                    percent(path.share)
                );
            }
            for example in &route.examples {
                let _ = writeln!(
                    description,
                    "example: shadowdiff show {} {} {}  ({} {})",
                    example.id,
                    super::model::store_flag(&example.database),
                    example.database,
                    example.method,
                    example.uri
                );
                for d in &example.differences {
                    let _ = writeln!(description, "  {} ({})", d.place(), d.kind);
                }
            }
            status.set_description(description);
        }
        let mut case = TestCase::new(route.route.clone(), status);
        case.set_classname("shadowdiff.routes");
        let c = &route.counts;
        case.set_system_out(format!(
            "requests={} matched={} mismatched={} errors={} skipped={} mismatch_rate={}",
            c.requests, c.matched, c.mismatched, c.errors, c.skipped, c.mismatch_rate
        ));
        suite.add_test_case(case);
    }
    let mut junit = JunitReport::new("shadowdiff");
    junit.add_test_suite(suite);
    junit
        .to_string()
        .expect("serializing an in-memory JUnit report cannot fail")
}
