//! Ceilings (a), (0) and (c): the least a validation and a refresh on this stack can cost.
//! `GET /get?k=KEY` is a bare actix-web handler that does one Redis GET per request, over the
//! connection the first argument chooses: a multiplexed connection per worker (`per-worker`,
//! as token-server does), one multiplexed connection shared by the workers (`shared`), or a
//! deadpool-redis pool with one checkout per request (`deadpool`). `GET /fixed` answers the
//! seeded user's JSON, a details answer's body, from memory: no Redis at all. `POST /floor`
//! with the form body `k=N` runs `bench/lua/refresh-floor.lua`, the five commands every
//! refresh must make, on the `N`th of the harness's sessions (multiplexed connections only).

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::{Parser, ValueEnum};
use redis::Value;
use redis::aio::ConnectionManager;

const FLOOR: &str = include_str!("../../lua/refresh-floor.lua");

/// What a details answer of the harness's sessions carries.
const DETAILS_BODY: &str = include_str!("../user.json");

/// The ceiling server of bench/README.md; the harness starts it.
#[derive(Parser)]
struct Args {
    /// How handlers reach Redis.
    #[arg(value_enum, default_value_t = Kind::PerWorker)]
    kind: Kind,
    #[arg(default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// 0 for a free one.
    #[arg(default_value_t = 0)]
    port: u16,
    #[arg(default_value_t = 2)]
    workers: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// A multiplexed connection per worker, as token-server has.
    PerWorker,
    /// One multiplexed connection shared by the workers.
    Shared,
    /// A deadpool-redis pool, one checkout per request.
    Deadpool,
}

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

/// Ceiling (0): a details answer's body, no Redis.
async fn fixed() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DETAILS_BODY)
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

/// The connection the handlers share; for `per-worker` it only proves Redis answers before
/// the workers start, each of which then makes its own.
async fn connect(args: &Args, client: &redis::Client) -> std::io::Result<Redis> {
    Ok(match args.kind {
        Kind::Deadpool => Redis::Pooled(
            deadpool_redis::Config::from_url(args.redis_url.as_str())
                .create_pool(Some(deadpool_redis::Runtime::Tokio1))
                .map_err(std::io::Error::other)?,
        ),
        Kind::Shared | Kind::PerWorker => Redis::Multiplexed(
            ConnectionManager::new(client.clone())
                .await
                .map_err(std::io::Error::other)?,
        ),
    })
}

/// Loads the floor script; its SHA.
async fn load_floor(client: &redis::Client) -> std::io::Result<String> {
    let mut loader = client
        .get_multiplexed_async_connection()
        .await
        .map_err(std::io::Error::other)?;
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(FLOOR)
        .query_async(&mut loader)
        .await
        .map_err(std::io::Error::other)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis_url.as_str()).map_err(std::io::Error::other)?;
    let redis = web::Data::new(connect(&args, &client).await?);
    let sha = web::Data::new(load_floor(&client).await?);
    let per_worker = args.kind == Kind::PerWorker;
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
            .route("/fixed", web::get().to(fixed))
            .route("/floor", web::post().to(floor))
    })
    .workers(args.workers)
    .bind(("127.0.0.1", args.port))?;
    for addr in server.addrs() {
        println!("listening on {addr}");
    }
    server.run().await
}
