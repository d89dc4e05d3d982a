//! The shell programs the Kubernetes agent runs through exec, written for any POSIX `sh`
//! (dash, bash, busybox ash) with `tail`, `head -c`, `wc`, `tar` and, where the image has it,
//! `setsid`.
//!
//! A step is launched detached from its exec stream, the way Jenkins' durable tasks are: its
//! output goes to a file in the pod and its status to another, and the stream only follows the
//! file. A dropped stream is then re-attached from the byte it reached, and the step goes on
//! meanwhile. The step's environment and script arrive on stdin as one file that removes
//! itself when it starts, so neither is ever in the pod spec or on a command line.

use crate::agent::AgentError;
use sluice_worker::agent::Env;

/// Where step files live, below the agent's root (beside the workspace, not in it).
pub const STEPS: &str = ".sluice/steps";

/// Sets up the agent's directories; prints the root (the container's working directory).
pub const INIT: &str = "mkdir -p src home .sluice/steps && chmod 700 .sluice && pwd";

/// Launches a step: `$1` is its directory; stdin is its payload ([`payload`]). The step runs in
/// a session of its own when `setsid` exists (so cancel reaches everything it started) and,
/// once its script ends, whatever it left behind in that session is killed. Then follows.
pub const LAUNCH: &str = r#"d=$1
umask 077
mkdir -p "$d" || exit 125
cat > "$d/payload" || exit 125
: > "$d/out"
step='env -i PATH="$PATH" HOME="$HOME" HOSTNAME="$HOSTNAME" sh -e "$1/payload" > "$1/out" 2>&1 < /dev/null
rc=$?
echo $rc > "$1/rc.tmp" && mv "$1/rc.tmp" "$1/rc"
kill -s KILL -- -$$ 2>/dev/null
exit $rc'
# A subshell that exits at once: the step is nobody's child here, so init reaps it.
(
  if command -v setsid > /dev/null 2>&1; then
    setsid sh -c "$step" sluice "$d" &
  else
    sh -c "$step" sluice "$d" &
  fi
  echo $! > "$d/pid"
)
exec sh -c "$2" sluice "$d" 0
"#;

/// Follows a step: `$1` is its directory, `$2` the bytes of output already received. Prints
/// the rest of the output as it grows and exits with the step's status; exits 137 when the
/// step's processes are gone without a status (killed).
pub const FOLLOW: &str = r#"d=$1
off=$2
idle=0
while :; do
  ended=
  [ -f "$d/rc" ] && ended=1
  size=0
  [ -f "$d/out" ] && size=$(( $(wc -c < "$d/out") ))
  if [ "$size" -gt "$off" ]; then
    tail -c +$((off + 1)) "$d/out" | head -c $((size - off))
    off=$size
    idle=0
  fi
  if [ -n "$ended" ]; then
    exit "$(cat "$d/rc")"
  fi
  if ! kill -0 "$(cat "$d/pid" 2>/dev/null)" 2>/dev/null && [ ! -f "$d/rc" ]; then
    echo "the step's processes were stopped" >&2
    exit 137
  fi
  idle=$((idle + 1))
  if [ "$idle" -gt 100 ]; then sleep 0.2; else sleep 0.02; fi
done
"#;

/// Stops a step: `$1` is its directory. TERM to its session (or process), then KILL a second
/// later to whatever ignored it.
pub const STOP: &str = r#"p=$(cat "$1/pid" 2>/dev/null) || exit 0
kill -s TERM -- -"$p" 2>/dev/null || kill -s TERM "$p" 2>/dev/null
sleep 1
kill -s KILL -- -"$p" 2>/dev/null || kill -s KILL "$p" 2>/dev/null
exit 0
"#;

/// Unpacks stdin (a tar stream) below `$1`, created when missing.
pub const PUT: &str = r#"mkdir -p -- "$1" && tar -x -f - -C "$1""#;

/// Packs `$1` as a tar stream on stdout; fails without output when `$1` is not a directory.
pub const GET: &str = r#"cd -- "$1" 2>/dev/null || { echo "no such directory: $1" >&2; exit 2; }
exec tar -c -f - ."#;

/// Removes `$1` (a file or a tree); a missing one is fine.
pub const REMOVE: &str = r#"rm -rf -- "$1""#;

/// `value` in single quotes for `sh`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Whether `name` can be a shell variable.
fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A step's payload: it removes itself, exports `env`, enters `dir` (created when missing,
/// relative to the root) and runs `script` under `sh -e`.
pub fn payload(script: &str, env: &Env, root: &str, dir: &str) -> Result<String, AgentError> {
    let mut out = String::from("rm -f -- \"$0\"\n");
    for (name, value) in env {
        if !is_name(name) {
            return Err(AgentError::Failed(format!(
                "`{name}` cannot be an environment variable of a shell step"
            )));
        }
        if value.contains('\0') {
            return Err(AgentError::Failed(format!(
                "the value of `{name}` holds a NUL byte"
            )));
        }
        out.push_str(&format!("export {name}={}\n", quote(value)));
    }
    let dir = if dir.is_empty() {
        root.to_owned()
    } else {
        format!("{root}/{dir}")
    };
    out.push_str(&format!(
        "mkdir -p -- {dir} && cd -- {dir} || exit 1\n",
        dir = quote(&dir)
    ));
    out.push_str(script);
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let env = Env::from([("A".to_owned(), "x'$HOME".to_owned())]);
        let p = payload("echo hi", &env, "/sluice", "src/a b").unwrap();
        assert!(p.contains(r"export A='x'\''$HOME'"), "{p}");
        assert!(p.contains("cd -- '/sluice/src/a b'"), "{p}");
        assert!(p.ends_with("echo hi\n"));
        let bad = Env::from([("A-B".to_owned(), "x".to_owned())]);
        assert!(payload("true", &bad, "/", "").is_err());
    }
}
