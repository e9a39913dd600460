//! Ceilings (a) and (c): the least a validation and a refresh on this stack can cost.
//! `GET /get?k=KEY` is a bare actix-web handler that does one Redis GET per request, over the
//! connection the first argument chooses: a multiplexed connection per worker (`per-worker`,
//! as token-server does), one multiplexed connection shared by the workers (`shared`), or a
//! deadpool-redis pool with one checkout per request (`deadpool`). `POST /floor` with the form
//! body `k=N` runs `bench/lua/refresh-floor.lua`, the five commands every refresh must make, on
//! the `N`th of the harness's sessions (multiplexed connections only).

use actix_web::{App, HttpResponse, HttpServer, web};
use redis::Value;
use redis::aio::ConnectionManager;

const FLOOR: &str = include_str!("../../lua/refresh-floor.lua");

enum Redis {
    Multiplexed(ConnectionManager),
    Pooled(deadpool_redis::Pool),
}

async fn get(redis: web::Data<Redis>, query: web::Query<Vec<(String, String)>>) -> HttpResponse {
    let key = query.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let value: redis::RedisResult<Option<String>> = match redis.get_ref() {
        Redis::Multiplexed(conn) => {
            redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn.clone())
                .await
        }
        Redis::Pooled(pool) => match pool.get().await {
            Ok(mut conn) => redis::cmd("GET").arg(&key).query_async(&mut conn).await,
            Err(e) => return HttpResponse::ServiceUnavailable().body(e.to_string()),
        },
    };
    match value {
        Ok(Some(v)) => HttpResponse::Ok().content_type("application/json").body(v),
        Ok(None) => HttpResponse::Unauthorized().finish(),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

/// The floor script's arguments, shaped as token-server's refresh passes them (two digests,
/// the access and refresh validities, the session id, the ancestors, the client, the rotation
/// flag and the reuse grace).
const FLOOR_ARGS: [&str; 10] = [
    "034d5dd6c7d204ad420cf372a0061179cfbf7b18a3c31f8be9284af2727885a4",
    "b34d5dd6c7d204ad420cf372a0061179cfbf7b18a3c31f8be9284af2727885a4",
    "3600000",
    "034d5dd6c7d204ad420cf372a0061179cfbf7b18a3c31f8be9284af2727885a4",
    "1209600000",
    "sid",
    "",
    "egov-user-client",
    "1",
    "5000",
];

async fn floor(redis: web::Data<Redis>, sha: web::Data<String>, body: web::Bytes) -> HttpResponse {
    let Redis::Multiplexed(conn) = redis.get_ref() else {
        return HttpResponse::NotImplemented().finish();
    };
    let n = body
        .strip_prefix(b"k=")
        .and_then(|n| std::str::from_utf8(n).ok())
        .unwrap_or("0");
    // The user key is the one ceiling (a) reads: the harness writes the demo user there.
    let reply: redis::RedisResult<Vec<Value>> = redis::cmd("EVALSHA")
        .arg(sha.as_str())
        .arg(4)
        .arg(format!("bench:floor:{n}:s"))
        .arg(format!("bench:floor:{n}:a"))
        .arg(format!("bench:floor:{n}:i"))
        .arg(format!("bench:ceiling:{n}"))
        .arg(&FLOOR_ARGS[..])
        .query_async(&mut conn.clone())
        .await;
    match reply.as_deref() {
        Ok([_, Value::BulkString(user), ..]) => HttpResponse::Ok()
            .content_type("application/json")
            .body(user.clone()),
        Ok(_) => HttpResponse::Unauthorized().finish(),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "per-worker".into());
    let redis_url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let client = redis::Client::open(redis_url.as_str()).map_err(std::io::Error::other)?;
    let redis = web::Data::new(match kind.as_str() {
        "deadpool" => Redis::Pooled(
            deadpool_redis::Config::from_url(redis_url)
                .create_pool(Some(deadpool_redis::Runtime::Tokio1))
                .map_err(std::io::Error::other)?,
        ),
        // For `per-worker` this connection only proves Redis answers before the workers start.
        "shared" | "per-worker" => Redis::Multiplexed(
            ConnectionManager::new(client.clone())
                .await
                .map_err(std::io::Error::other)?,
        ),
        other => {
            return Err(std::io::Error::other(format!(
                "unknown connection kind {other}: per-worker, shared or deadpool"
            )));
        }
    });
    let mut loader = client
        .get_multiplexed_async_connection()
        .await
        .map_err(std::io::Error::other)?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(FLOOR)
        .query_async(&mut loader)
        .await
        .map_err(std::io::Error::other)?;
    let sha = web::Data::new(sha);
    let per_worker = kind == "per-worker";
    let server = HttpServer::new(move || {
        // Each worker's factory runs on that worker's runtime, where the connection's I/O task
        // then runs too.
        let redis = if per_worker {
            match ConnectionManager::new_lazy_with_config(client.clone(), Default::default()) {
                Ok(conn) => web::Data::new(Redis::Multiplexed(conn)),
                Err(e) => panic!("cannot make a Redis connection: {e}"),
            }
        } else {
            redis.clone()
        };
        App::new()
            .app_data(redis)
            .app_data(sha.clone())
            .route("/get", web::get().to(get))
            .route("/floor", web::post().to(floor))
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        println!("listening on {addr}");
    }
    server.run().await
}
