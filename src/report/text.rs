//! placeholder
use super::model::Report;

pub fn render(report: &Report, _colour: bool) -> String {
    super::json::render(report)
}
pub fn render_gate(report: &Report) -> String {
    super::json::render(report)
}
