//! The live dashboard (admin `/`) and the HTML report in a real headless Chromium
//! (issue 18): the page loads with no console error, the route table shows what the store
//! holds, new traffic appears without a reload, and an example opens into its diff with
//! the changed line highlighted. With `SHADOWDIFF_SCREENSHOTS=DIR` (reports/generate.sh)
//! the tests also save screenshots there.

use crate::support::{self, browser, client};
use std::time::{Duration, Instant};

/// A secondary that renamed nothing but changed a user's name; `/health` is the same.
async fn upstreams() -> (support::Backend, support::Backend) {
    let answer = |name: &'static str| {
        move |request: support::Received| async move {
            let body = match request.uri.path() {
                "/health" => r#"{"ok": true}"#.to_string(),
                path => format!(
                    r#"{{"id": "{}", "name": "{name}", "plan": "pro", "tags": ["a", "b"]}}"#,
                    path.rsplit('/').next().unwrap_or_default()
                ),
            };
            let mut response = support::text(200, &body);
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            response
        }
    };
    (
        support::backend(answer("Ada Lovelace")).await,
        support::backend(answer("Ada King")).await,
    )
}

/// Polls the dashboard's data until the store holds `requests` requests.
async fn stored(admin: std::net::SocketAddr, requests: u64, token: Option<&str>) {
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = http.get(format!("http://{admin}/dashboard/data"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body = request.send().await.unwrap().text().await.unwrap();
        let data: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if data["summary"]["requests"].as_u64() == Some(requests) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the store never held {requests}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn save_screenshot(name: &str, png: &[u8]) {
    if let Some(dir) = std::env::var_os("SHADOWDIFF_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

/// The text of every cell of the route table's row for `route`.
async fn route_row(page: &browser::Browser, route: &str) -> Option<Vec<String>> {
    let script = format!(
        "var row = Array.prototype.find.call(document.querySelectorAll('#routes tbody tr'), function (tr) {{ return tr.dataset.route === {route:?}; }});
         return row ? Array.prototype.map.call(row.cells, function (c) {{ return c.textContent; }}) : null;"
    );
    let cells = page.script(&script).await;
    cells.as_array().map(|cells| {
        cells
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect()
    })
}

async fn wait_for_row(page: &browser::Browser, route: &str, requests: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(cells) = route_row(page, route).await {
            if cells.get(1).map(String::as_str) == Some(requests) {
                return cells;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no row {route} with {requests} requests: {:?}",
            route_row(page, route).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_store_live_and_opens_an_example_into_its_diff() {
    let Some(page) = browser::start().await else {
        return;
    };
    let (primary, secondary) = upstreams().await;
    let (config, dir) = support::config(&primary.url(), &secondary.url());
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    let http = client();
    for path in ["/users/1", "/users/2", "/users/3", "/health", "/health"] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    stored(admin, 5, None).await;

    page.goto(&format!("http://{admin}/")).await;
    let users = wait_for_row(&page, "GET /users/{id}", "3").await;
    // requests, matched, mismatched, errors, skipped, rate
    assert_eq!(
        &users[1..7],
        ["3", "0", "3", "0", "0", "100.00%"],
        "{users:?}"
    );
    let health = wait_for_row(&page, "GET /health", "2").await;
    assert_eq!(&health[1..4], ["2", "2", "0"], "{health:?}");
    let summary = page
        .script("return document.querySelector('#summary [data-name=mismatched] b').textContent;")
        .await;
    assert_eq!(summary, "3");

    // New traffic shows up without a reload: the mark set on this page survives.
    page.script("window.stillThisPage = true; return null;")
        .await;
    for path in ["/users/4", "/users/5"] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    stored(admin, 7, None).await;
    wait_for_row(&page, "GET /users/{id}", "5").await;
    assert_eq!(
        page.script("return window.stillThisPage === true;").await,
        true
    );

    // The latest example opens into the side-by-side diff with the changed line marked.
    let examples = page
        .wait_until("examples", "#examples tbody tr.example", |found| {
            !found.is_empty()
        })
        .await;
    page.click(&examples[0]).await;
    let changed = page
        .wait_until("the diff", "#detail.open table.diff tr.changed", |found| {
            !found.is_empty()
        })
        .await;
    let line = page.text(&changed[0]).await;
    assert!(
        line.contains("\"name\": \"Ada Lovelace\"") && line.contains("\"name\": \"Ada King\""),
        "{line}"
    );
    let marked = page
        .script("return document.querySelectorAll('#detail table.diff tr.changed .mark').length;")
        .await;
    assert!(marked.as_u64().unwrap_or(0) >= 1, "{marked}");
    let title = page.find_all("#detail-title").await;
    assert!(page.text(&title[0]).await.contains("GET /users/{id}"));

    assert_eq!(page.console_errors().await, Vec::<String>::new());
    assert_eq!(
        page.script("return window.shadowdiffErrors;").await,
        serde_json::json!([])
    );
    save_screenshot("dashboard.png", &page.screenshot().await);
    page.quit().await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_dashboard_takes_it_once_and_then_a_strict_session_cookie() {
    let (primary, secondary) = upstreams().await;
    let (mut config, dir) = support::config(&primary.url(), &secondary.url());
    let token = "dashboard-token-0123456789";
    config.admin.token = Some(token.parse().unwrap());
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    client().get(proxy.url("/users/1")).send().await.unwrap();
    stored(admin, 1, Some(token)).await;

    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/dashboard/data", "/dashboard/mismatch/1"] {
        let refused = no_redirects
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{path}");
        let wrong = no_redirects
            .get(format!("http://{admin}{path}"))
            .bearer_auth("not-the-token-at-all-0000")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let first = no_redirects
        .get(format!("http://{admin}/?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], "/");
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = no_redirects
        .get(format!("http://{admin}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("shadowdiff · live"));
    let data = no_redirects
        .get(format!("http://{admin}/dashboard/data"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(data.status(), 200);
    let metrics = support::metrics(admin).await;
    assert_eq!(
        support::value(&metrics, "shadowdiff_admin_unauthorized_total"),
        Some(6.0)
    );

    // And in a real browser: one load with the token, then the cookie carries it.
    if let Some(browser) = browser::start().await {
        browser
            .goto(&format!("http://{admin}/?token={token}"))
            .await;
        wait_for_row(&browser, "GET /users/{id}", "1").await;
        let url = browser.script("return location.href;").await;
        assert_eq!(
            url,
            format!("http://{admin}/"),
            "the token left the address bar"
        );
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.quit().await;
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_sorts_folds_and_shows_the_diff_in_a_browser() {
    let Some(page) = browser::start().await else {
        return;
    };
    let (primary, secondary) = upstreams().await;
    let (config, dir) = support::config(&primary.url(), &secondary.url());
    let proxy = support::start(config, dir).await;
    let http = client();
    for path in [
        "/users/1",
        "/users/2",
        "/orders/9/items/1",
        "/health",
        "/health",
        "/health",
    ] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    let db = proxy.stop().await;
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("report.html");
    let status = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args([
            "report",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "html",
            "--output",
        ])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    page.goto(&format!("file://{}", html.display())).await;
    let first_route = || async {
        page.script("return document.querySelector('#routes tbody tr td').textContent;")
            .await
    };
    let header = page
        .wait_until("the route table", "#routes thead th", |f| f.len() >= 4)
        .await;
    // Sorted by requests, then the other way: the busiest and the quietest route first.
    page.click(&header[1]).await;
    let one = first_route().await;
    page.click(&header[1]).await;
    let other = first_route().await;
    assert_ne!(one, other, "clicking a header sorts the table");
    let both: Vec<&str> = [one.as_str().unwrap(), other.as_str().unwrap()].to_vec();
    assert!(both.contains(&"GET /health"), "{both:?}");
    // A route folds and opens.
    let summaries = page.find_all("details.route > summary").await;
    assert!(summaries.len() >= 2);
    let open_before = page
        .script("return document.querySelectorAll('details.route[open]').length;")
        .await;
    page.click(&summaries[0]).await;
    let open_after = page
        .script("return document.querySelectorAll('details.route[open]').length;")
        .await;
    assert_ne!(open_before, open_after, "a route's section folds");
    page.click(&summaries[0]).await;
    let changed = page
        .script("return Array.prototype.map.call(document.querySelectorAll('table.diff tr.changed'), function (tr) { return tr.textContent; });")
        .await;
    let changed = changed.as_array().cloned().unwrap_or_default();
    assert!(
        changed
            .iter()
            .any(|line| line.as_str().unwrap_or_default().contains("Ada King")),
        "{changed:?}"
    );
    assert_eq!(page.console_errors().await, Vec::<String>::new());
    save_screenshot("report.png", &page.screenshot().await);
    page.quit().await;
}
