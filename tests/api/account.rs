//! The account page at `/account/`: served from the binary under a strict Content-Security-Policy,
//! turned off by its setting, and used in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven by the Selenium scenarios of `account_page.py`) on both stores.

use crate::support::*;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/account_page.py");

/// The page's files as the page itself names them.
const FILES: [(&str, &str); 6] = [
    ("/account/", "text/html; charset=utf-8"),
    ("/account/account.js", "text/javascript; charset=utf-8"),
    ("/account/account.css", "text/css; charset=utf-8"),
    ("/account/icon.svg", "image/svg+xml"),
    ("/account/desktop.svg", "image/svg+xml"),
    ("/account/phone.svg", "image/svg+xml"),
];

/// One browser at a time: the scenarios wait on timers, and two Chromiums on a small
/// machine make each other late.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Python with Selenium, in a venv under `target/`, made on first use.
fn selenium_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/account-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            made,
            "cannot make a Python venv: install python3 and python3-venv (Debian: apt-get install -y python3-venv)"
        );
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "selenium==4.50.0",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "pip could not install selenium into {venv:?}");
    }
    python
}

/// Where a scenario saves its screenshots: `docs/` when `UPDATE_SCREENSHOTS` is set (for the
/// README), else a folder under `target/`.
fn screenshot_dir(store: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() && store == "embedded" {
        root.join("docs")
    } else {
        root.join("target/account-screenshots").join(store)
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `scenario` of `account_page.py` against `app` as the seeded employee; panics with what
/// the script printed unless every check held.
async fn drive(app: &TestApp, scenario: &'static str, shots: PathBuf) {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the account page tests drive Debian's Chromium; install it with \
             apt-get install -y chromium chromium-driver ({package} provides {path})"
        );
    }
    let _one_browser = BROWSER.lock().await;
    let base = app.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(selenium_python())
            .arg(SCRIPT)
            .args([
                scenario,
                &base,
                EMPLOYEE.name,
                EMPLOYEE.password,
                EMPLOYEE.tenant,
            ])
            .arg(shots)
            // Selenium is given its driver and browser: it must fetch nothing.
            .env("SE_OFFLINE", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some("ok"),
        "scenario {scenario} failed:\n{stderr}\n{stdout}"
    );
}

#[tokio::test]
async fn the_page_and_its_files_come_from_the_binary_under_a_strict_policy() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/account/");

    let mut page = String::new();
    for (path, media_type) in FILES {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], media_type, "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing: {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let body = res.text().await.unwrap();
        // Nothing from elsewhere: no CDN, no font service.
        for remote in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "from 'http",
            "//cdn",
        ] {
            assert!(!body.contains(remote), "{path} loads {remote}…");
        }
        if path == "/account/" {
            page = body;
        }
    }
    // No inline script or style: every script has a src, no style element or attribute, no
    // event handler attribute.
    assert!(page.contains("<script type=\"module\" src=\"account.js\"></script>"));
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    for inline in [
        "<style",
        " style=",
        " onclick=",
        " onsubmit=",
        "javascript:",
    ] {
        assert!(!page.contains(inline), "the page has {inline}");
    }
    let res = app
        .client
        .get(app.url("/account/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_page_keeps_tokens_out_of_storage_and_cookies() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let script = app
        .client
        .get(app.url("/account/account.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for place in [
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "indexedDB",
    ] {
        assert!(!script.contains(place), "the page's script uses {place}");
    }
    assert!(
        script.contains("credentials: 'omit'"),
        "no cookie goes along"
    );
}

#[tokio::test]
async fn the_setting_turns_the_page_off_in_either_form() {
    for name in ["ACCOUNT_PAGE_ENABLED", "account.page.enabled"] {
        let app =
            TestApp::spawn_with(&StoreKind::Embedded, Options::default().with(name, "false")).await;
        for path in ["/account", "/account/", "/account/account.js"] {
            let res = app.client.get(app.url(path)).send().await.unwrap();
            let body = assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
            assert_eq!(
                body["error_description"],
                "the account page is turned off (ACCOUNT_PAGE_ENABLED=false)",
                "{name} {path}"
            );
        }
        // The API the page uses is untouched.
        let t = app.login_ok(&EMPLOYEE).await;
        assert_eq!(app.details_status(&t.access).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn in_a_browser_the_page_lists_and_ends_sessions_on_the_embedded_store() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    drive(&app, "sessions", screenshot_dir("embedded")).await;
}

#[tokio::test]
async fn in_a_browser_the_page_lists_and_ends_sessions_on_redis() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    drive(&app, "sessions", screenshot_dir("redis")).await;
}

#[tokio::test]
async fn in_a_browser_the_page_refreshes_its_token_before_it_expires_and_forgets_it_on_reload() {
    let app = TestApp::spawn_with(&StoreKind::Redis, Options::lifetimes(0.05, 5.0)).await;
    drive(&app, "refresh", screenshot_dir("redis")).await;
}

#[tokio::test]
async fn in_a_browser_each_refused_login_says_why_in_an_alert() {
    let options = Options::default()
        .with("MAX_INVALID_LOGIN_ATTEMPTS", 2)
        .with("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", 5);
    let mut app = TestApp::spawn_with(&StoreKind::Redis, options).await;
    drive(&app, "errors", screenshot_dir("redis")).await;
    std::sync::Arc::get_mut(app.redis.as_mut().unwrap())
        .unwrap()
        .stop();
    drive(&app, "outage", screenshot_dir("redis")).await;
}
