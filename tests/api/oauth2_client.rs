//! A real OAuth client library (the `oauth2` crate) drives the password, refresh and revoke
//! flows. The library insists on an https revocation URL, so its requests name https and a
//! transport below it delivers them to the loopback server over plain HTTP, as a
//! TLS-terminating proxy would.

use crate::support::*;
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername,
    RevocationUrl, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
#[error("transport: {0}")]
struct TransportError(String);

fn transport(
    client: reqwest::Client,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send>,
> {
    move |request: oauth2::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let url = request.uri().to_string().replacen("https://", "http://", 1);
            let mut builder = client
                .request(request.method().clone(), url)
                .body(request.body().clone());
            for (name, value) in request.headers() {
                builder = builder.header(name, value);
            }
            let res = builder
                .send()
                .await
                .map_err(|e| TransportError(e.to_string()))?;
            let mut out = oauth2::http::Response::builder().status(res.status());
            for (name, value) in res.headers() {
                out = out.header(name, value);
            }
            let body = res
                .bytes()
                .await
                .map_err(|e| TransportError(e.to_string()))?;
            out.body(body.to_vec())
                .map_err(|e| TransportError(e.to_string()))
        })
    }
}

#[tokio::test]
async fn the_oauth2_crate_logs_in_refreshes_and_revokes() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let https = app.address.replacen("http://", "https://", 1);
    let client = BasicClient::new(ClientId::new("gateway".into()))
        .set_client_secret(ClientSecret::new(GATEWAY_SECRET.into()))
        .set_token_uri(TokenUrl::new(format!("{https}/user/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{https}/oauth/revoke")).unwrap());
    let http = transport(app.client.clone());

    let login = client
        .exchange_password(
            &ResourceOwnerUsername::new(CITIZEN.name.into()),
            &ResourceOwnerPassword::new(CITIZEN.password.into()),
        )
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let access = login.access_token().secret().clone();
    assert_eq!(app.details_status(&access).await, StatusCode::OK);
    assert!(login.expires_in().unwrap().as_secs() > 3500);

    let refreshed = client
        .exchange_refresh_token(login.refresh_token().unwrap())
        .request_async(&http)
        .await
        .unwrap();
    let new_access = refreshed.access_token().secret().clone();
    assert_ne!(new_access, access);
    assert_eq!(app.details_status(&access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.details_status(&new_access).await, StatusCode::OK);

    let wrong = client
        .exchange_password(
            &ResourceOwnerUsername::new(CITIZEN.name.into()),
            &ResourceOwnerPassword::new("not-the-password".into()),
        )
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{wrong:?}").contains("invalid_grant"), "{wrong:?}");

    client
        .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
            refreshed.refresh_token().unwrap().secret().clone(),
        )))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        app.details_status(&new_access).await,
        StatusCode::UNAUTHORIZED
    );
}
