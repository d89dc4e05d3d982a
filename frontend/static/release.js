// The release page, live: the plan's steps, the traffic split and each colour's figures follow
// the release through its JSON, once a second while it is in progress or a rollback is pending,
// every five seconds otherwise (a finished release can still be rolled back).

const root = document.getElementById("release");
if (root) follow(root);

function follow(root) {
  const api = root.dataset.api;
  let busy = true;

  async function refresh() {
    let release;
    try {
      const res = await fetch(api, { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      release = await res.json();
    } catch {
      return;
    }
    render(release);
    busy = release.status === "in_progress" || release.pending_request;
  }

  function render(release) {
    const status = document.getElementById("release-status");
    status.textContent = release.status;
    status.className = `badge status-${release.status}`;
    document.getElementById("release-reason").textContent = release.reason || "—";
    const abort = document.getElementById("abort-form");
    if (abort) abort.hidden = release.status !== "in_progress";
    const rollback = document.getElementById("rollback-form");
    if (rollback) {
      rollback.hidden = !(release.status === "in_progress"
        || (release.status === "succeeded" && release.previous_version !== null));
    }

    const t = release.traffic;
    const routed = t.blue.routed + t.green.routed;
    const green = routed === 0 ? 0 : Math.round((t.green.routed * 100) / routed);
    const blue = routed === 0 ? 0 : 100 - green;
    document.getElementById("traffic-blue").setAttribute("width", blue);
    document.getElementById("traffic-green").setAttribute("x", blue);
    document.getElementById("traffic-green").setAttribute("width", green);
    document.getElementById("share-blue").textContent = blue;
    document.getElementById("share-green").textContent = green;
    for (const [colour, share] of [["blue", blue], ["green", green]]) {
      const row = document.getElementById(`colour-${colour}`);
      const a = release.analysis ? release.analysis[colour] : null;
      const set = (field, text) => { row.querySelector(`[data-field="${field}"]`).textContent = text; };
      set("instances", t[colour].instances);
      set("routed", t[colour].routed);
      set("share", `${share}%`);
      set("requests", a ? a.requests : "—");
      set("success_rate", a ? `${(a.success_rate * 100).toFixed(2)}%` : "—");
      set("p99", a ? `${Math.round(a.p99_ms)} ms` : "—");
    }

    const list = document.getElementById("release-steps");
    const items = release.steps.map((step) => {
      const li = document.createElement("li");
      li.dataset.step = step.name;
      li.dataset.status = step.status;
      const badge = document.createElement("span");
      badge.className = `badge status-${step.status}`;
      badge.textContent = step.status;
      const name = document.createElement("strong");
      name.textContent = step.name;
      const took = document.createElement("span");
      took.className = "step-took muted";
      took.textContent = duration(step.started_at, step.finished_at);
      const detail = document.createElement("div");
      detail.className = "step-detail";
      detail.textContent = step.detail || "";
      li.append(badge, " ", name, " ", took, detail);
      return li;
    });
    list.replaceChildren(...items);
  }

  function duration(from, to) {
    if (!from) return "";
    const secs = Math.max(0, Math.round(((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000));
    return secs < 60 ? `${secs}s` : `${Math.floor(secs / 60)}m ${String(secs % 60).padStart(2, "0")}s`;
  }

  async function loop() {
    for (;;) {
      await refresh();
      await new Promise((resolve) => setTimeout(resolve, busy ? 1000 : 5000));
    }
  }
  loop();
}
