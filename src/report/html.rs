//! placeholder
use super::model::Report;

pub fn render(report: &Report) -> String {
    super::json::render(report)
}
