// Compare: range A (base) against range B (head, the shared range), optionally with different
// label matchers — a diff flame graph (width: head + base; colour: orange = more in B, blue =
// less; normalised by default so that a longer range or more instances do not read as a
// regression) and a table of the functions whose flat value changed most.

import { getJSON, apiUrl, selector } from './api.js';
import { label, signed, esc, searchRegex, prettyTime, shiftTime, toApiTime } from './format.js';
import { Flame } from './flame.js';
import { TimeChart } from './charts.js';

export function mount(root, app) {
  const s0 = app.state;
  if (!s0.bfrom || !s0.bto) {
    // Default base: the same range one day earlier ("compare with yesterday").
    app.state = { ...s0, bfrom: s0.bfrom || shiftTime(s0.from, -86400e3), bto: s0.bto || shiftTime(s0.to, -86400e3) };
    const q = new URLSearchParams(location.search);
    q.set('bfrom', app.state.bfrom); q.set('bto', app.state.bto);
    history.replaceState(null, '', `${location.pathname}?${q}`);
  }
  root.innerHTML = `
    <div class="controls" style="border:0;padding:4px 0">
      <label title="Range A (the base B is compared with)">A <input id="d-bfrom" class="time"></label>
      <label>to <input id="d-bto" class="time"></label>
      <span class="presets" role="group" aria-label="Base presets">
        <button type="button" data-shift="prev">previous period</button>
        <button type="button" data-shift="1d">1 day earlier</button>
        <button type="button" data-shift="7d">1 week earlier</button></span>
      <label title="Label matchers of the base (empty: the same as B's)">A labels <input id="d-bsel" class="sel" placeholder="same as B"></label>
      <label><input type="checkbox" id="d-norm"> normalise totals</label>
    </div>
    <div class="error" id="d-error" role="alert"></div>
    <div class="panel"><h3 id="d-tl-title">Timeline</h3><div id="d-timeline"></div>
      <div class="hint">Drag to choose range B; Shift+drag to choose range A.</div></div>
    <div class="toolbar">
      <input type="search" id="d-search" placeholder="Search (regexp)" aria-label="Search frames">
      <span class="matched" id="d-matched" aria-live="polite"></span>
      <button type="button" id="d-reset" title="Reset zoom and search (Esc)">Reset</button>
      <span class="muted" id="d-summary"></span>
      <span class="legend"><span>less in B</span><span class="swatch" style="background:linear-gradient(90deg,hsl(212 80% 52%),hsl(212 10% 88%),hsl(28 95% 52%))"></span><span>more in B</span></span>
      <span class="spacer"></span>
      <span class="downloads">Download: <a id="dl-a" download="base.pb.gz">A as pprof</a> <a id="dl-b" download="head.pb.gz">B as pprof</a></span>
    </div>
    <div class="split">
      <div class="flamebox"><canvas id="d-flame" aria-label="Diff flame graph"></canvas></div>
      <div class="tablebox"><table class="data" id="d-table" aria-label="Biggest changes">
        <thead><tr><th>A flat</th><th>B flat</th><th>change</th><th>change %</th><th class="name">function</th></tr></thead>
        <tbody></tbody></table></div>
    </div>`;
  const $ = (id) => root.querySelector(id);
  const err = $('#d-error');
  let ctrl = null, json = null, changes = [];
  const timeline = new TimeChart($('#d-timeline'), {
    height: 90, tooltip: app.tooltip,
    onSelect: (a, b, e) => app.set(e?.shiftKey ? { bfrom: toApiTime(a), bto: toApiTime(b), zoom: '' } : { from: toApiTime(a), to: toApiTime(b), zoom: '' }, true),
  });
  let restoring = false;
  const flame = new Flame($('#d-flame'), {
    tooltip: app.tooltip,
    onZoom: (i) => { if (!restoring) app.set({ zoom: i > 0 ? JSON.stringify(flame.pathOf(i)) : '' }); },
    onSelect: (i) => {
      const nm = i > 0 ? flame.data.names[flame.data.name[i]] : '';
      for (const tr of root.querySelectorAll('#d-table tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.name === nm));
    },
  });

  function fillInputs() {
    const s = app.state;
    $('#d-bfrom').value = prettyTime(s.bfrom);
    $('#d-bto').value = prettyTime(s.bto);
    $('#d-bsel').value = s.bsel;
    $('#d-norm').checked = s.norm === '1';
  }

  function params() {
    const s = app.state;
    return {
      query: selector(s.kind, s.job, s.sel), from: s.from, to: s.to, sample_index: s.si, agg: s.agg,
      base_query: s.bsel ? selector(s.kind, s.job, s.bsel) : '', base_from: s.bfrom, base_to: s.bto,
    };
  }

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    fillInputs();
    err.textContent = '';
    document.body.dataset.ready = '';
    const p = params();
    $('#dl-a').href = apiUrl('profile', { query: p.base_query || p.query, from: p.base_from, to: p.base_to, agg: p.agg });
    $('#dl-b').href = apiUrl('profile', { query: p.query, from: p.from, to: p.to, agg: p.agg });
    const [a0, a1] = app.rangeMs(p.base_from, p.base_to), [b0, b1] = app.rangeMs();
    const span = [Math.min(a0, b0), Math.max(a1, b1)];
    $('#d-tl-title').textContent = `Timeline — ${p.query}${p.base_query ? ` (A: ${p.base_query})` : ''}`;
    const [fl, tl] = await Promise.allSettled([
      getJSON('flame', p, { signal }),
      getJSON('timeline', { query: p.query, from: String(span[0] / 1000), to: String(span[1] / 1000), sample_index: p.sample_index, agg: p.agg }, { signal }),
    ]);
    if (signal.aborted) return;
    json = fl.status === 'fulfilled' ? fl.value : null;
    err.textContent = fl.status === 'rejected' ? fl.reason.message : '';
    const t = tl.status === 'fulfilled' ? tl.value : null;
    timeline.set(t ? [{ name: t.sample_type, points: t.points, kind: 'bar' }] : [], span, {
      unit: t?.unit, step: t?.step_ms, bands: [{ from: a0, to: a1, label: 'A' }, { from: b0, to: b1, label: 'B' }],
    });
    draw();
    document.body.dataset.ready = 'compare';
  }

  function baseScale() {
    if (!json || app.state.norm !== '1' || !json.base_total) return 1;
    return json.total / json.base_total;
  }

  function draw() {
    const tb = $('#d-table tbody');
    if (!json) { flame.data = null; tb.innerHTML = ''; $('#d-summary').textContent = ''; return; }
    const k = baseScale();
    flame.inverted = app.state.layout !== 'flame';
    flame.setData(json, { diff: true, baseScale: k });
    restoreZoom();
    app.timings.diffRenderMs = flame.timings.layout + flame.timings.draw;
    const u = json.unit;
    $('#d-summary').textContent = `B ${label(json.total, u)} · A ${label(json.base_total, u)}${k !== 1 ? ` (×${k.toFixed(3)} normalised)` : ''}`;
    changes = functionChanges(json, k);
    tb.innerHTML = changes.slice(0, 200).map((c) => {
      const cls = c.delta > 0 ? 'more' : c.delta < 0 ? 'less' : '';
      const rel = c.base ? `${c.delta > 0 ? '+' : ''}${((c.delta / Math.abs(c.base)) * 100).toFixed(1)}%` : 'new';
      return `<tr tabindex="0" data-name="${esc(c.name)}"><td>${esc(label(c.base, u))}</td><td>${esc(label(c.head, u))}</td>
        <td class="${cls}">${esc(signed(c.delta, u))}</td><td class="${cls}">${rel}</td><td class="name" title="${esc(c.name)}">${esc(c.name)}</td></tr>`;
    }).join('');
    search();
  }

  function restoreZoom() {
    let z = 0;
    if (app.state.zoom) {
      try { z = Math.max(0, flame.findPath(JSON.parse(app.state.zoom))); } catch { z = 0; }
    }
    restoring = true;
    flame.setZoom(z);
    restoring = false;
  }

  function search() {
    const { search: t, fn } = app.state;
    $('#d-search').value = t;
    for (const r of root.querySelectorAll('#d-table tbody tr')) r.setAttribute('aria-selected', String(!t && r.dataset.name === fn));
    let share = null;
    if (flame.data) share = t ? flame.setSearch(searchRegex(t)) : fn ? flame.setSearch(null, fn) : flame.setSearch(null);
    $('#d-matched').textContent = share == null ? '' : `${t ? 'matched' : fn} ${(share * 100).toFixed(2)}% of the width`;
    $('#d-matched').dataset.share = share == null ? '' : String(share);
  }

  const set = (patch) => app.set(patch, true);
  $('#d-bfrom').addEventListener('change', (e) => set({ bfrom: e.target.value.trim() }));
  $('#d-bto').addEventListener('change', (e) => set({ bto: e.target.value.trim() }));
  $('#d-bsel').addEventListener('change', (e) => set({ bsel: e.target.value.trim() }));
  $('#d-norm').addEventListener('change', (e) => set({ norm: e.target.checked ? '1' : '0' }));
  let searchTimer = 0;
  $('#d-search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => app.set({ search: e.target.value }), 120);
  });
  $('#d-reset').addEventListener('click', () => app.set({ zoom: '', search: '' }, true));
  for (const b of root.querySelectorAll('[data-shift]')) {
    b.addEventListener('click', () => {
      const s = app.state;
      const [from, to] = app.rangeMs();
      const back = b.dataset.shift === 'prev' ? -(to - from) : b.dataset.shift === '7d' ? -7 * 86400e3 : -86400e3;
      set({ bfrom: shiftTime(s.from, back), bto: shiftTime(s.to, back) });
    });
  }
  const pick = (tr) => app.set({ fn: tr.dataset.name === app.state.fn ? '' : tr.dataset.name, search: '' }, true);
  $('#d-table tbody').addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) pick(tr); });
  $('#d-table tbody').addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr');
    if (e.key === 'Enter') pick(tr);
    else if (e.key === 'ArrowDown') { e.preventDefault(); tr.nextElementSibling?.focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); tr.previousElementSibling?.focus(); }
  });

  load();
  return {
    update(changed) {
      if (['job', 'kind', 'si', 'agg', 'sel', 'from', 'to', 'bfrom', 'bto', 'bsel', 'reload'].some((k) => changed.has(k))) load();
      else if (changed.has('norm') || changed.has('theme') || changed.has('layout')) { fillInputs(); draw(); }
      else {
        if (changed.has('zoom') && flame.data) restoreZoom();
        if (changed.has('search') || changed.has('fn')) search();
      }
    },
    unmount() { ctrl?.abort(); flame.resizeObserver.disconnect(); app.tooltip.hidden = true; },
    timeline,
    onKey(e) {
      if (e.key === '/') { e.preventDefault(); $('#d-search').focus(); return true; }
      if (e.key === 'Escape') { app.set({ zoom: '', search: '' }, true); return true; }
      return false;
    },
    flame,
    get json() { return json; },
    get changes() { return changes; },
  };
}

/**
 * Per function: Σ flat in B (head) and in A (base, × scale), and the change, biggest
 * |change| first. Inlined and normal frames of one function count together.
 */
export function functionChanges(json, scale) {
  const head = new Map(), base = new Map();
  for (const r of json.nodes.slice(1)) {
    const n = json.names[r[0]];
    if (r[4]) head.set(n, (head.get(n) || 0) + r[4]);
    if (r[6]) base.set(n, (base.get(n) || 0) + r[6] * scale);
  }
  const names = new Set([...head.keys(), ...base.keys()]);
  return [...names].map((name) => {
    const h = head.get(name) || 0, b = base.get(name) || 0;
    return { name, head: h, base: b, delta: h - b };
  }).sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || x.name.localeCompare(y.name));
}
