//! The tenant provisioner's time per org, against the Kubernetes API stand-in the tests use
//! (tests/api/kube_standin; no cluster runs here), through the real kube-rs client:
//!
//!   cargo run --release --example kube_bench -- ORGS
//!
//! Creates ORGS orgs in a fresh SQLite database, then times a first pass (every object
//! created) and a second one (every object already there, as in steady state), and prints the
//! time per org of each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The tests use all of the stand-in; the benchmark only starts it.
#[allow(dead_code)]
#[path = "../tests/api/kube_standin/mod.rs"]
mod kube_standin;

use std::time::Instant;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, Set};
use secrecy::SecretString;
use sluice_core::config::Settings;
use sluice_core::entities::org;
use sluice_kube::provisioner::Provisioner;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let orgs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = sluice_core::db::connect(&SecretString::from(url), 4)
        .await
        .unwrap();
    sluice_core::db::migrate(&db).await.unwrap();
    for n in 0..orgs {
        org::ActiveModel {
            slug: Set(format!("org-{n:05}")),
            name: Set(format!("Org {n}")),
            max_concurrent_runs: Set(4),
            fair_share_weight: Set(1),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let kube = kube_standin::KubeStandIn::start();
    let config = kube::Config::new(kube.url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let settings = Settings {
        tenant_egress_cidrs: "0.0.0.0/0:443".into(),
        ..Settings::default()
    };
    let provisioner = Provisioner::new(client, settings);
    for label in ["first pass (creates)", "second pass (steady state)"] {
        let started = Instant::now();
        let pass = provisioner.pass(&db).await.unwrap();
        let took = started.elapsed();
        assert_eq!(pass.applied, orgs, "{pass:?}");
        println!(
            "{label}: {orgs} orgs in {:.2} s, {:.2} ms per org ({} objects applied)",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / orgs as f64,
            orgs * 5
        );
    }
}
