//! placeholder
use super::gate::Thresholds;
use super::model::Report;

pub fn render(report: &Report, _thresholds: Option<&Thresholds>) -> String {
    super::json::render(report)
}
