//! Runs the demo backends until Ctrl-C, for load tests: `cargo run --release --example
//! demo_backends [DELAY]`. Prints the two base URLs, one per line (primary first).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let delay = match std::env::args().nth(1) {
        Some(text) => shadowdiff::config::parse_duration(&text)?,
        None => std::time::Duration::ZERO,
    };
    let backends =
        shadowdiff::demo::Backends::start_with(shadowdiff::demo::BackendOptions { delay }).await?;
    println!("{}", backends.primary_url());
    println!("{}", backends.secondary_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
