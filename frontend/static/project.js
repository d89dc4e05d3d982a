// The project page's runs part (stage view, chart, run table) stays current without a
// reload: it is fetched again every 2 s while a run is queued, running or waiting, every
// 10 s otherwise (a push may start one), and not while the tab is hidden.
const part = () => document.getElementById("runs-part");

async function refresh() {
  const current = part();
  if (!current || document.hidden) return;
  try {
    const res = await fetch(current.dataset.src, { credentials: "same-origin", headers: { accept: "text/html" } });
    if (!res.ok) return;
    const html = await res.text();
    const next = new DOMParser().parseFromString(html, "text/html").getElementById("runs-part");
    if (next && next.innerHTML !== current.innerHTML) current.replaceWith(next);
  } catch {
    // Offline for a moment: the next tick tries again.
  }
}

function schedule() {
  const active = part()?.dataset.active === "true";
  setTimeout(async () => { await refresh(); schedule(); }, active ? 2000 : 10000);
}

schedule();
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
