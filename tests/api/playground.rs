//! The playground in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/playground.mjs` (Playwright), against a `dev` server: the dev
//! sign-in, GraphiQL rendered from the server's own assets, an example query
//! run and its result read, the session ending and the query kept, and every
//! request of the page going to the server itself. Also the assets' headers.

use std::time::Duration;

use backplane::config::Mode;

use serde_json::Value;

use crate::helpers::{Backend, spawn_app, spawn_app_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_an_example_in_headless_chromium() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| {
        // Only `/auth/dev` signs in here: no identity provider.
        c.oidc = None;
    })
    .await;
    // Two roles at once: the dev sign-in ticks both, the header shows both,
    // and the support examples still run.
    browser_script(
        "playground",
        &["--base", &app.url(""), "--role", "support,ops"],
    )
    .await;
}

/// Runs `tests/browser/<name>.mjs` with `args` (and a screenshot in
/// `target/`), bounded in time; panics with what it printed unless it
/// succeeds.
async fn browser_script(name: &str, args: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(root)
            .join("tests/browser/node_modules")
            .exists(),
        "run `npm ci --prefix tests/browser` first (scripts/test does)"
    );
    let screenshot = format!("{root}/target/{name}.png");
    let run = tokio::process::Command::new("node")
        .arg(format!("{root}/tests/browser/{name}.mjs"))
        .args(args)
        .args(["--screenshot", &screenshot])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser test ends within 3 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_come_from_this_server() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |_| {}).await;
    let page = app
        .client
        .get(app.url("/playground"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    let mut assets = 0;
    for part in html
        .split("\"")
        .filter(|p| p.starts_with("/playground/assets/"))
    {
        assets += 1;
        let resp = app.client.get(app.url(part)).send().await.expect("asset");
        assert_eq!(resp.status(), 200, "{part}");
        let media = resp.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        let expected = if part.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(media.starts_with(expected), "{part}: {media}");
        let tag = resp.headers()["etag"].to_str().expect("etag").to_owned();
        let again = app
            .client
            .get(app.url(part))
            .header("if-none-match", &tag)
            .send()
            .await
            .expect("asset");
        assert_eq!(again.status(), 304, "{part}");
    }
    assert_eq!(assets, 6, "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let missing = app
        .client
        .get(app.url("/playground/assets/../Cargo.toml"))
        .send()
        .await
        .expect("asset");
    assert_eq!(missing.status(), 404);
}

/// The step-up in a real browser through the real OpenID provider: a
/// password-only sign-in is refused cost data, the playground offers to
/// verify, the provider is asked for a new sign-in (with the configured
/// `max_age`), and with a one-time code the query runs again by itself; left
/// open until the second factor's time is up, the header says by itself that
/// there is no second factor again (`tests/browser/step_up.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_steps_up_in_headless_chromium() {
    // Long enough for the sign-in and the query that runs again on a slow
    // machine, short enough to wait for.
    const MAX_AGE_SECS: u64 = 30;
    let provider = crate::sign_in::start_provider().await;
    let app = crate::sign_in::app_with_sign_in(Backend::Sqlite, &provider, |c| {
        c.step_up.max_age = std::time::Duration::from_secs(MAX_AGE_SECS);
    })
    .await;
    browser_script(
        "step_up",
        &[
            "--base",
            &app.url(""),
            "--issuer",
            &provider.issuer,
            "--max-age",
            &MAX_AGE_SECS.to_string(),
            "--until-weak",
        ],
    )
    .await;
}

/// The playground's examples (`playground/assets/examples.json`), as each
/// role: every role has at least two of its own that validate against its
/// schema and answer without an error, and the auditor's read the audit
/// log. (Mutation examples are not run here: they would change the seed;
/// the browser test runs the support agent's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_has_two_working_examples() {
    use backplane::policy::Role;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playground/assets/examples.json"
    );
    let examples: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("examples.json"))
            .expect("examples.json is a JSON object");
    let html = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playground/index.html"
    ))
    .expect("index.html");
    for name in examples.keys() {
        assert!(
            html.contains(&format!("data-example=\"{name}\"")),
            "the page has no button for the example {name}"
        );
    }
    let app = spawn_app(Backend::Sqlite).await;
    for role in Role::ALL {
        let token = app
            .issuer
            .token(&format!("examples-{}", role.as_str()), &[role.as_str()]);
        let mut working = Vec::new();
        for (name, example) in &examples {
            let query = example["query"].as_str().expect("a query");
            let is_mutation = query
                .lines()
                .any(|l| l.trim_start().starts_with("mutation"));
            if is_mutation {
                continue;
            }
            let (status, body) = app
                .graphql_as(Some(&token), query, example["variables"].clone())
                .await;
            if status == 200 && body.get("errors").is_none() && body["data"].is_object() {
                working.push(name.clone());
            }
        }
        assert!(
            working.len() >= 2,
            "{}: only {working:?} of the examples work",
            role.as_str()
        );
        if role == Role::Auditor {
            assert!(
                working.iter().any(|n| n.starts_with("audit")),
                "{working:?}"
            );
        }
    }
}
