//! A `sluice worker` process killed with SIGKILL in the middle of a release: its instances die
//! with it, another worker takes the app environment's lease over once it expires, starts the
//! versions the release needs again on the same port, and carries the release to its end.

use std::time::Duration;

use crate::binary::signal_pid;
use crate::execution::push;
use crate::fleet::Backend;
use crate::helpers::{spawn_app, wait_until};
use crate::release_support::{
    bump, explain, monitoring, newest_release, pipeline, release_of, release_project, run_ended,
    web_in,
};
use crate::worker_processes::worker_with;

#[tokio::test]
async fn a_worker_process_killed_mid_release_leaves_it_to_another_that_ends_it() {
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(
        &app,
        &pipeline("instances: 2, monitorSeconds: 5"),
        flags.path(),
    )
    .await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let settings = [("SLUICE_RELEASE_LEASE_SECS", "2")];
    let mut workers: Vec<_> = dirs
        .iter()
        .map(|d| {
            Some(worker_with(
                &app,
                Backend::Embedded,
                "rel",
                d.path(),
                &settings,
            ))
        })
        .collect();

    let first = push(&app, &hook, &repo).await;
    let run = run_ended(&app, &owner, first).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(&app, &owner, first).await
    );
    let url = web_in(&app, &owner, "production").await["url"]
        .as_str()
        .unwrap()
        .to_owned();

    bump(&repo);
    let second = push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    monitoring(&app, &owner, id).await;
    // Kill the worker that controls the release, as the kernel would.
    let holder = app
        .scalar("SELECT lease_holder FROM app_slots WHERE lease_holder IS NOT NULL")
        .await
        .unwrap();
    let pid: u32 = holder.rsplit('-').next().unwrap().parse().unwrap();
    let victim = workers
        .iter()
        .position(|w| w.as_ref().and_then(|c| c.id()) == Some(pid))
        .unwrap_or_else(|| panic!("no worker has pid {pid} (lease holder {holder})"));
    signal_pid(pid, "KILL");
    let mut dead = workers[victim].take().unwrap();
    let _ = dead.wait().await;

    let run = run_ended(&app, &owner, second).await;
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}\n{}",
        explain(&app, &owner, second).await
    );
    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "succeeded", "{release}");
    let new_holder = app
        .scalar("SELECT lease_holder FROM app_slots WHERE lease_holder IS NOT NULL")
        .await
        .unwrap();
    assert_ne!(new_holder, holder, "another worker took the release over");
    let web = web_in(&app, &owner, "production").await;
    assert_eq!(web["url"], url.as_str(), "the same URL: {web}");
    wait_until(Duration::from_secs(30), || async {
        match reqwest::get(&url).await {
            Ok(res) => res
                .headers()
                .get("x-app-version")
                .is_some_and(|v| v.to_str().unwrap_or_default() == second.to_string()),
            Err(_) => false,
        }
    })
    .await;
    drop(workers);
}
