// Time-series charts on <canvas>: bars (profile totals per bucket), lines (runtime gauges)
// and dots (one point per GC pause), all over one shared x range so that charts stacked on
// a page line up. Dragging across a chart selects a range (onSelect(fromMs, toMs)).

import { clock, dateTime, label, esc } from './format.js';

const PAD_L = 64, PAD_R = 12, PAD_T = 8, PAD_B = 20;
export const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#999999'];

/** Gives a chart its host, options, a canvas and a legend row below it. */
function mountCanvas(chart, host, o, className) {
  chart.host = host;
  chart.o = o;
  chart.canvas = document.createElement('canvas');
  chart.canvas.className = className;
  chart.canvas.setAttribute('role', 'img');
  chart.legend = document.createElement('div');
  chart.legend.className = 'legend-row';
  host.append(chart.canvas, chart.legend);
}

export class TimeChart {
  /**
   * @param {HTMLElement} host  the chart's box (a canvas is added to it)
   * @param {object} o  { height, unit, onSelect(from, to), tooltip, empty }
   */
  constructor(host, o = {}) {
    mountCanvas(this, host, o, 'chart');
    this.series = [];
    this.range = [0, 1];
    this.drag = null;
    this.hoverX = null;
    const c = this.canvas;
    // Pointer capture keeps the drag on this chart even when the pointer leaves it.
    c.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      c.setPointerCapture(e.pointerId);
      this.drag = { a: e.offsetX, b: e.offsetX };
    });
    c.addEventListener('pointermove', (e) => {
      if (this.drag) this.drag.b = Math.max(0, Math.min(e.offsetX, c.clientWidth));
      this.hoverX = e.offsetX;
      this.render();
      this.tip(e);
    });
    c.addEventListener('pointerleave', () => { this.hoverX = null; this.render(); if (this.o.tooltip) this.o.tooltip.hidden = true; });
    c.addEventListener('pointerup', (e) => {
      if (!this.drag) return;
      const { a, b } = this.drag;
      this.drag = null;
      this.render();
      if (Math.abs(b - a) > 4 && this.o.onSelect) {
        const t1 = this.timeAt(Math.min(a, b)), t2 = this.timeAt(Math.max(a, b));
        this.o.onSelect(Math.round(t1), Math.round(t2), e);
      }
    });
    c.addEventListener('pointercancel', () => { this.drag = null; this.render(); });
    new ResizeObserver(() => this.render()).observe(host);
  }

  /** series: [{ name, points: [[ms, v]], kind: 'bar'|'line'|'dots', color }]; range [ms, ms]. */
  /** bands: [{ from, to, label, color? }] shaded behind the data (e.g. Compare's base and head); color is a CSS variable. */
  /** markers: [{ t, label, color }] drawn as ticks along the top (e.g. stop-the-world pauses from execution traces). */
  set(series, range, { unit = this.o.unit, step = 0, bands = [], markers = [] } = {}) {
    this.series = series;
    this.markers = markers;
    this.range = range;
    this.unit = unit;
    this.step = step;
    this.bands = bands;
    const named = series.filter((s) => s.name);
    this.legend.innerHTML = named.length > 1 || this.o.legend
      ? named.map((s) => `<span><i style="background:${s.color || PALETTE[series.indexOf(s) % PALETTE.length]}"></i>${esc(s.name)}</span>`).join('')
      : '';
    this.render();
  }

  timeAt(px) {
    const w = this.canvas.clientWidth - PAD_L - PAD_R;
    return this.range[0] + ((px - PAD_L) / w) * (this.range[1] - this.range[0]);
  }

  xOf(t) {
    const w = this.canvas.clientWidth - PAD_L - PAD_R;
    return PAD_L + ((t - this.range[0]) / (this.range[1] - this.range[0] || 1)) * w;
  }

  render() {
    const c = this.canvas, ctx = c.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const W = this.host.clientWidth, H = this.o.height || 110;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
      c.style.width = W + 'px'; c.style.height = H + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const st = getComputedStyle(document.documentElement);
    const fg = st.getPropertyValue('--muted').trim(), grid = st.getPropertyValue('--grid').trim();
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    let max = 0;
    for (const s of this.series) for (const [, v] of s.points) if (v > max) max = v;
    const empty = max === 0;
    if (empty) max = 1;
    const plotH = H - PAD_T - PAD_B;
    const yOf = (v) => PAD_T + plotH - (v / max) * plotH;
    // Grid and axes.
    ctx.strokeStyle = grid; ctx.fillStyle = fg; ctx.lineWidth = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (let k = 0; k <= 2; k++) {
      const v = (max * k) / 2, y = Math.round(yOf(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(PAD_L, y); ctx.lineTo(W - PAD_R, y); ctx.stroke();
      if (!empty) ctx.fillText(this.unit === '%' ? (v * 100).toFixed(1) + '%' : label(v, this.unit || ''), PAD_L - 6, y);
    }
    const span = this.range[1] - this.range[0];
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    // Ticks at least 110 px and (labels having seconds at most) a second apart.
    const ticks = Math.max(2, Math.min(Math.floor((W - PAD_L - PAD_R) / 110), Math.floor(span / 1000)));
    for (let k = 0; k <= ticks; k++) {
      const t = this.range[0] + (span * k) / ticks;
      ctx.fillText(clock(t, span), Math.min(Math.max(this.xOf(t), PAD_L + 20), W - PAD_R - 20), H - PAD_B + 5);
    }
    // Bands (the base and head ranges in Compare).
    for (const b of this.bands || []) {
      const a = Math.max(PAD_L, this.xOf(b.from)), z = Math.min(W - PAD_R, this.xOf(b.to));
      // A band's own colour (a CSS variable, e.g. Compare's base and head), faint.
      ctx.fillStyle = st.getPropertyValue(b.color || '--select').trim();
      if (b.color) ctx.globalAlpha = 0.18;
      ctx.fillRect(a, PAD_T, Math.max(2, z - a), plotH);
      ctx.globalAlpha = 1;
      ctx.fillStyle = b.color ? st.getPropertyValue(b.color).trim() : fg; ctx.textAlign = 'left'; ctx.textBaseline = 'top';
      ctx.fillText(b.label, a + 3, PAD_T + 2);
    }
    // Data.
    this.series.forEach((s, si) => {
      const color = s.color || PALETTE[si % PALETTE.length];
      ctx.fillStyle = color; ctx.strokeStyle = color;
      if (s.kind === 'bar') {
        const bw = Math.max(1, this.xOf(this.range[0] + (this.step || span / 120)) - this.xOf(this.range[0]) - 1);
        for (const [t, v] of s.points) ctx.fillRect(this.xOf(t), yOf(v), bw, PAD_T + plotH - yOf(v));
      } else if (s.kind === 'dots') {
        for (const [t, v] of s.points) { ctx.beginPath(); ctx.arc(this.xOf(t), yOf(v), 2.5, 0, 7); ctx.fill(); }
      } else {
        ctx.lineWidth = 1.5; ctx.beginPath();
        s.points.forEach(([t, v], k) => (k ? ctx.lineTo(this.xOf(t), yOf(v)) : ctx.moveTo(this.xOf(t), yOf(v))));
        ctx.stroke();
      }
    });
    // Markers: a tick from the top per event (pauses, assists), over the data.
    for (const m of this.markers || []) {
      const x = Math.round(this.xOf(m.t)) + 0.5;
      if (x < PAD_L || x > W - PAD_R) continue;
      ctx.strokeStyle = m.color || '#d55e00'; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, PAD_T); ctx.lineTo(x, PAD_T + 8); ctx.stroke();
    }
    if (!this.series.some((s) => s.points.length)) {
      ctx.fillStyle = fg; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.fillText(this.o.empty || 'no data in this range', W / 2, PAD_T + plotH / 2);
    }
    if (this.drag) {
      ctx.fillStyle = st.getPropertyValue('--select').trim();
      const a = Math.min(this.drag.a, this.drag.b), b = Math.max(this.drag.a, this.drag.b);
      ctx.fillRect(a, PAD_T, b - a, plotH);
    } else if (this.hoverX != null && this.hoverX > PAD_L) {
      ctx.strokeStyle = fg; ctx.beginPath(); ctx.moveTo(this.hoverX + 0.5, PAD_T); ctx.lineTo(this.hoverX + 0.5, PAD_T + plotH); ctx.stroke();
    }
  }

  /** Shows the nearest point of each series under the pointer. */
  tip(e) {
    const tip = this.o.tooltip;
    if (!tip || this.drag) return;
    const t = this.timeAt(e.offsetX);
    const rows = [];
    for (const s of this.series) {
      let best = null;
      for (const p of s.points) if (!best || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      if (best && Math.abs(this.xOf(best[0]) - e.offsetX) < 30) {
        const v = this.unit === '%' ? (best[1] * 100).toFixed(2) + '%' : label(best[1], this.unit || '');
        rows.push(`<tr><th>${esc(s.name || '')}</th><td>${esc(v)}</td><td class="muted">${dateTime(best[0])}</td></tr>`);
      }
    }
    const near = (this.markers || []).filter((m) => Math.abs(this.xOf(m.t) - e.offsetX) < 4).slice(0, 6);
    for (const m of near) rows.push(`<tr><th>${esc(m.label)}</th><td></td><td class="muted">${dateTime(m.t)}</td></tr>`);
    if (!rows.length) { tip.hidden = true; return; }
    tip.innerHTML = `<table>${rows.join('')}</table>`;
    tip.hidden = false;
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + 'px';
    tip.style.top = e.clientY + 16 + 'px';
  }
}

/**
 * A heatmap of counts on <canvas>: x = time columns over a range, y = buckets (bottom = the
 * first), colour = count (log-scaled from faint to the accent colour). For GC pauses: one
 * column per `step_ms`, one row per pause bucket `le` plus one for longer pauses.
 */
export class Heatmap {
  /** @param {HTMLElement} host  @param {object} o  { height, tooltip, rowLabel(i) } */
  constructor(host, o = {}) {
    mountCanvas(this, host, o, 'chart heatmap');
    this.data = { step_ms: 1, columns: [] };
    this.rows = 1;
    this.range = [0, 1];
    this.cells = [];
    this.drawn = 0;
    this.canvas.addEventListener('pointermove', (e) => this.tip(e));
    this.canvas.addEventListener('pointerleave', () => { if (this.o.tooltip) this.o.tooltip.hidden = true; });
    new ResizeObserver(() => this.render()).observe(host);
  }

  /** data: { step_ms, columns: [[ms, [count per row]]] }; rows: row count; range [ms, ms]. */
  set(data, rows, range) {
    this.data = data;
    this.rows = rows;
    this.range = range;
    this.max = 0;
    for (const [, counts] of data.columns) for (const c of counts) if (c > this.max) this.max = c;
    this.legend.innerHTML = this.max
      ? `<span>pauses per cell</span><span>1 <i class="ramp"></i> ${this.max}</span>`
      : '';
    this.canvas.setAttribute('aria-label', `heatmap: ${data.columns.length} columns of ${rows} buckets, at most ${this.max} per cell`);
    this.render();
  }

  xOf(t) {
    const w = this.canvas.clientWidth - PAD_L - PAD_R;
    return PAD_L + ((t - this.range[0]) / (this.range[1] - this.range[0] || 1)) * w;
  }

  render() {
    const c = this.canvas, ctx = c.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const W = this.host.clientWidth, H = this.o.height || 180;
    if (!W) return;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
      c.style.width = W + 'px'; c.style.height = H + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const st = getComputedStyle(document.documentElement);
    const fg = st.getPropertyValue('--muted').trim(), grid = st.getPropertyValue('--grid').trim();
    const accent = st.getPropertyValue('--accent').trim();
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    const plotH = H - PAD_T - PAD_B, rowH = plotH / this.rows;
    const yOf = (row) => PAD_T + plotH - (row + 1) * rowH;
    // Row labels (every other one when rows are thin) and the time axis.
    ctx.fillStyle = fg; ctx.strokeStyle = grid; ctx.lineWidth = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    const every = rowH < 12 ? 2 : 1;
    for (let r = 0; r < this.rows; r++) {
      if (r % every === 0 && this.o.rowLabel) ctx.fillText(this.o.rowLabel(r), PAD_L - 6, yOf(r) + rowH / 2);
    }
    ctx.strokeRect(PAD_L + 0.5, PAD_T + 0.5, W - PAD_L - PAD_R - 1, plotH - 1);
    const span = this.range[1] - this.range[0];
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    const ticks = Math.max(2, Math.min(Math.floor((W - PAD_L - PAD_R) / 110), Math.floor(span / 1000)));
    for (let k = 0; k <= ticks; k++) {
      const t = this.range[0] + (span * k) / ticks;
      ctx.fillText(clock(t, span), Math.min(Math.max(this.xOf(t), PAD_L + 20), W - PAD_R - 20), H - PAD_B + 5);
    }
    // Cells: opacity from log(1 + count) over log(1 + max), at least 0.18 so 1 shows.
    this.cells = [];
    this.drawn = 0;
    ctx.fillStyle = accent;
    const lmax = Math.log1p(this.max || 1);
    for (const [t, counts] of this.data.columns) {
      const x0 = Math.max(PAD_L, this.xOf(t)), x1 = Math.min(W - PAD_R, this.xOf(t + this.data.step_ms));
      if (x1 <= PAD_L || x0 >= W - PAD_R) continue;
      const w = Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0));
      counts.forEach((n, r) => {
        if (!n) return;
        ctx.globalAlpha = 0.18 + 0.82 * (Math.log1p(n) / lmax);
        const y = yOf(r);
        ctx.fillRect(x0, y + 0.5, w, Math.max(1, rowH - 1));
        this.cells.push([x0, y, w, rowH, t, r, n]);
      });
      this.drawn++;
    }
    ctx.globalAlpha = 1;
    if (!this.data.columns.length) {
      ctx.fillStyle = fg; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.fillText(this.o.empty || 'no pauses in this range', W / 2, PAD_T + plotH / 2);
    }
  }

  /** The cell under the pointer: its time, bucket and count. */
  tip(e) {
    const tip = this.o.tooltip;
    if (!tip) return;
    const cell = this.cells.find(([x, y, w, h]) => e.offsetX >= x && e.offsetX < x + Math.max(w, 2) && e.offsetY >= y && e.offsetY < y + h);
    if (!cell) { tip.hidden = true; return; }
    const [, , , , t, r, n] = cell;
    tip.innerHTML = `<table><tr><th>${esc(this.o.rowTitle ? this.o.rowTitle(r) : String(r))}</th><td>${n}</td></tr>
      <tr><th>from</th><td class="muted">${dateTime(t)}</td></tr><tr><th>to</th><td class="muted">${dateTime(t + this.data.step_ms)}</td></tr></table>`;
    tip.hidden = false;
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + 'px';
    tip.style.top = e.clientY + 16 + 'px';
  }
}
