//! The behaviour every [`Agent`] must have, as one suite run against each implementation
//! (`tests/api/agents.rs`): scripts with their environment, directory, output and status;
//! cancel; files and trees in and out as tar streams; removal; paths that leave the root.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::{Agent, AgentError, Env, Exit, WORKSPACE, tar_stream};

/// Runs `script` in `dir`; returns how it ended and its output lines.
async fn run(agent: &dyn Agent, script: &str, env: &Env, dir: &str) -> (Exit, Vec<String>) {
    let lines = Mutex::new(Vec::new());
    let output = |line: &str| {
        if let Ok(mut lines) = lines.lock() {
            lines.push(line.to_owned());
        }
    };
    let exit = match agent
        .run(script, env, dir, &output, &CancellationToken::new())
        .await
    {
        Ok(exit) => exit,
        Err(err) => panic!("running `{script}`: {err}"),
    };
    (exit, lines.into_inner().unwrap_or_default())
}

async fn read_all(mut stream: super::ByteStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(err) = stream.read_to_end(&mut bytes).await {
        panic!("reading a stream: {err}");
    }
    bytes
}

/// The names and contents of the regular files in a tar archive, sorted.
fn entries(tar: &[u8]) -> Vec<(String, String)> {
    let mut archive = tar::Archive::new(tar);
    let mut found = Vec::new();
    let Ok(iter) = archive.entries() else {
        panic!("not a tar archive")
    };
    for entry in iter.flatten() {
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_owned())
            .unwrap_or_default();
        let mut contents = String::new();
        let mut entry = entry;
        let _ = std::io::Read::read_to_string(&mut entry, &mut contents);
        found.push((name, contents));
    }
    found.sort();
    found
}

/// Every check, in order, against a fresh agent.
pub async fn suite(agent: &dyn Agent) {
    scripts_see_their_environment_directory_and_status(agent).await;
    cancel_stops_a_script_and_what_it_started(agent).await;
    trees_go_in_and_out_as_tar_streams(agent).await;
    paths_never_leave_the_root(agent).await;
}

async fn scripts_see_their_environment_directory_and_status(agent: &dyn Agent) {
    let env = Env::from([("GREETING".to_owned(), "hello agent".to_owned())]);
    let (exit, lines) = run(
        agent,
        "echo \"$GREETING\"; echo to-stderr >&2; pwd; exit 3",
        &env,
        WORKSPACE,
    )
    .await;
    assert_eq!(exit, Exit::Code(3));
    assert!(lines.contains(&"hello agent".to_owned()), "{lines:?}");
    assert!(lines.contains(&"to-stderr".to_owned()), "{lines:?}");
    assert!(lines.contains(&agent.path_of(WORKSPACE)), "{lines:?}");
    // `sh -e`: the first failing command ends the script.
    let (exit, lines) = run(agent, "false; echo never", &Env::new(), WORKSPACE).await;
    assert_eq!(exit, Exit::Code(1));
    assert!(lines.is_empty(), "{lines:?}");
    // A clean environment: nothing of the worker's own leaks in.
    let (_, lines) = run(agent, "env", &Env::new(), WORKSPACE).await;
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("SLUICE_") && !l.starts_with("CARGO")),
        "{lines:?}"
    );
    // A directory that does not exist yet is created; a last line without a newline arrives
    // (stdout and stderr may share one stream, as in Jenkins' log, so it comes last).
    let sub = format!("{WORKSPACE}/deep/er");
    let (exit, lines) = run(agent, "pwd >&2; printf partial", &Env::new(), &sub).await;
    assert_eq!(exit, Exit::Code(0));
    assert!(lines.contains(&"partial".to_owned()), "{lines:?}");
    assert!(lines.contains(&agent.path_of(&sub)), "{lines:?}");
}

async fn cancel_stops_a_script_and_what_it_started(agent: &dyn Agent) {
    let cancel = CancellationToken::new();
    let started = Mutex::new(false);
    let output = |line: &str| {
        if line == "started"
            && let Ok(mut s) = started.lock()
        {
            *s = true;
        }
    };
    let stopper = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started.lock().map(|s| *s).unwrap_or(true) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        Instant::now()
    };
    let script = "trap '' TERM; (sleep 600 &); echo started; sleep 600";
    let env = Env::new();
    let (exit, asked) = tokio::join!(
        agent.run(script, &env, WORKSPACE, &output, &cancel),
        stopper
    );
    match exit {
        Ok(exit) => assert_eq!(exit, Exit::Stopped),
        Err(err) => panic!("cancelled run: {err}"),
    }
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "a cancel took {took:?} (a script ignoring SIGTERM gets SIGKILL after a grace)"
    );
}

async fn trees_go_in_and_out_as_tar_streams(agent: &dyn Agent) {
    let one = match tar_stream::single_file("notes/a.txt", b"first") {
        Ok(tar) => tar,
        Err(err) => panic!("{err}"),
    };
    if let Err(err) = agent.put(WORKSPACE, one).await {
        panic!("put: {err}");
    }
    let (exit, lines) = run(
        agent,
        "cat notes/a.txt; echo; echo second > b.txt",
        &Env::new(),
        WORKSPACE,
    )
    .await;
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(lines.first().map(String::as_str), Some("first"));
    let tar = match agent.get(WORKSPACE).await {
        Ok(tar) => read_all(tar).await,
        Err(err) => panic!("get: {err}"),
    };
    assert_eq!(
        entries(&tar),
        vec![
            ("b.txt".to_owned(), "second\n".to_owned()),
            ("notes/a.txt".to_owned(), "first".to_owned()),
        ]
    );
    // What comes out goes back in elsewhere, whole.
    if let Err(err) = agent
        .put("copy", Box::pin(std::io::Cursor::new(tar.clone())))
        .await
    {
        panic!("put a tree: {err}");
    }
    let copied = match agent.get("copy").await {
        Ok(tar) => read_all(tar).await,
        Err(err) => panic!("get the copy: {err}"),
    };
    assert_eq!(entries(&copied), entries(&tar));
    // An empty archive creates a directory; removing works on files and trees, and twice.
    if let Err(err) = agent.put("made/here", tar_stream::empty()).await {
        panic!("put nothing: {err}");
    }
    let (exit, _) = run(agent, "test -d made/here", &Env::new(), "").await;
    assert_eq!(exit, Exit::Code(0));
    for path in ["copy/b.txt", "copy", "copy", "made"] {
        if let Err(err) = agent.remove(path).await {
            panic!("remove {path}: {err}");
        }
    }
    let (exit, _) = run(agent, "test ! -e copy && test ! -e made", &Env::new(), "").await;
    assert_eq!(exit, Exit::Code(0));
    assert!(agent.get("copy").await.is_err(), "a missing directory");
}

async fn paths_never_leave_the_root(agent: &dyn Agent) {
    let noop = |_: &str| {};
    let cancel = CancellationToken::new();
    for path in ["../x", "/etc", "src/../../x"] {
        assert!(matches!(
            agent.run("true", &Env::new(), path, &noop, &cancel).await,
            Err(AgentError::Outside(_))
        ));
        assert!(matches!(
            agent.put(path, tar_stream::empty()).await,
            Err(AgentError::Outside(_))
        ));
        assert!(matches!(agent.get(path).await, Err(AgentError::Outside(_))));
        assert!(matches!(
            agent.remove(path).await,
            Err(AgentError::Outside(_))
        ));
    }
}
