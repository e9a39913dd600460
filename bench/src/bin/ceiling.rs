//! Ceiling (a): the least any validation on this stack can cost. A bare actix-web handler that
//! does one Redis GET per request, chosen by the first argument: over a multiplexed connection
//! per worker (`per-worker`, as token-server does), one multiplexed connection shared by the
//! workers (`shared`), or a deadpool-redis pool with one checkout per request (`deadpool`).

use actix_web::{App, HttpResponse, HttpServer, web};
use redis::aio::ConnectionManager;

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
        App::new().app_data(redis).route("/get", web::get().to(get))
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        println!("listening on {addr}");
    }
    server.run().await
}
