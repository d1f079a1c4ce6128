// Slack's own data blocks on the demo page: data_visualization charts drawn as SVG, and
// data_table blocks as tables that sort (click a header) and page (page_size rows a page).
//
// Loaded before app.js, whose esc(), richText() and state it uses when it renders; every string
// from a block goes through esc() before it becomes HTML.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
// The chart's drawing width, and a label's width per character at the SVG's 11 px text.
const CHART_WIDTH = 520;
const CHAR_WIDTH = 6.6;

function number(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function short(n) {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${+(n / 1e3).toFixed(1)}K`;
  return n.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

// Tick labels in one unit for the whole axis: 0, 2K, 4K … 10K rather than 8,000 beside 10K.
function tickFormat(ticks) {
  const top = Math.max(...ticks.map(Math.abs));
  if (top >= 1e6) return (t) => `${+(t / 1e6).toFixed(2)}M`;
  if (top >= 1e4) return (t) => `${+(t / 1e3).toFixed(1)}K`;
  return (t) => t.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function textWidth(text) {
  return String(text).length * CHAR_WIDTH;
}

// The series' names in a row (wrapping when long), a swatch of each series' colour before it.
function legend(names, left, right, y) {
  let [x, row] = [left, 0];
  return names.map((name, i) => {
    const label = String(name).slice(0, 20);
    const width = 14 + textWidth(label) + 16;
    if (x + width > right && x > left) [x, row] = [left, row + 1];
    const at = y + row * 18;
    const html = `<g class="legend-item"><rect x="${x}" y="${at - 9}" width="10" height="10" rx="2" fill="${PALETTE[i % 6]}"/>` +
      `<text x="${x + 14}" y="${at}" class="legend">${esc(label)}</text></g>`;
    x += width;
    return html;
  }).join("");
}

function legendRows(names, left, right) {
  let [x, rows] = [left, 1];
  for (const name of names) {
    const width = 30 + textWidth(String(name).slice(0, 20));
    if (x + width > right && x > left) [x, rows] = [left, rows + 1];
    x += width;
  }
  return rows;
}

function pieSvg(segments) {
  const total = segments.reduce((sum, s) => sum + Math.max(number(s.value), 0), 0) || 1;
  let angle = -Math.PI / 2;
  const slices = segments.map((s, i) => {
    const share = Math.max(number(s.value), 0) / total;
    const end = angle + share * 2 * Math.PI;
    const [x1, y1, x2, y2] = [Math.cos(angle), Math.sin(angle), Math.cos(end), Math.sin(end)].map((v) => (100 * v).toFixed(2));
    const tip = `<title>${esc(s.label)}: ${esc(short(number(s.value)))} (${Math.round(100 * share)}%)</title>`;
    const path = share >= 0.9999 ? `<circle class="slice" cx="0" cy="0" r="100" fill="${PALETTE[i % 6]}">${tip}</circle>`
      : `<path class="slice" d="M0 0 L${x1} ${y1} A100 100 0 ${share > 0.5 ? 1 : 0} 1 ${x2} ${y2} Z" fill="${PALETTE[i % 6]}" stroke="#fff" stroke-width="1.5">${tip}</path>`;
    angle = end;
    return path;
  });
  const top = 120 - (segments.length * 24) / 2;
  const keys = segments.map((s, i) => `<g class="legend-item"><rect x="250" y="${top + i * 24}" width="12" height="12" rx="2" fill="${PALETTE[i % 6]}"/>` +
    `<text x="268" y="${top + 11 + i * 24}" class="legend">${esc(s.label)} · <tspan class="value">${esc(short(number(s.value)))}</tspan> (${Math.round((100 * Math.max(number(s.value), 0)) / total)}%)</text></g>`);
  return `<svg viewBox="0 0 ${CHART_WIDTH} 240" role="img"><g transform="translate(120 120)">${slices.join("")}</g>${keys.join("")}</svg>`;
}

// A bar, line or area chart: round ticks, the categories under the axis (slanted when they would
// touch), a legend when there are several series, and the values where they fit (else on hover).
function seriesSvg(kind, chart) {
  const categories = (chart.axis_config?.categories || []).map(String);
  const series = (chart.series || []).slice(0, 6);
  const axis = chart.axis_config || {};
  const values = series.flatMap((s) => (s.data || []).map((d) => number(d.value)));
  // Round ticks: a step of 1, 2, 2.5 or 5 times a power of ten, four or five of them.
  const span = Math.max(0, ...values) - Math.min(0, ...values) || 1;
  const power = 10 ** Math.floor(Math.log10(span / 4));
  const tick = [1, 2, 2.5, 5, 10].map((m) => m * power).find((t) => span / t <= 5);
  const [low, high] = [Math.floor(Math.min(0, ...values) / tick) * tick, Math.ceil(Math.max(0, ...values) / tick) * tick || tick];
  const ticks = Array.from({ length: Math.round((high - low) / tick) + 1 }, (_, i) => low + i * tick);
  const format = tickFormat(ticks);
  const left = 22 + Math.max(...ticks.map((t) => textWidth(format(t)))) + (axis.y_label ? 14 : 0);
  const right = CHART_WIDTH - 12;
  const step = (right - left) / Math.max(categories.length, 1);
  const widest = Math.max(0, ...categories.map(textWidth));
  const slanted = widest > step - 4;
  const labelDepth = slanted ? Math.min(widest, 130) * 0.6 + 14 : 16;
  const legendHeight = series.length > 1 ? legendRows(series.map((s) => s.name), left, right) * 18 : 0;
  const top = 22 + legendHeight;
  const bottom = top + 172;
  const height = bottom + labelDepth + (axis.x_label ? 22 : 6);
  const y = (v) => bottom - ((v - low) / (high - low)) * (bottom - top);
  const x = (i) => left + (i + 0.5) * step;
  let html = ticks.map((t) => `<line x1="${left}" x2="${right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="${t === 0 ? "grid zero" : "grid"}"/>` +
    `<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" class="tick" text-anchor="end">${esc(format(t))}</text>`).join("");
  html += categories.map((c, i) => (slanted
    ? `<text x="${x(i).toFixed(1)}" y="${bottom + 14}" class="tick category" text-anchor="end" transform="rotate(-35 ${x(i).toFixed(1)} ${bottom + 14})">${esc(c)}</text>`
    : `<text x="${x(i).toFixed(1)}" y="${bottom + 16}" class="tick category" text-anchor="middle">${esc(c)}</text>`)).join("");
  const at = (s, label) => number((s.data || []).find((d) => String(d.label) === label)?.value);
  const labelled = (width) => categories.every((c) => series.every((s) => textWidth(short(at(s, c))) <= width));
  series.forEach((s, k) => {
    const color = PALETTE[k % 6];
    const name = esc(s.name);
    if (kind === "bar") {
      const width = (step * 0.8) / series.length;
      const showValues = labelled(width + 2);
      html += categories.map((c, i) => {
        const v = at(s, c);
        const [barTop, barBottom] = [Math.min(y(v), y(0)), Math.max(y(v), y(0))];
        const middle = x(i) - step * 0.4 + k * width + (width - 2) / 2;
        const label = showValues
          ? `<text x="${middle.toFixed(1)}" y="${(v < 0 ? barBottom + 12 : barTop - 4).toFixed(1)}" class="value" text-anchor="middle">${esc(short(v))}</text>`
          : "";
        return `<rect class="bar" x="${(x(i) - step * 0.4 + k * width).toFixed(1)}" y="${barTop.toFixed(1)}" width="${Math.max(width - 2, 1).toFixed(1)}" height="${(barBottom - barTop).toFixed(1)}" rx="2" fill="${color}"><title>${name} · ${esc(c)}: ${esc(short(v))}</title></rect>${label}`;
      }).join("");
    } else {
      const points = categories.map((c, i) => `${x(i).toFixed(1)},${y(at(s, c)).toFixed(1)}`);
      if (kind === "area") html += `<polygon class="area" points="${x(0).toFixed(1)},${y(0).toFixed(1)} ${points.join(" ")} ${x(categories.length - 1).toFixed(1)},${y(0).toFixed(1)}" fill="${color}" opacity="${series.length > 1 ? 0.18 : 0.25}"/>`;
      html += `<polyline class="line" points="${points.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`;
      html += categories.map((c, i) => `<circle class="point" cx="${x(i).toFixed(1)}" cy="${y(at(s, c)).toFixed(1)}" r="3" fill="${color}"><title>${name} · ${esc(c)}: ${esc(short(at(s, c)))}</title></circle>`).join("");
      // One series: its values over the points where they fit; several: on hover only.
      if (series.length === 1 && labelled(step - 2)) {
        html += categories.map((c, i) => `<text x="${x(i).toFixed(1)}" y="${(y(at(s, c)) - 8).toFixed(1)}" class="value" text-anchor="middle">${esc(short(at(s, c)))}</text>`).join("");
      }
    }
  });
  if (series.length > 1) html += legend(series.map((s) => s.name), left, right, 14);
  if (axis.x_label) html += `<text x="${(left + right) / 2}" y="${height - 6}" class="axis" text-anchor="middle">${esc(axis.x_label)}</text>`;
  if (axis.y_label) html += `<text x="12" y="${(top + bottom) / 2}" class="axis" text-anchor="middle" transform="rotate(-90 12 ${(top + bottom) / 2})">${esc(axis.y_label)}</text>`;
  return `<svg viewBox="0 0 ${CHART_WIDTH} ${Math.ceil(height)}" role="img">${html}</svg>`;
}

// A data_visualization block: Slack draws it itself; the page draws it as SVG.
function chartBlock(b) {
  const chart = b.chart || {};
  const kind = ["pie", "bar", "line", "area"].includes(chart.type) ? chart.type : null;
  if (!kind) return `<div class="block bk-unknown">[${esc(chart.type)} chart]</div>`;
  const svg = kind === "pie" ? pieSvg((chart.segments || []).slice(0, 6)) : seriesSvg(kind, chart);
  return `<figure class="block chart" data-chart="${kind}" aria-label="${esc(b.title)}"><figcaption>${esc(b.title)}</figcaption>${svg}</figure>`;
}

// --------------------------------------------------------------------------- data tables

function cellText(value) {
  if (value?.type === "rich_text") {
    const words = [];
    const walk = (node) => {
      if (typeof node?.text === "string") words.push(node.text);
      (node?.elements || []).forEach(walk);
    };
    walk(value);
    return words.join("");
  }
  return String(value?.text ?? value?.value ?? "");
}

// Slack's order: numbers (raw_number) by their value, before text; text by its words.
function compareCells(a, b) {
  const [x, y] = [a?.type === "raw_number", b?.type === "raw_number"];
  if (x && y) return number(a.value) - number(b.value);
  if (x !== y) return x ? -1 : 1;
  return cellText(a).localeCompare(cellText(b), "en", { sensitivity: "base", numeric: false });
}

function tableCell(tag, value, scope) {
  const attrs = `${scope ? ` scope="${scope}"` : ""}${value?.type === "raw_number" ? ' class="align-right"' : ""}`;
  const html = value?.type === "rich_text" ? richText(value) : esc(cellText(value));
  return `<${tag}${attrs}>${html}</${tag}>`;
}

// A data_table block: its caption, a header to sort by, page_size rows a page (Slack's default 5).
// ``id`` keys how the person sorted and paged it (state.tables); null: shown as sent (streaming).
function dataTable(b, id) {
  const [head = [], ...rows] = Array.isArray(b.rows) ? b.rows : [];
  const size = Math.min(Math.max(Math.trunc(number(b.page_size ?? 5)) || 5, 1), 100);
  const rowHeader = Math.trunc(number(b.row_header_column_index ?? 0));
  const view = (id && state.tables.get(id)) || { column: null, descending: false, page: 0 };
  const order = rows.map((_, i) => i);
  if (view.column !== null) {
    order.sort((i, j) => compareCells(rows[i][view.column], rows[j][view.column]) * (view.descending ? -1 : 1));
  }
  const pages = Math.max(Math.ceil(rows.length / size), 1);
  const page = Math.min(view.page, pages - 1);
  const shown = order.slice(page * size, (page + 1) * size);
  const key = id === null ? "" : esc(id);
  const header = head.map((value, column) => {
    if (id === null) return tableCell("th", value, "col");
    const sorted = view.column === column ? (view.descending ? "descending" : "ascending") : "none";
    const arrow = sorted === "ascending" ? "▲" : sorted === "descending" ? "▼" : "";
    const numeric = rows.length && rows.every((row) => row[column]?.type === "raw_number") ? ' class="numeric"' : "";
    return `<th scope="col"${numeric} aria-sort="${sorted}"><button type="button" class="sort" data-table="${key}" data-column="${column}" title="Sort by ${esc(cellText(value))}">` +
      `${esc(cellText(value))}<span class="arrow" aria-hidden="true">${arrow}</span></button></th>`;
  }).join("");
  const body = shown.map((r) => `<tr>${rows[r].map((value, column) => (column === rowHeader ? tableCell("th", value, "row") : tableCell("td", value, ""))).join("")}</tr>`).join("");
  const first = rows.length ? page * size + 1 : 0;
  const last = Math.min((page + 1) * size, rows.length);
  const pager = pages > 1 && id !== null
    ? `<div class="pager"><span class="range">${first}–${last} of ${rows.length}</span>` +
      `<button type="button" data-table="${key}" data-page="${page - 1}" aria-label="Previous page"${page === 0 ? " disabled" : ""}>‹</button>` +
      `<button type="button" data-table="${key}" data-page="${page + 1}" aria-label="Next page"${page === pages - 1 ? " disabled" : ""}>›</button></div>`
    : "";
  return `<div class="block data-table-wrap" data-page="${page + 1}" data-pages="${pages}"><div class="table-wrap"><table class="md-table data-table">` +
    `<caption>${esc(b.caption)} · ${rows.length} ${rows.length === 1 ? "row" : "rows"}</caption>` +
    `<thead><tr>${header}</tr></thead><tbody>${body}</tbody></table></div>${pager}</div>`;
}

// A click on a data table's header (sort by it; again: the other way) or its pager.
function tableAction(data) {
  const view = state.tables.get(data.table) || { column: null, descending: false, page: 0 };
  if (data.column !== undefined) {
    const column = Number(data.column);
    view.descending = view.column === column ? !view.descending : false;
    view.column = column;
    view.page = 0;
  } else if (data.page !== undefined) view.page = Math.max(Number(data.page), 0);
  state.tables.set(data.table, view);
}
