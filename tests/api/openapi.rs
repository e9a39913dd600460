//! The OpenAPI document and the route table agree: every route the server serves is
//! documented, every documented route is served, and the interactive page works offline.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use token_server::routes::SERVED;

/// `{file:.*}` (actix) is `{file}` in OpenAPI.
fn openapi_path(pattern: &str) -> String {
    let mut out = String::new();
    let mut in_regex = false;
    for c in pattern.chars() {
        match c {
            ':' if out.rfind('{') > out.rfind('}') => in_regex = true,
            '}' => {
                in_regex = false;
                out.push(c);
            }
            _ if in_regex => {}
            _ => out.push(c),
        }
    }
    out
}

fn served() -> BTreeSet<(String, String)> {
    SERVED
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .map(move |m| (openapi_path(path), m.to_ascii_lowercase()))
        })
        .collect()
}

async fn document(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (path.clone(), m.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let served = served();
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in /openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in /openapi.json but not served: {unserved:?}"
    );
    assert!(
        served.len() >= 14,
        "the route table lost routes: {served:?}"
    );
}

/// A path with its parameters filled in with harmless values.
fn concrete(pattern: &str) -> String {
    openapi_path(pattern)
        .replace("{id}", "3fa85f64-5717-4562-b3fc-2c963f66afa6")
        .replace("{file}", "index.html")
}

#[tokio::test]
async fn every_served_route_answers_and_other_methods_get_405_with_allow() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let all = ["GET", "POST", "PUT", "DELETE", "PATCH", "TRACE"];
    for (pattern, methods) in SERVED {
        let url = app.url(&concrete(pattern));
        for method in *methods {
            let res = app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {pattern}");
            assert!(
                !body.contains("no such endpoint"),
                "{method} {pattern}: {status} {body}"
            );
        }
        let other = all.iter().find(|m| !methods.contains(m)).unwrap();
        let res = app
            .client
            .request(Method::from_bytes(other.as_bytes()).unwrap(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["allow"], methods.join(", "), "{pattern}");
        let body = assert_oauth_error(res, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
        assert_eq!(
            body["error_description"],
            "this method is not allowed on this endpoint"
        );
    }
    let res = app
        .client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_document_names_how_each_endpoint_authenticates_and_what_it_reads() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["clientBasic"]["scheme"], "basic");
    assert_eq!(schemes["bearerToken"]["scheme"], "bearer");
    assert_eq!(schemes["accessTokenQuery"]["in"], "query");
    assert_eq!(schemes["accessTokenQuery"]["name"], "access_token");
    assert_eq!(schemes["authTokenHeader"]["in"], "header");
    assert_eq!(schemes["authTokenHeader"]["name"], "auth-token");

    let security = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no security"))
            .iter()
            .flat_map(|req| req.as_object().unwrap().keys().cloned())
            .collect()
    };
    for path in ["/user/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        assert_eq!(security(path, "post"), ["clientBasic"], "{path}");
        let body = &doc["paths"][path]["post"]["requestBody"]["content"];
        assert!(
            body["application/x-www-form-urlencoded"].is_object(),
            "{path} reads a form: {body}"
        );
    }
    for (path, method) in [
        ("/user/_details", "get"),
        ("/user/_details", "post"),
        ("/user/sessions", "get"),
        ("/user/sessions/{id}", "delete"),
        ("/user/_logout_all", "post"),
        ("/user/_logout", "post"),
    ] {
        assert_eq!(
            security(path, method),
            ["bearerToken", "accessTokenQuery", "authTokenHeader"],
            "{method} {path}"
        );
    }
    assert_eq!(
        doc["paths"]["/user/_details"]["get"]["responses"]["401"]["$ref"],
        "#/components/responses/InvalidAccessToken"
    );
    assert_eq!(
        doc["components"]["responses"]["InvalidAccessToken"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/InvalidTokenBody"
    );
    let errors = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "invalid_request",
        "invalid_grant",
        "invalid_client",
        "temporarily_unavailable",
    ] {
        assert!(
            errors.contains(&code.into()),
            "{code} missing from {errors:?}"
        );
    }
}

#[tokio::test]
async fn the_interactive_page_is_served_from_the_binary() {
    let app = TestApp::spawn(&StoreKind::Embedded).await;
    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/docs/");

    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/html");
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js"), "{page}");
    // Offline: the page loads nothing from elsewhere.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    let res = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    let init = res.text().await.unwrap();
    assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");

    let res = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap().len() > 100_000);

    let res = app
        .client
        .get(app.url("/docs/no-such-asset.js"))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
}
