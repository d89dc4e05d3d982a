//! The agent conformance suite (`sluice_worker::agent::conformance`) against every agent, as
//! the queue suite runs against every queue: the local agent, a directory on this host with
//! each script under the step supervisor.

use sluice_worker::agent::conformance;
use sluice_worker::agent::local::LocalAgent;

#[tokio::test]
async fn the_local_agent_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let agent = LocalAgent::new(root.path(), env!("CARGO_BIN_EXE_sluice"));
    conformance::suite(&agent).await;
}
