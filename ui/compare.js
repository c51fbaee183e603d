// Compare: the base range against the head (the shared range), optionally with different
// label matchers — a diff flame graph (width: head + base; colour: orange = more in the head,
// blue = less; normalised by default so that a longer range or more instances do not read as
// a regression) and a table of the functions whose flat or cumulative value changed most.

import { getJSON, apiUrl, selector, REFINE, refineParams } from './api.js';
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
      <label title="The base range (what the head is compared with)"><span class="base-key">Base</span> <input id="d-bfrom" class="time"></label>
      <label>to <input id="d-bto" class="time"></label>
      <span class="presets" role="group" aria-label="Base presets">
        <button type="button" data-shift="prev">previous period</button>
        <button type="button" data-shift="1d">1 day earlier</button>
        <button type="button" data-shift="7d">1 week earlier</button></span>
      <label title="Label matchers of the base (empty: the same as the head's)">Base labels <input id="d-bsel" class="sel" placeholder="same as head"></label>
      <label><input type="checkbox" id="d-norm"> normalise totals</label>
    </div>
    <div class="error" id="d-error" role="alert"></div>
    <div class="panel"><h3 id="d-tl-title">Timeline</h3><div id="d-timeline"></div>
      <div class="hint">Drag to choose the head range; Shift+drag to choose the base range.</div></div>
    <div class="toolbar">
      <input type="search" id="d-search" placeholder="Search (regexp)" aria-label="Search frames">
      <span class="matched" id="d-matched" aria-live="polite"></span>
      <button type="button" id="d-reset" title="Reset zoom and search (Esc)">Reset</button>
      <span class="muted" id="d-summary"></span>
      <span class="legend"><span>less in the head</span><span class="swatch" style="background:linear-gradient(90deg,hsl(212 80% 52%),hsl(212 10% 88%),hsl(28 95% 52%))"></span><span>more in the head</span></span>
      <span class="spacer"></span>
      <span class="downloads">Download: <a id="dl-a" download="base.pb.gz">base</a> <a id="dl-b" download="head.pb.gz">head</a>
        <a id="dl-diff" download="diff.pb.gz" title="head − base, as go tool pprof -diff_base builds it: go tool pprof -top diff.pb.gz">diff</a> (pprof)</span>
    </div>
    <div class="split">
      <div class="flamebox"><canvas id="d-flame" aria-label="Diff flame graph"></canvas></div>
      <div class="tablebox"><table class="data" id="d-table" aria-label="Biggest changes">
        <thead><tr><th class="name">function</th><th>base flat</th><th>head flat</th><th><button data-dsort="flat">flat change</button></th><th>%</th><th><button data-dsort="cum">cum change</button></th><th>%</th></tr></thead>
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
      query: selector(s.kind, s.job, s.sel), from: s.from, to: s.to, sample_index: s.si, agg: s.agg, ...refineParams(s),
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
    $('#dl-diff').href = apiUrl('profile', p);
    const [a0, a1] = app.rangeMs(p.base_from, p.base_to), [b0, b1] = app.rangeMs();
    const span = [Math.min(a0, b0), Math.max(a1, b1)];
    $('#d-tl-title').textContent = `Timeline — ${p.query}${p.base_query ? ` (base: ${p.base_query})` : ''}`;
    const [fl, tl] = await Promise.allSettled([
      getJSON('flame', p, { signal }),
      getJSON('timeline', { query: p.query, from: String(span[0] / 1000), to: String(span[1] / 1000), sample_index: p.sample_index, agg: p.agg }, { signal }),
    ]);
    if (signal.aborted) return;
    json = fl.status === 'fulfilled' ? fl.value : null;
    err.textContent = fl.status === 'rejected' ? fl.reason.message : '';
    const t = tl.status === 'fulfilled' ? tl.value : null;
    timeline.set(t ? [{ name: t.sample_type, points: t.points, kind: 'bar' }] : [], span, {
      unit: t?.unit, step: t?.step_ms, bands: [{ from: a0, to: a1, label: 'base', color: '--less' }, { from: b0, to: b1, label: 'head', color: '--more' }],
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
    $('#d-summary').textContent = `head ${label(json.total, u)} · base ${label(json.base_total, u)}${k !== 1 ? ` (×${k.toFixed(3)} normalised)` : ''}`;
    const byCum = app.state.sort === 'cum';
    for (const b of root.querySelectorAll('[data-dsort]')) b.setAttribute('aria-pressed', String((b.dataset.dsort === 'cum') === byCum));
    changes = functionChanges(json, k, byCum);
    const rel = (d, b) => (b ? `${d > 0 ? '+' : ''}${((d / Math.abs(b)) * 100).toFixed(1)}%` : d ? 'new' : '');
    const cls = (d) => (d > 0 ? 'more' : d < 0 ? 'less' : '');
    tb.innerHTML = changes.slice(0, 200).map((c) => `<tr tabindex="0" data-name="${esc(c.name)}">
      <td class="name" title="${esc(c.name)}">${esc(c.name)}</td><td>${esc(label(c.base, u))}</td><td>${esc(label(c.head, u))}</td>
      <td class="${cls(c.delta)}">${esc(signed(c.delta, u))}</td><td class="${cls(c.delta)}">${rel(c.delta, c.base)}</td>
      <td class="${cls(c.cumDelta)}">${esc(signed(c.cumDelta, u))}</td><td class="${cls(c.cumDelta)}">${rel(c.cumDelta, c.baseCum)}</td></tr>`).join('');
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
  for (const b of root.querySelectorAll('[data-dsort]')) b.addEventListener('click', () => app.set({ sort: b.dataset.dsort }, true));
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
      if (['job', 'kind', 'si', 'agg', 'sel', 'from', 'to', 'bfrom', 'bto', 'bsel', 'reload', ...REFINE].some((k) => changed.has(k))) load();
      else if (changed.has('norm') || changed.has('theme') || changed.has('layout') || changed.has('sort')) { fillInputs(); draw(); }
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
 * Per function: Σ flat and cum in the head and in the base (× scale), and their changes,
 * biggest |change| first (of cum with `byCum`, else of flat). Inlined and normal frames of
 * one function count together; cum counts each stack once (a recursive function's inner
 * frames are not added again), as pprof's cum does — so growth through a frame (more
 * goroutines parked under it) shows in its cum even when its own flat did not move.
 */
export function functionChanges(json, scale, byCum = false) {
  const head = new Map(), base = new Map(), headCum = new Map(), baseCum = new Map();
  const add = (m, n, v) => m.set(n, (m.get(n) || 0) + v);
  const nodes = json.nodes, names = json.names;
  for (let i = 1; i < nodes.length; i++) {
    const r = nodes[i], n = names[r[0]];
    if (r[4]) add(head, n, r[4]);
    if (r[6]) add(base, n, r[6] * scale);
    let outer = true;
    for (let a = r[2]; a > 0; a = nodes[a][2]) if (names[nodes[a][0]] === n) { outer = false; break; }
    if (!outer) continue;
    if (r[3]) add(headCum, n, r[3]);
    if (r[5]) add(baseCum, n, r[5] * scale);
  }
  const all = new Set([...head.keys(), ...base.keys(), ...headCum.keys(), ...baseCum.keys()]);
  const key = byCum ? 'cumDelta' : 'delta';
  return [...all].map((name) => {
    const h = head.get(name) || 0, b = base.get(name) || 0;
    const hc = headCum.get(name) || 0, bc = baseCum.get(name) || 0;
    return { name, head: h, base: b, delta: h - b, headCum: hc, baseCum: bc, cumDelta: hc - bc };
  }).sort((x, y) => Math.abs(y[key]) - Math.abs(x[key]) || x.name.localeCompare(y.name));
}
