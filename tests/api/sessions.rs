//! A user's own sessions: listing, ending one, ending all. Both stores.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

both_stores!(
    the_caller_sees_its_own_sessions_with_its_own_marked,
    one_user_cannot_see_or_end_another_users_sessions,
    logout_all_ends_every_session_of_the_user_only,
);

async fn login_as(app: &TestApp, seed: &Seed, agent: &str) -> Tokens {
    let res = app
        .client
        .post(app.url("/user/oauth/token"))
        .header("Authorization", BASIC_DIGIT)
        .header("User-Agent", agent)
        .form(&[
            ("grant_type", "password"),
            ("username", seed.name),
            ("password", seed.password),
            ("tenantId", seed.tenant),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    Tokens::from(res.json::<Value>().await.unwrap())
}

async fn list(app: &TestApp, access: &str) -> reqwest::Response {
    app.client
        .get(app.url("/user/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn end(app: &TestApp, access: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/user/sessions/{id}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn the_caller_sees_its_own_sessions_with_its_own_marked(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let phone = login_as(&app, &EMPLOYEE, "phone-app/1.0").await;
    let laptop = login_as(&app, &EMPLOYEE, "laptop-browser/2.0").await;
    login_as(&app, &CITIZEN, "someone-else/1.0").await;
    app.refresh_ok(&laptop.refresh).await;

    let res = list(&app, &phone.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    let mine: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["userAgent"], "phone-app/1.0");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["userAgent"], "laptop-browser/2.0");
    assert!(other["lastRefreshed"].as_u64().unwrap() >= other["created"].as_u64().unwrap());
    // The session ends a refresh validity after its last refresh (120 minutes here).
    let left = other["expires"].as_u64().unwrap() - other["lastRefreshed"].as_u64().unwrap();
    assert!(
        (119 * 60_000..=120 * 60_000 + 2_000).contains(&left),
        "{other}"
    );
    for s in sessions {
        assert_eq!(s["clientId"], "egov-user-client");
        assert_eq!(s["ip"], "127.0.0.1");
        assert_eq!(s["id"].as_str().unwrap().len(), 36);
    }
    assert_eq!(
        list(&app, "not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn one_user_cannot_see_or_end_another_users_sessions(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let employee = login_as(&app, &EMPLOYEE, "a").await;
    let spare = login_as(&app, &EMPLOYEE, "b").await;
    let citizen = login_as(&app, &CITIZEN, "c").await;
    let ids = |body: Value| -> Vec<(String, bool)> {
        body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s["current"] == true))
            .collect()
    };
    let employee_ids = ids(list(&app, &employee.access).await.json().await.unwrap());
    let citizen_ids = ids(list(&app, &citizen.access).await.json().await.unwrap());
    assert_eq!(citizen_ids.len(), 1);
    assert!(employee_ids.iter().all(|(id, _)| *id != citizen_ids[0].0));

    let (spare_id, _) = employee_ids.iter().find(|(_, current)| !current).unwrap();
    let res = end(&app, &citizen.access, spare_id).await;
    assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.details_status(&spare.access).await, StatusCode::OK);
    let res = end(&app, &citizen.access, "not-a-uuid").await;
    assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(
        end(&app, &employee.access, spare_id).await.status(),
        StatusCode::NO_CONTENT
    );
    app.assert_session_ended(&spare).await;
    assert_eq!(
        end(&app, &employee.access, spare_id).await.status(),
        StatusCode::NOT_FOUND,
        "already ended"
    );
    assert_eq!(app.details_status(&employee.access).await, StatusCode::OK);
}

async fn logout_all_ends_every_session_of_the_user_only(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let one = app.login_ok(&EMPLOYEE).await;
    let two = app.login_ok(&EMPLOYEE).await;
    let citizen = app.login_ok(&CITIZEN).await;
    let res = app
        .client
        .post(app.url("/user/_logout_all"))
        .bearer_auth(&one.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "Logout successfully");
    assert_eq!(body["sessionsEnded"], 2);
    for t in [&one, &two] {
        app.assert_session_ended(t).await;
    }
    assert_eq!(app.details_status(&citizen.access).await, StatusCode::OK);
    let res = app
        .client
        .post(app.url("/user/_logout_all"))
        .bearer_auth(&one.access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "its token ended with the rest"
    );
}
