//! JSON: the whole report model. Keys are only ever added, so scripts written against an
//! older report keep working.

use super::model::Report;

pub fn render(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("the report model is plain data");
    text.push('\n');
    text
}
