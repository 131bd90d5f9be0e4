import { getJson, el, badge, duration, fixed, time, table } from "./common.js";
import { lineChart, palette, formatNumber } from "./charts.js";

const ids = (new URLSearchParams(location.search).get("runs") ?? "").split(",").filter(Boolean);

async function load() {
  if (ids.length === 0) {
    document.getElementById("table").replaceChildren(el("div", { class: "muted" }, "Pick runs to compare on the runs page."));
    return;
  }
  const runs = [];
  for (const id of ids) {
    try { runs.push(await getJson(`/api/runs/${encodeURIComponent(id)}`)); }
    catch (e) { document.getElementById("error").textContent += `${e.message} `; }
  }
  const keys = [...new Set(runs.flatMap(r => Object.keys(r.summary.config)))].sort();
  const results = [
    ["status", r => badge(r.summary.status)],
    ["started", r => time(r.summary.startedAt)],
    ["duration", r => duration(r.summary.durationSeconds)],
    ["ranks", r => String(r.summary.worldSize)],
    ["epochs done", r => `${r.summary.epochsDone}/${r.summary.epochs ?? "?"}`],
    ["final accuracy", r => fixed(r.summary.accuracy, 4)],
    ["final valid_loss", r => fixed(r.summary.validLoss, 4)],
    ["images/s (all ranks)", r => formatNumber(r.summary.imagesPerSecond)],
  ];
  const rows = [
    ...results.map(([label, f]) => ({ cells: [el("b", {}, label), ...runs.map(f)] })),
    ...keys.map(k => {
      const values = runs.map(r => r.summary.config[k] ?? "–");
      const differs = new Set(values).size > 1;
      return { cells: [k, ...values.map(v => differs ? el("b", { style: "color:var(--warn)" }, v) : v)] };
    }),
  ];
  document.getElementById("table").replaceChildren(table(["", ...runs.map(r => el("a", { href: `/runs/${encodeURIComponent(r.summary.runId)}` }, r.summary.runId))], rows));

  const main = r => r.ranks.find(k => k.rank === 0) ?? r.ranks[0];
  const series = pick => runs.filter(main).map((r, i) => ({ name: r.summary.runId, color: palette[i % palette.length], ...pick(main(r)) }));
  lineChart(document.getElementById("chart-loss"), "Training loss (smoothed)", series(k => ({ xs: k.steps.step, ys: k.steps.smoothLoss })), { xLabel: "step" });
  lineChart(document.getElementById("chart-accuracy"), "Validation accuracy", series(k => ({ xs: k.epochs.map(e => e.epoch), ys: k.epochs.map(e => e.accuracy) })), { xLabel: "epoch" });
  lineChart(document.getElementById("chart-throughput"), "Images/s of rank 0", series(k => ({ xs: k.steps.step, ys: k.steps.imagesPerSecond })), { xLabel: "step", yMin: 0 });
  lineChart(document.getElementById("chart-lr"), "Learning rate", series(k => ({ xs: k.steps.step, ys: k.steps.learningRate })), { xLabel: "step" });
}

load();
