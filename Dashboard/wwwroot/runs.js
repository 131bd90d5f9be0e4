import { getJson, el, badge, duration, fixed, time, table } from "./common.js";
import { formatNumber } from "./charts.js";

const selected = new Set();
const compare = document.getElementById("compare");
compare.addEventListener("click", () => location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`);

async function refresh() {
  try {
    const runs = await getJson("/api/runs");
    document.getElementById("error").textContent = "";
    const container = document.getElementById("runs");
    if (runs.length === 0) {
      container.replaceChildren(el("div", { class: "muted" }, "No runs yet. Start one with `dotnet run --project AppHost`."));
      return;
    }
    container.replaceChildren(table(
      ["", "run", "status", "started", { label: "duration", num: true }, { label: "ranks", num: true }, "dataset", "preset",
        { label: "epochs", num: true }, { label: "bs", num: true }, { label: "lr", num: true }, { label: "accuracy", num: true }, { label: "images/s", num: true }],
      runs.map(r => {
        const box = el("input", { type: "checkbox", "data-run": r.runId });
        box.checked = selected.has(r.runId);
        box.addEventListener("change", () => { box.checked ? selected.add(r.runId) : selected.delete(r.runId); compare.disabled = selected.size < 2; });
        const c = r.config;
        return {
          attrs: { "data-run": r.runId },
          cells: [box, el("a", { href: `/runs/${encodeURIComponent(r.runId)}` }, r.runId), badge(r.status), time(r.startedAt), duration(r.durationSeconds),
            `${r.ranksReporting}/${r.worldSize}`, c.dataset ?? "–", c.preset ?? "–", `${r.epochsDone}/${r.epochs ?? "?"}`, c.bs ?? "–", c.lr ?? "–",
            fixed(r.accuracy, 4), formatNumber(r.imagesPerSecond)],
        };
      })));
  } catch (e) {
    document.getElementById("error").textContent = `Dashboard API unreachable: ${e.message}`;
  }
}

refresh();
setInterval(refresh, 3000);
