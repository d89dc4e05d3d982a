// The run page, live: the log streams over server-sent events (resuming where it left off if
// the connection drops), one section per stage (parallel branches each their own, however
// their lines interleave; `post` output under "Post"), with ANSI colours; the status, stage
// graph (with durations; a click scrolls to the stage's log), approval gate, duration,
// reason, artifacts and test results follow the run through its JSON.

const root = document.getElementById("run");
if (root) start(root);

const ENDED = ["succeeded", "unstable", "failed", "cancelled"];

function start(root) {
  const api = root.dataset.runApi;
  const page = root.dataset.runPage;
  const canAct = root.dataset.canAct === "true";
  const log = document.getElementById("log");
  const follow = document.getElementById("follow");
  const jump = document.getElementById("jump-error");
  // Named stages keep one section each; Sluice's own lines (stage "") get a new section
  // whenever they follow another stage's, so the final lines stay at the end.
  const sections = new Map();
  let last = null;
  let firstError = null;
  let count = 0;
  let refreshes = 0;

  const source = new EventSource(`${api}/log`);
  source.onmessage = (event) => append(JSON.parse(event.data));
  source.addEventListener("end", () => {
    source.close();
    log.dataset.done = "true";
    refresh();
  });

  jump.addEventListener("click", () => {
    if (!firstError) return;
    firstError.closest("details").open = true;
    follow.checked = false;
    firstError.scrollIntoView({ block: "center" });
    firstError.classList.add("highlight");
  });

  function sectionFor(stage) {
    if (stage && sections.has(stage)) return sections.get(stage);
    if (!stage && last && last.dataset.stage === "") return last;
    const section = document.createElement("details");
    section.open = true;
    section.className = "log-section";
    section.dataset.stage = stage;
    const summary = document.createElement("summary");
    summary.textContent = stage || "Sluice";
    section.append(summary);
    log.append(section);
    if (stage) sections.set(stage, section);
    return section;
  }

  // The log section of a stage of the graph (a matrix cell's or nested branch's by suffix).
  function sectionOf(name) {
    if (sections.has(name)) return sections.get(name);
    for (const [stage, section] of sections) if (stage.endsWith(` / ${name}`)) return section;
    return null;
  }

  function append(line) {
    const stage = line.stage || "";
    const section = sectionFor(stage);
    last = section;
    const row = document.createElement("div");
    row.className = line.error ? "log-line log-error" : "log-line";
    row.id = `L${line.n}`;
    const time = document.createElement("span");
    time.className = "log-time";
    time.textContent = line.at.slice(11, 19);
    time.title = line.at;
    const text = document.createElement("span");
    text.className = "log-text";
    text.append(ansi(line.text));
    row.append(time, text);
    section.append(row);
    count += 1;
    log.dataset.lines = String(count);
    if (line.error && !firstError) {
      firstError = row;
      jump.hidden = false;
    }
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }

  async function refresh() {
    let run;
    try {
      const res = await fetch(api, { headers: { accept: "application/json" } });
      if (!res.ok) throw new Error(res.status);
      run = await res.json();
    } catch {
      setTimeout(refresh, 2000);
      return;
    }
    const status = document.getElementById("run-status");
    status.textContent = run.status;
    status.className = `badge status-${run.status}`;
    graph(run.stages);
    gate(run);
    facts(run);
    tests(run.tests);
    if (refreshes++ % 3 === 0 || ENDED.includes(run.status)) artifacts();
    if (ENDED.includes(run.status)) {
      document.getElementById("cancel-form")?.remove();
      if (log.dataset.done !== "true") setTimeout(refresh, 1000);
    } else {
      setTimeout(refresh, 1000);
    }
  }

  // Stages left to right; a stage's branches (parallel, matrix cells) side by side inside it.
  function graph(stages) {
    const box = document.getElementById("stage-graph");
    const children = new Map();
    for (const s of stages) {
      const key = s.parent ?? "top";
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(s);
    }
    const build = (s) => {
      const node = document.createElement("div");
      node.className = `stage-node status-${s.status}`;
      node.dataset.stage = s.name;
      const name = document.createElement("span");
      name.className = "stage-name";
      name.textContent = s.name;
      const state = document.createElement("span");
      state.className = "stage-status";
      state.textContent = s.status;
      const took = document.createElement("span");
      took.className = "stage-duration";
      took.textContent = duration(s.started_at, s.finished_at);
      node.append(name, state, took);
      node.tabIndex = 0;
      node.setAttribute("role", "button");
      node.title = `Show the log of ${s.name}`;
      const show = (event) => {
        event.stopPropagation();
        const target = sectionOf(s.name);
        if (!target) return;
        follow.checked = false;
        target.open = true;
        target.scrollIntoView({ block: "start" });
        target.classList.add("flash");
        setTimeout(() => target.classList.remove("flash"), 1500);
      };
      node.addEventListener("click", show);
      node.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") show(event); });
      const kids = children.get(s.seq) || [];
      if (kids.length) {
        const row = document.createElement("div");
        row.className = "stage-branches";
        for (const k of kids) row.append(build(k));
        node.append(row);
      }
      return node;
    };
    const row = document.createElement("div");
    row.className = "stage-row";
    for (const s of children.get("top") || []) row.append(build(s));
    box.replaceChildren(row);
  }

  function facts(run) {
    const took = document.getElementById("run-duration");
    if (took) took.textContent = duration(run.started_at, run.finished_at);
    const reason = document.getElementById("run-reason");
    if (reason && run.reason) {
      reason.textContent = run.reason;
      reason.hidden = false;
      document.getElementById("run-reason-label").hidden = false;
    }
  }

  function tests(summary) {
    const body = document.getElementById("tests-body");
    if (!body || !summary) return;
    const key = JSON.stringify(summary);
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    const line = document.createElement("p");
    line.id = "test-summary";
    for (const [n, label] of [[summary.passed, " passed, "], [summary.failed, " failed, "], [summary.skipped, " skipped"]]) {
      const strong = document.createElement("strong");
      strong.textContent = String(n);
      line.append(strong, label);
    }
    const parts = [line];
    if (summary.failures?.length) {
      const title = document.createElement("h3");
      title.textContent = "Failing tests";
      const list = document.createElement("ul");
      list.className = "failures";
      for (const f of summary.failures) {
        const item = document.createElement("li");
        const name = document.createElement("code");
        name.className = "test-name";
        name.textContent = f.name;
        item.append(name);
        if (f.message) {
          const message = document.createElement("pre");
          message.className = "test-message";
          message.textContent = f.message;
          item.append(message);
        }
        list.append(item);
      }
      parts.push(title, list);
    }
    body.replaceChildren(...parts);
  }

  async function artifacts() {
    const body = document.getElementById("artifacts-body");
    if (!body) return;
    let list;
    try {
      const res = await fetch(`${api}/artifacts`, { headers: { accept: "application/json" } });
      if (!res.ok) return;
      const answer = await res.json();
      list = Array.isArray(answer) ? answer : answer.items || [];
    } catch {
      return;
    }
    if (!list.length) return;
    const key = list.map((a) => `${a.path}:${a.sha256}`).join("|");
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    const table = document.createElement("table");
    table.className = "table";
    table.id = "artifact-table";
    table.innerHTML = "<thead><tr><th>Path</th><th>Size</th><th>SHA-256</th></tr></thead>";
    const rows = document.createElement("tbody");
    for (const a of list) {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = `${api}/artifacts/${a.path.split("/").map(encodeURIComponent).join("/")}`;
      link.download = "";
      link.textContent = a.path;
      const cells = [link, `${a.size} bytes`, Object.assign(document.createElement("code"), { textContent: a.sha256 })];
      for (const c of cells) {
        const td = document.createElement("td");
        td.append(c);
        tr.append(td);
      }
      rows.append(tr);
    }
    table.append(rows);
    body.replaceChildren(table);
  }

  function gate(run) {
    const slot = document.getElementById("gate-slot");
    const existing = document.getElementById("gate");
    if (run.status !== "waiting" || !run.waiting_for) {
      existing?.remove();
      return;
    }
    if (existing && existing.dataset.gate === run.waiting_for.id) return;
    const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
    const section = document.createElement("section");
    section.id = "gate";
    section.className = "gate";
    section.dataset.gate = run.waiting_for.id;
    const title = document.createElement("h2");
    title.textContent = "Waiting for approval";
    const message = document.createElement("p");
    message.id = "gate-message";
    message.textContent = run.waiting_for.message;
    section.append(title, message);
    if (canAct || run.waiting_for.submitter) {
      const form = document.createElement("form");
      form.method = "post";
      form.action = `${page}/approve`;
      form.className = "inline";
      const hidden = (name, value) => {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        return input;
      };
      const button = (label, value, kind) => {
        const b = document.createElement("button");
        b.type = "submit";
        b.name = "approve";
        b.value = value;
        b.className = `button ${kind}`;
        b.textContent = label;
        return b;
      };
      form.append(hidden("csrf_token", csrf), hidden("id", run.waiting_for.id));
      for (const p of run.waiting_for.parameters || []) {
        const field = document.createElement("div");
        field.className = "field";
        const label = document.createElement("label");
        label.htmlFor = `param-${p.name}`;
        label.textContent = p.name;
        const choices = p.kind === "choice" ? p.choices : p.kind === "boolean" ? ["true", "false"] : null;
        const input = document.createElement(choices ? "select" : "input");
        input.id = `param-${p.name}`;
        input.name = `param_${p.name}`;
        if (choices) {
          for (const c of choices) input.append(new Option(c, c, false, c === p.default));
        } else {
          input.value = p.default;
        }
        field.append(label, input);
        form.append(field);
      }
      form.append(
        button(run.waiting_for.ok || "Proceed", "true", "primary"),
        button("Reject", "false", "danger"),
      );
      section.append(form);
    }
    existing?.remove();
    slot.append(section);
  }

  refresh();
}

// "1m 05s" from two ISO times (the second absent: until now); "" before the start.
function duration(from, to) {
  if (!from) return "";
  const secs = Math.max(0, Math.round(((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000));
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${String(secs % 60).padStart(2, "0")}s`;
  return `${Math.floor(secs / 3600)}h ${String(Math.floor((secs % 3600) / 60)).padStart(2, "0")}m`;
}

// SGR colour codes to spans: 30–37/90–97 foreground, 40–47 background, 1 bold, 0 reset.
function ansi(text) {
  const out = document.createDocumentFragment();
  const pattern = /\x1b\[([0-9;]*)m/g;
  let classes = [];
  let last = 0;
  const emit = (chunk) => {
    if (!chunk) return;
    if (classes.length === 0) {
      out.append(chunk);
    } else {
      const span = document.createElement("span");
      span.className = classes.join(" ");
      span.textContent = chunk;
      out.append(span);
    }
  };
  for (const match of text.matchAll(pattern)) {
    emit(text.slice(last, match.index));
    last = match.index + match[0].length;
    for (const code of (match[1] || "0").split(";").map(Number)) {
      if (code === 0) classes = [];
      else if (code === 1) classes.push("ansi-bold");
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
        classes = classes.filter((c) => !c.startsWith("ansi-fg-"));
        classes.push(`ansi-fg-${code >= 90 ? code - 90 + 8 : code - 30}`);
      } else if (code >= 40 && code <= 47) {
        classes = classes.filter((c) => !c.startsWith("ansi-bg-"));
        classes.push(`ansi-bg-${code - 40}`);
      } else if (code === 39) classes = classes.filter((c) => !c.startsWith("ansi-fg-"));
    }
  }
  emit(text.slice(last).replace(/\x1b\[[0-9;]*[A-Za-z]/g, ""));
  return out;
}
