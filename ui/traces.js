// Traces: the service's execution-trace captures in the range (each downloadable: `go tool
// trace` opens it) and, for the one chosen (`trace=<id>` in the URL), its numbers and a
// per-P timeline — which goroutine ran on which proc when, with the GC's mark phase, its
// stop-the-world pauses and mark assists as bands — zoomed with the wheel (or + / −), panned
// by dragging, reset with a double click (or 0).

import { getJSON, selector, apiUrl } from './api.js';
import { esc, label, dateTime } from './format.js';
import { PALETTE } from './charts.js';

const ROW = 18, LABEL_W = 56, TOP = 4;

export function mount(root, app) {
  root.innerHTML = `<div class="error" id="tr-error" role="alert"></div>
    <div class="panel"><h3>Execution traces</h3>
      <div class="tablebox"><table class="data" id="tr-list" aria-label="Execution traces">
      <thead><tr><th class="name">taken</th><th class="name">instance</th><th>size</th><th></th><th></th></tr></thead>
      <tbody></tbody></table></div>
      <div class="hint">Scrape them with <code>profiles = [..., "trace"]</code> (every 5 minutes by default) or upload one: <code>gocost trace upload --job NAME app.trace</code>.</div></div>
    <div class="panel" id="tr-one" hidden><h3 id="tr-title">Trace</h3>
      <div id="tr-summary" class="tr-summary"></div>
      <div class="toolbar"><button type="button" id="tr-in" title="Zoom in (+)">+</button>
        <button type="button" id="tr-out" title="Zoom out (_)">−</button>
        <button type="button" id="tr-reset" title="Whole trace (0)">whole trace</button>
        <span class="muted" id="tr-window"></span></div>
      <canvas id="tr-canvas" class="trace-canvas" role="img" aria-label="Per-P timeline"></canvas>
      <div class="hint">Wheel or + / − to zoom, drag to pan, double-click for the whole trace. Rows: GC mark phase, stop-the-world pauses, mark assists, then each P with the goroutines it ran (coloured by start function).</div></div>`;
  const $ = (id) => root.querySelector(id);
  const err = $('#tr-error');
  let ctrl = null, list = [], data = null, summary = null;
  const viewer = new Viewer($('#tr-canvas'), app.tooltip, (v) => {
    $('#tr-window').textContent = data ? `${label(v[0], 'nanoseconds')} – ${label(v[1], 'nanoseconds')} of ${label(data.duration_ns, 'nanoseconds')}` : '';
  });

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const s = app.state;
    document.body.dataset.ready = '';
    err.textContent = '';
    try {
      list = await getJSON('traces', { query: selector('trace', s.job, s.sel), from: s.from, to: s.to }, { signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      err.textContent = e.message; list = [];
    }
    $('#tr-list tbody').innerHTML = list.length ? list.slice().reverse().map((t) => `<tr data-id="${esc(t.id)}"${t.id === s.trace ? ' aria-current="true"' : ''}>
      <td class="name">${esc(dateTime(t.time_ms))}</td><td class="name">${esc(t.labels.instance || '')}</td>
      <td>${esc(label(t.bytes, 'bytes'))}</td>
      <td><a href="?${new URLSearchParams({ ...paramsOf(s), trace: t.id })}" data-open="${esc(t.id)}">view</a></td>
      <td><a href="${apiUrl('trace/' + t.id)}" download="${esc(t.id)}.trace">download</a></td></tr>`).join('')
      : '<tr><td colspan="5" class="empty">No execution traces in this range.</td></tr>';
    for (const a of root.querySelectorAll('[data-open]')) a.addEventListener('click', (e) => { e.preventDefault(); app.set({ trace: a.dataset.open }, true); });
    await loadOne(signal);
    if (signal.aborted) return;
    document.body.dataset.ready = 'traces';
  }

  async function loadOne(signal) {
    const id = app.state.trace;
    $('#tr-one').hidden = !id;
    data = null; summary = null;
    if (!id) return;
    try {
      [summary, data] = await Promise.all([
        getJSON(`trace/${encodeURIComponent(id)}/summary`, {}, { signal }),
        getJSON(`trace/${encodeURIComponent(id)}/timeline`, {}, { signal }),
      ]);
    } catch (e) {
      if (e.name === 'AbortError') return;
      err.textContent = e.message;
      $('#tr-one').hidden = true;
      return;
    }
    const t = summary.trace;
    $('#tr-title').innerHTML = `Trace of ${esc(t.labels.job || '')} ${esc(t.labels.instance || '')} at ${esc(dateTime(t.time_ms))} · <a href="${apiUrl('trace/' + t.id)}" download="${esc(t.id)}.trace">download</a> (<code>go tool trace</code> opens it)`;
    const d = (x) => label(x, 'nanoseconds');
    const mmu = summary.mmu.map((m) => `${d(m.window_ns)} ${(m.mmu * 100).toFixed(1)}%`).join(', ');
    $('#tr-summary').innerHTML = `<table class="data kv" id="tr-numbers">
      <tr><th>duration</th><td>${d(summary.duration_ns)}</td><th>GOMAXPROCS</th><td>${summary.gomaxprocs}</td><th>goroutines</th><td>${summary.goroutines}</td></tr>
      <tr><th>stop-the-world</th><td data-k="stw">${summary.stw.count} pauses, max ${d(summary.stw.max_ns)}, total ${d(summary.stw.total_ns)}</td>
        <th>sched latency</th><td data-k="sched">p50 ${d(summary.sched_latency.p50_ns)}, p99 ${d(summary.sched_latency.p99_ns)}, max ${d(summary.sched_latency.max_ns)}</td>
        <th>mark assists</th><td data-k="assist" title="The share of the procs' time assists took from the program (as the MMU view counts them)">${(summary.assist_fraction * 100).toFixed(2)}% of the procs</td></tr>
      <tr><th>MMU</th><td colspan="5" data-k="mmu">${esc(mmu)}</td></tr></table>`;
    viewer.setData(data);
  }

  const on = (id, ev, f) => $(id).addEventListener(ev, f);
  on('#tr-in', 'click', () => viewer.zoom(0.5));
  on('#tr-out', 'click', () => viewer.zoom(2));
  on('#tr-reset', 'click', () => viewer.reset());
  load();
  return {
    update(changed) {
      if (['job', 'sel', 'from', 'to', 'reload'].some((k) => changed.has(k))) load();
      else if (changed.has('trace')) {
        for (const tr of root.querySelectorAll('#tr-list tbody tr')) {
          if (tr.dataset.id === app.state.trace) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
        }
        document.body.dataset.ready = '';
        ctrl?.abort();
        ctrl = new AbortController();
        const signal = ctrl.signal;
        loadOne(signal).then(() => { if (!signal.aborted) document.body.dataset.ready = 'traces'; });
      } else if (changed.has('theme')) viewer.render();
    },
    unmount() { ctrl?.abort(); app.tooltip.hidden = true; },
    onKey(e) {
      if (e.key === '+' || e.key === '=') viewer.zoom(0.5);
      else if (e.key === '_') viewer.zoom(2);
      else if (e.key === '0') viewer.reset();
      else return false;
      return true;
    },
    viewer,
    get list() { return list; },
    get data() { return data; },
    get summary() { return summary; },
  };
}

function paramsOf(s) {
  const p = { view: 'traces' };
  for (const k of ['job', 'sel', 'from', 'to']) if (s[k]) p[k] = s[k];
  return p;
}

/** The per-P timeline on a canvas: a visible window [v0, v1] in ns from the trace's start. */
export class Viewer {
  constructor(canvas, tooltip, onView) {
    this.c = canvas;
    this.tooltip = tooltip;
    this.onView = onView;
    this.data = null;
    this.view = [0, 1];
    this.drawn = 0;
    const c = canvas;
    c.addEventListener('wheel', (e) => {
      if (!this.data) return;
      e.preventDefault();
      this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.timeAt(e.offsetX));
    }, { passive: false });
    c.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      c.setPointerCapture(e.pointerId);
      this.drag = { x: e.offsetX, view: this.view.slice() };
    });
    c.addEventListener('pointermove', (e) => {
      if (this.drag) {
        const dt = ((e.offsetX - this.drag.x) / this.plotW()) * (this.drag.view[1] - this.drag.view[0]);
        this.setView(this.drag.view[0] - dt, this.drag.view[1] - dt);
      } else this.tip(e);
    });
    c.addEventListener('pointerup', () => { this.drag = null; });
    c.addEventListener('pointercancel', () => { this.drag = null; });
    c.addEventListener('pointerleave', () => { if (this.tooltip) this.tooltip.hidden = true; });
    c.addEventListener('dblclick', () => this.reset());
    new ResizeObserver(() => this.render()).observe(c.parentElement);
  }

  setData(d) {
    this.data = d;
    // Per P: its slices, sorted by start (the API sorts them by P, then start).
    this.rows = new Map(d.procs.map((p) => [p, []]));
    for (const s of d.slices) this.rows.get(s[0])?.push(s);
    this.reset();
  }

  plotW() { return Math.max(1, this.c.clientWidth - LABEL_W - 8); }
  xOf(t) { return LABEL_W + ((t - this.view[0]) / (this.view[1] - this.view[0])) * this.plotW(); }
  timeAt(x) { return this.view[0] + ((x - LABEL_W) / this.plotW()) * (this.view[1] - this.view[0]); }

  reset() { if (this.data) this.setView(0, Math.max(1, this.data.duration_ns)); }

  /** Scales the window by `f` around `at` (default: its centre). */
  zoom(f, at) {
    const [a, b] = this.view;
    const c = at ?? (a + b) / 2;
    this.setView(c - (c - a) * f, c + (b - c) * f);
  }

  setView(a, b) {
    const end = Math.max(1, this.data?.duration_ns || 1);
    let w = Math.min(Math.max(b - a, 1000), end); // at least 1 µs, at most the trace
    a = Math.min(Math.max(a, 0), end - w);
    this.view = [a, a + w];
    this.render();
    this.onView?.(this.view);
  }

  bands() {
    const d = this.data;
    return [
      ['GC', d.gc.map(([s, e]) => [s, e, 'GC mark phase']), '#009e73'],
      ['STW', d.stw.map(([s, e, r]) => [s, e, `stop-the-world: ${r}`]), '#d55e00'],
      ['assist', d.assists.map(([, s, e]) => [s, e, 'GC mark assist']), '#cc79a7'],
    ];
  }

  render() {
    const c = this.c, ctx = c.getContext('2d');
    const d = this.data;
    const rows = d ? 3 + d.procs.length : 1;
    const W = c.parentElement.clientWidth, H = TOP + rows * ROW + 4;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
      c.style.width = W + 'px'; c.style.height = H + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!d) return;
    const st = getComputedStyle(document.documentElement);
    const fg = st.getPropertyValue('--muted').trim(), grid = st.getPropertyValue('--grid').trim();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    let drawn = 0;
    const [v0, v1] = this.view;
    const x1 = LABEL_W + this.plotW();
    const drawRow = (y, items, color) => {
      let last = -1;
      for (const [s, e, colorOf] of items) {
        if (e < v0 || s > v1) continue;
        const a = Math.max(LABEL_W, this.xOf(s)), b = Math.min(x1, this.xOf(e));
        // Slices narrower than a pixel share it: one mark per pixel column.
        if (b - a < 1 && Math.floor(a) <= last) continue;
        ctx.fillStyle = colorOf || color;
        ctx.fillRect(a, y + 2, Math.max(1, b - a), ROW - 4);
        last = Math.floor(Math.max(a, b));
        drawn++;
      }
    };
    this.bands().forEach(([name, items, color], i) => {
      const y = TOP + i * ROW;
      ctx.fillStyle = fg; ctx.textAlign = 'left'; ctx.fillText(name, 4, y + ROW / 2);
      drawRow(y, items.map(([s, e]) => [s, e]), color);
    });
    d.procs.forEach((p, i) => {
      const y = TOP + (3 + i) * ROW;
      ctx.strokeStyle = grid; ctx.beginPath(); ctx.moveTo(LABEL_W, y + 0.5); ctx.lineTo(x1, y + 0.5); ctx.stroke();
      ctx.fillStyle = fg; ctx.textAlign = 'left'; ctx.fillText(`P${p}`, 4, y + ROW / 2);
      const sl = this.rows.get(p) || [];
      // First slice that may be visible: slices on a P do not overlap, so ends are sorted too.
      let lo = 0, hi = sl.length;
      while (lo < hi) { const m = (lo + hi) >> 1; if (sl[m][2] < v0) lo = m + 1; else hi = m; }
      const items = [];
      for (let k = lo; k < sl.length && sl[k][1] <= v1; k++) items.push([sl[k][1], sl[k][2], PALETTE[sl[k][4] % PALETTE.length]]);
      drawRow(y, items, PALETTE[0]);
    });
    this.drawn = drawn;
  }

  /** What is under the pointer: a slice (goroutine, start function, duration) or a band. */
  hit(x, y) {
    const d = this.data;
    if (!d || x < LABEL_W) return null;
    const t = this.timeAt(x), slack = (this.view[1] - this.view[0]) / this.plotW();
    const row = Math.floor((y - TOP) / ROW);
    if (row < 0) return null;
    if (row < 3) {
      const [name, items] = this.bands()[row];
      const it = items.find(([s, e]) => s - slack <= t && t <= e + slack);
      return it ? { band: name, label: it[2], start: it[0], end: it[1] } : null;
    }
    const p = d.procs[row - 3];
    const sl = this.rows.get(p) || [];
    const s = sl.find((x) => x[1] - slack <= t && t <= x[2] + slack);
    return s ? { proc: p, goroutine: s[3], fn: d.functions[s[4]] || '(unknown)', start: s[1], end: s[2] } : null;
  }

  tip(e) {
    const tip = this.tooltip;
    if (!tip) return;
    const h = this.hit(e.offsetX, e.offsetY);
    if (!h) { tip.hidden = true; return; }
    const dur = label(h.end - h.start, 'nanoseconds');
    tip.innerHTML = h.band
      ? `<table><tr><th>${esc(h.label)}</th><td>${esc(dur)}</td></tr><tr><th>at</th><td>${esc(label(h.start, 'nanoseconds'))}</td></tr></table>`
      : `<table><tr><th>G${h.goroutine}</th><td>${esc(h.fn)}</td></tr><tr><th>ran on P${h.proc}</th><td>${esc(dur)}</td></tr><tr><th>at</th><td>${esc(label(h.start, 'nanoseconds'))}</td></tr></table>`;
    tip.hidden = false;
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + 'px';
    tip.style.top = e.clientY + 16 + 'px';
  }
}
