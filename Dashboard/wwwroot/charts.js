// Line charts as SVG, drawn from scratch on every refresh: no dependencies, nothing to download.
// series: [{ name, color, dash, xs: number[], ys: number[] }]; options: { xLabel, yFormat, logY, yMin, yMax }
const NS = "http://www.w3.org/2000/svg";
export const palette = ["#479ef5", "#f7c948", "#54b054", "#f1707b", "#b891f5", "#4ec9c9", "#f59a47", "#d4d4d4"];

export function lineChart(container, title, series, options = {}) {
  const points = series.reduce((n, s) => n + s.xs.length, 0);
  container.classList.add("chart");
  container.dataset.points = String(points);
  container.replaceChildren();
  const h3 = document.createElement("h3");
  h3.textContent = title;
  container.append(h3);
  const height = 220, left = 56, right = 12, top = 10, bottom = 26;
  const width = Math.max(320, container.clientWidth - 24 || 600);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  container.append(svg);
  const xs = series.flatMap(s => s.xs), ys = series.flatMap(s => s.ys).filter(y => Number.isFinite(y) && (!options.logY || y > 0));
  if (xs.length === 0 || ys.length === 0) {
    text(svg, width / 2, height / 2, "waiting for data…", "middle", "empty");
    return;
  }
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  let y0 = options.yMin ?? Math.min(...ys), y1 = options.yMax ?? Math.max(...ys);
  if (options.logY) { y0 = Math.log10(y0); y1 = Math.log10(y1); }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const fy = y => options.logY ? Math.log10(y) : y;
  const px = x => left + (x - x0) / (x1 - x0) * (width - left - right);
  const py = y => top + (1 - (fy(y) - y0) / (y1 - y0)) * (height - top - bottom);
  const format = options.yFormat ?? (v => formatNumber(v));
  for (let i = 0; i <= 4; i++) {
    const v = y0 + (y1 - y0) * i / 4, y = top + (1 - i / 4) * (height - top - bottom);
    line(svg, left, y, width - right, y, "grid");
    text(svg, left - 6, y + 4, format(options.logY ? 10 ** v : v), "end");
  }
  // Steps and epochs are whole numbers: a short axis gets a tick per number, a long one five rounded ticks.
  const whole = xs.every(Number.isInteger) && x1 - x0 <= 8;
  const ticks = whole ? Array.from({ length: x1 - x0 + 1 }, (_, i) => x0 + i) : [0, 1, 2, 3, 4].map(i => x0 + (x1 - x0) * i / 4);
  ticks.forEach((v, i) => text(svg, px(v), height - 8, formatNumber(x1 - x0 >= 8 ? Math.round(v) : v),
    i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle"));
  if (options.xLabel) h3.append(Object.assign(document.createElement("span"), { className: "muted", textContent: ` by ${options.xLabel}` }));
  for (const s of series) {
    const d = [];
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (!Number.isFinite(y) || (options.logY && y <= 0)) continue;
      d.push(`${d.length ? "L" : "M"}${px(s.xs[i]).toFixed(1)},${py(y).toFixed(1)}`);
    }
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d.join(""));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", s.color);
    path.setAttribute("stroke-width", "1.6");
    if (s.dash) path.setAttribute("stroke-dasharray", "5 4");
    svg.append(path);
    if (s.xs.length <= 30) {
      for (let i = 0; i < s.xs.length; i++) {
        if (!Number.isFinite(s.ys[i])) continue;
        const c = document.createElementNS(NS, "circle");
        c.setAttribute("cx", px(s.xs[i])); c.setAttribute("cy", py(s.ys[i])); c.setAttribute("r", "2.5"); c.setAttribute("fill", s.color);
        svg.append(c);
      }
    }
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    item.style.setProperty("--c", s.color);
    item.textContent = s.name;
    legend.append(item);
  }
  container.append(legend);
}

function line(svg, x1, y1, x2, y2, cls) {
  const l = document.createElementNS(NS, "line");
  l.setAttribute("x1", x1); l.setAttribute("y1", y1); l.setAttribute("x2", x2); l.setAttribute("y2", y2);
  l.setAttribute("class", cls);
  svg.append(l);
}

function text(svg, x, y, content, anchor, cls) {
  const t = document.createElementNS(NS, "text");
  t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor);
  if (cls) t.setAttribute("class", cls);
  t.textContent = content;
  svg.append(t);
}

export function formatNumber(v) {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, "");
  if (a >= 0.01) return v.toFixed(3);
  return v.toExponential(1);
}
