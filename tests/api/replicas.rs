//! API replicas over one database, sharing a bus (Redis pub/sub, or PostgreSQL LISTEN/NOTIFY
//! when there is no Redis): each keeps its read cache, a write on one is refused or visible on
//! the others at once, and a replica whose bus connection drops stops trusting its cache until
//! it is back.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use sluice_api::{AppState, Application};
use sluice_core::bus::{Bus, Event};
use sluice_core::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Auth, TestApp, redis_url, spawn_app, test_settings, wait_until};

/// A replica of `app`'s API with the read cache on and a bus: over Redis with `prefix`, or
/// over PostgreSQL when `prefix` is None.
struct Replica {
    base: String,
    state: AppState,
    bus: Bus,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn replica(app: &TestApp, prefix: Option<&str>) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&app.test_db, dir.path());
    settings.read_cache = true;
    if let Some(prefix) = prefix {
        settings.redis_url = Some(SecretString::from(redis_url()));
        settings.queue_prefix = prefix.to_owned();
    }
    let shutdown = CancellationToken::new();
    let bus = Bus::connect(&settings, &app.db, shutdown.clone())
        .await
        .unwrap()
        .expect("a bus");
    let key = settings.secret_key.clone().unwrap();
    let mut state =
        AppState::new(&settings, app.db.clone(), Metrics::new().unwrap(), &key).unwrap();
    state.attach_bus(bus.clone());
    let built = Application::build(&settings, state.clone()).unwrap();
    let base = format!("http://{}", built.local_addr());
    tokio::spawn(built.run_until_stopped(shutdown.clone()));
    wait_until(Duration::from_secs(10), || async { bus.healthy() }).await;
    Replica {
        base,
        state,
        bus,
        _dir: dir,
        shutdown,
    }
}

async fn status(app: &TestApp, url: &str, token: &str) -> u16 {
    app.client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Each round: a token is used on replica B (so B caches it), revoked on replica A, and B is
/// asked until it refuses it. Returns how long B took after A's answer, per round.
async fn revocations_seen_across(
    app: &TestApp,
    owner: &Auth,
    a: &Replica,
    b: &Replica,
) -> Vec<Duration> {
    let Auth::Session { cookie, csrf } = owner else {
        unreachable!()
    };
    let mut took = Vec::new();
    for round in 0..20 {
        let token = app.create_token(owner, "acme", &["read"]).await;
        let projects = format!("{}/api/v1/orgs/acme/projects", b.base);
        for _ in 0..3 {
            assert_eq!(status(app, &projects, &token).await, 200, "round {round}");
        }
        assert!(
            b.state.cache.principal_cached(),
            "round {round}: replica B serves the token from its cache"
        );
        let id = app
            .scalar("SELECT CAST(MAX(id) AS BIGINT) FROM api_tokens WHERE name = 'ci'")
            .await
            .unwrap();
        let res = app
            .client
            .delete(format!("{}/api/v1/orgs/acme/tokens/{id}", a.base))
            .header("cookie", format!("sluice_session={cookie}"))
            .header("x-csrf-token", csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "round {round}");
        let answered = Instant::now();
        wait_until(Duration::from_secs(5), || async {
            status(app, &projects, &token).await == 401
        })
        .await;
        took.push(answered.elapsed());
    }
    took
}

fn p99(mut took: Vec<Duration>) -> Duration {
    took.sort();
    took[(took.len() * 99 / 100).min(took.len() - 1)]
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_refused_on_the_other_over_redis() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4());
    let a = replica(&app, Some(&prefix)).await;
    let b = replica(&app, Some(&prefix)).await;
    let took = revocations_seen_across(&app, &owner, &a, &b).await;
    println!(
        "replicas over Redis: revocation refused on the other replica after {:?} (p99 of 20)",
        p99(took)
    );

    // The subscription drops: B stops trusting its cache at once, then resubscribes, flushes
    // and trusts it again.
    let mut events = b.bus.subscribe();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        killed >= 2,
        "both replicas' subscriptions were cut: {killed}"
    );
    wait_until(Duration::from_secs(5), || async { !b.bus.healthy() }).await;
    assert!(
        !b.state.cache.trusted_now(),
        "an unhealthy bus means no cache"
    );
    wait_until(Duration::from_secs(10), || async { b.bus.healthy() }).await;
    let resynced = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if events.recv().await.ok() == Some(Event::Resynced) {
                return;
            }
        }
    })
    .await;
    assert!(
        resynced.is_ok(),
        "a resubscription tells the cache to flush"
    );
    assert!(b.state.cache.trusted_now());
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_refused_on_the_other_over_postgres() {
    let app = spawn_app().await;
    if !app.test_db.url.starts_with("postgres") {
        // LISTEN/NOTIFY is PostgreSQL's; this suite's PostgreSQL run covers it.
        return;
    }
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let a = replica(&app, None).await;
    let b = replica(&app, None).await;
    let took = revocations_seen_across(&app, &owner, &a, &b).await;
    println!(
        "replicas over PostgreSQL: revocation refused on the other replica after {:?} (p99 of 20)",
        p99(took)
    );
}
