import { getJson, el, badge, duration, bytes, fixed, percent, table } from "./common.js";
import { lineChart, palette, formatNumber } from "./charts.js";

const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
document.title = `${runId} · Training Dashboard`;
document.getElementById("title").textContent = runId;
const color = rank => palette[rank % palette.length];

// The all-reduce share of each step, smoothed over a window so one slow step does not hide the trend.
function rolling(values, window) {
  const out = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

function render(run) {
  const s = run.summary, p = run.progress;
  document.getElementById("status").replaceChildren(badge(s.status));
  document.getElementById("progress-text").textContent = p.text + (p.totalSteps ? ` · step ${p.step}/${p.totalSteps}` : "");
  document.getElementById("progress-bar").style.width = `${(p.fraction * 100).toFixed(1)}%`;
  document.getElementById("updated").textContent = `started ${new Date(s.startedAt).toLocaleString()} · ${s.status === "running" ? "running for" : "took"} ${duration(s.durationSeconds)}` +
    (s.status === "running" ? " · refreshing every second" : "");

  const share = run.ranks.map(r => r.allReduceShare).filter(v => v !== null);
  document.getElementById("cards").replaceChildren(...[
    ["epoch", p.epochs ? `${p.epoch}/${p.epochs}` : "–"],
    ["ETA", s.status === "running" ? duration(p.etaSeconds) : "–"],
    ["validation accuracy", fixed(s.accuracy, 4)],
    ["validation loss", fixed(s.validLoss, 4)],
    ["images/s (all ranks)", formatNumber(s.imagesPerSecond)],
    ["all-reduce share of step", share.length ? percent(share.reduce((a, b) => a + b, 0) / share.length) : "–"],
    ["ranks reporting", `${s.ranksReporting}/${s.worldSize}`],
    ["points dropped", String(s.dropped)],
  ].map(([label, value]) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value", "data-card": label }, value))));

  const series = (pick, window) => run.ranks.map(r => ({
    name: `rank ${r.rank}`, color: color(r.rank), xs: r.steps.step, ys: window ? rolling(pick(r), window) : pick(r),
  }));
  lineChart(document.getElementById("chart-loss"), "Training loss (smoothed)", series(r => r.steps.smoothLoss), { xLabel: "step" });
  lineChart(document.getElementById("chart-accuracy"), "Validation accuracy per epoch", run.ranks.map(r => ({
    name: `rank ${r.rank}`, color: color(r.rank), xs: r.epochs.map(e => e.epoch), ys: r.epochs.map(e => e.accuracy),
  })), { xLabel: "epoch", yFormat: v => v.toFixed(3) });
  lineChart(document.getElementById("chart-lr"), "Learning rate (one cycle)", series(r => r.steps.learningRate), { xLabel: "step" });
  lineChart(document.getElementById("chart-throughput"), "Images/s per rank", series(r => r.steps.imagesPerSecond, 10), { xLabel: "step", yMin: 0 });
  lineChart(document.getElementById("chart-allreduce"), "All-reduce share of step time", series(r => r.steps.allReduceSeconds.map((a, i) => a / Math.max(r.steps.stepSeconds[i], 1e-9)), 10),
    { xLabel: "step", yMin: 0, yFormat: v => `${(v * 100).toFixed(0)}%` });
  lineChart(document.getElementById("chart-steptime"), "Step time and data wait (dashed), seconds", [
    ...series(r => r.steps.stepSeconds, 10),
    ...run.ranks.map(r => ({ name: `rank ${r.rank} data wait`, color: color(r.rank), dash: true, xs: r.steps.step, ys: rolling(r.steps.dataWaitSeconds, 10) })),
  ], { xLabel: "step", yMin: 0 });

  document.getElementById("ranks").replaceChildren(table(
    ["rank", "status", "host", "device", { label: "cores", num: true }, { label: "threads", num: true }, { label: "memory (process / machine)", num: true },
      "backend", { label: "steps", num: true }, { label: "images/s", num: true }, "all-reduce share", { label: "dropped", num: true }, "runtime"],
    run.ranks.map(r => {
      const h = r.hardware ?? {};
      const bar = el("span", { class: "bar" }, el("i", { style: `width:${Math.min(100, (r.allReduceShare ?? 0) * 100).toFixed(1)}%` }));
      return {
        attrs: { "data-rank": r.rank },
        cells: [el("span", { style: `color:${color(r.rank)}` }, `${r.rank} (local ${r.localRank})`), badge(r.status), h.host ?? "–",
          h.device ? h.device + (h.gpuMemoryBytes ? ` · ${bytes(h.gpuMemoryBytes)}` : "") : "–", h.cores ?? "–", h.threads ?? "–",
          `${bytes(r.memoryBytes)} / ${bytes(h.memoryBytes)}`, h.backend ?? "–", String(r.steps.count), formatNumber(r.imagesPerSecond ?? 0),
          el("span", {}, bar, percent(r.allReduceShare)), String(r.dropped), h.runtime ?? "–"],
      };
    })));

  const main = run.ranks.find(r => r.rank === 0) ?? run.ranks[0];
  document.getElementById("epochs").replaceChildren(main && main.epochs.length ? table(
    [{ label: "epoch", num: true }, { label: "train_loss", num: true }, { label: "valid_loss", num: true }, { label: "accuracy", num: true },
      { label: "images/s (rank 0)", num: true }, { label: "time", num: true }],
    main.epochs.map(e => ({ cells: [`${e.epoch}/${e.epochs}`, fixed(e.trainLoss, 4), fixed(e.validLoss, 4), fixed(e.accuracy, 4), formatNumber(e.imagesPerSecond), duration(e.durationSeconds)] })))
    : el("div", { class: "muted" }, "No epoch finished yet."));

  document.getElementById("config").replaceChildren(table(["setting", "value"],
    Object.entries(s.config).map(([k, v]) => ({ cells: [k, v] }))));
}

// The curves are fetched whole once, then only the steps after the ones held (everything else comes whole each time);
// a full fetch every minute picks up steps a restarted rank reported again. Thinned like the server's to MAX_POINTS.
const MAX_POINTS = 3000, FULL_EVERY = 60;
const held = new Map();
let refreshes = 0;

function lastStep(series) { return series.step.length ? series.step[series.step.length - 1] : 0; }

function merge(rank, incremental) {
  const mine = held.get(rank.rank);
  if (!incremental || !mine) {
    held.set(rank.rank, rank.steps);
    if (incremental) refreshes = 0; // a rank new to this page: fetch its earlier steps next time
    return;
  }
  const from = rank.steps.step.findIndex(step => step > lastStep(mine));
  if (from >= 0)
    for (const key of Object.keys(mine)) if (Array.isArray(mine[key])) mine[key].push(...rank.steps[key].slice(from));
  mine.count = rank.steps.count;
  if (mine.step.length > MAX_POINTS)
    for (const key of Object.keys(mine)) if (Array.isArray(mine[key])) mine[key] = mine[key].filter((_, i) => (mine.step.length - 1 - i) % 2 === 0);
  rank.steps = mine;
}

async function refresh() {
  try {
    const incremental = held.size > 0 && refreshes++ % FULL_EVERY !== 0;
    const after = incremental ? Math.min(...[...held.values()].map(lastStep)) : 0;
    const run = await getJson(`/api/runs/${encodeURIComponent(runId)}` + (after > 0 ? `?afterStep=${after}` : ""));
    for (const rank of run.ranks) merge(rank, after > 0);
    document.getElementById("error").textContent = "";
    render(run);
    setTimeout(refresh, run.summary.status === "running" ? 1000 : 10000);
  } catch (e) {
    document.getElementById("error").textContent = e.message;
    document.getElementById("progress-text").textContent = "This run has not reported yet; waiting for it…";
    setTimeout(refresh, 2000);
  }
}

refresh();
