// Explore: a timeline of totals (drag to zoom the range), the flame graph (hover, click to
// zoom, search, icicle/flame, sandwich) or the call graph (`go tool pprof -dot`'s), and the
// top table beside it, kept in sync: clicking a row highlights that function in the graph;
// clicking a frame or box selects its row. Peek lists a function's callers and callees
// (`go tool pprof -peek`).

import { getJSON, apiUrl, selector, REFINE, refineParams } from './api.js';
import { label, esc, searchRegex, toApiTime, shiftTime, reEscape } from './format.js';
import { Flame, layout } from './flame.js';
import { CallGraphView } from './graph.js';
import { TimeChart } from './charts.js';

export function mount(root, app) {
  root.innerHTML = `
    <div class="error" id="x-error" role="alert"></div>
    <div class="hint" id="x-empty" aria-live="polite"></div>
    <div class="panel"><h3 id="x-tl-title">Timeline</h3><div id="x-timeline"></div>
      <div class="hint">Drag across the timeline to zoom into a range.</div></div>
    <div class="toolbar">
      <input type="search" id="x-search" placeholder="Search (regexp) — /" aria-label="Search frames">
      <span class="matched" id="x-matched" aria-live="polite"></span>
      <button type="button" id="x-reset" title="Reset zoom and search (Esc)">Reset</button>
      <button type="button" id="x-layout" title="Icicle / flame (i)"></button>
      <button type="button" id="x-sandwich" title="Sandwich view of the selected function (s)">Sandwich</button>
      <button type="button" id="x-graph" title="Call graph instead of the flame graph, as go tool pprof -http's Graph view (g)">Graph</button>
      <button type="button" id="x-peek" title="Callers and callees of the selected function, as go tool pprof -peek (p)">Peek</button>
      <button type="button" id="x-compare" title="Compare this range with the same range 24 hours earlier">Compare with yesterday</button>
      <span class="spacer"></span>
      <span class="downloads">Download:
        <a id="dl-pprof" download="profile.pb.gz">pprof</a>
        <a id="dl-svg" download="flame.svg">SVG</a>
        <a id="dl-folded" download="flame.folded">folded</a>
        <a id="dl-speedscope" download="flame.speedscope.json">speedscope</a></span>
    </div>
    <div class="toolbar refine" id="x-refine" aria-label="Refine, as go tool pprof">
      <span class="muted">Refine the selected function:</span>
      <button type="button" data-refine="focus" title="Only samples through it (pprof -focus)">Focus</button>
      <button type="button" data-refine="ignore" title="Drop samples through it (-ignore)">Ignore</button>
      <button type="button" data-refine="hide" title="Remove it from stacks, its cost to its caller (-hide)">Hide</button>
      <button type="button" data-refine="show_from" title="Drop its callers (-show_from)">Show from</button>
      <label title="What a frame is: a function (default), a function per file, a file, a source line or an address (pprof's -functions, -filefunctions, -files, -lines, -addresses)">By
        <select id="x-gran">${['', 'filefunctions', 'files', 'lines', 'addresses'].map((g) => `<option value="${g}">${g || 'functions'}</option>`).join('')}</select></label>
      <label title="pprof labels set with pprof.Do: key=regexp, a regexp against key:value, or a numeric range such as bytes=64kb: (-tagfocus)">Labels
        <input id="x-tag" placeholder="tenant=acme" size="14"></label>
      <span id="x-chips"></span>
    </div>
    <details class="panel" id="x-labels"><summary>Labels — the pprof labels of these samples and their shares (go tool pprof -tags); click a value to filter</summary>
      <div id="x-labels-body" class="labels"></div></details>
    <div id="x-sandwich-panel" class="panel sandwich" hidden></div>
    <div id="x-peek-panel" class="panel peek" hidden></div>
    <div class="split">
      <div class="cell"><div class="flamebox" id="x-flamebox"><canvas id="x-flame" aria-label="Flame graph; arrow keys move, Enter zooms"></canvas></div>
        <div class="hint" id="x-graph-legend" hidden></div>
        <div class="flamebox graphbox" id="x-graphbox" hidden></div></div>
      <div class="tablebox"><div class="hint" id="x-dropped" aria-live="polite"></div><table class="data toptable" id="x-top" aria-label="Top functions">
        <thead><tr><th class="name">function</th><th><button data-sort="flat">flat</button></th><th class="pct">flat%</th><th class="pct">sum%</th><th><button data-sort="cum">cum</button></th><th class="pct">cum%</th></tr></thead>
        <tbody></tbody></table></div>
    </div>`;
  const $ = (id) => root.querySelector(id);
  const err = $('#x-error');
  const tooltip = app.tooltip;
  let top = null, flameJson = null, ctrl = null, sandwichFlames = [];

  const timeline = new TimeChart($('#x-timeline'), {
    height: 100, tooltip,
    onSelect: (a, b) => app.set({ from: toApiTime(a), to: toApiTime(b), zoom: '' }, true),
  });
  const flame = new Flame($('#x-flame'), {
    tooltip,
    onZoom: (i) => { if (!restoring) app.set({ zoom: i > 0 ? JSON.stringify(flame.pathOf(i)) : '' }); },
    onSelect: (i) => { lastPicked = i > 0 ? flame.data.names[flame.data.name[i]] : ''; selectRow(lastPicked); renderRefine(); },
  });
  const graphView = new CallGraphView($('#x-graphbox'), {
    onSelect: (name) => { lastPicked = name; app.set({ fn: name === app.state.fn ? '' : name, search: '' }, true); },
  });
  let graphJson = null;
  let restoring = false;
  let lastPicked = ''; // the function last clicked in the graph or the table: the sandwich's
  const timing = app.timings;

  function query() {
    const s = app.state;
    return { query: selector(s.kind, s.job, s.sel), from: s.from, to: s.to, agg: s.agg, ...refineParams(s) };
  }

  /**
   * The flame graph's size for the API: boxes narrower than the drawing's smallest box
   * (`minPx`) come back summed into one row per parent, so the JSON is what can be drawn,
   * not the whole tree; `zoom` asks for the detail below the zoomed frame.
   */
  function flameParams() {
    const css = $('#x-flamebox').clientWidth || root.clientWidth || 1200;
    return { width: Math.ceil(css / flame.minPx), zoom: app.state.zoom || undefined };
  }

  /** The flame graph alone, again (zoomed into a frame whose detail the data lacks). */
  async function reloadFlame() {
    const s = app.state, signal = ctrl?.signal;
    document.body.dataset.ready = '';
    try {
      const fl = await getJSON('flame', { ...query(), sample_index: s.si, ...flameParams() }, { signal });
      if (signal?.aborted) return;
      if (!fl.empty) {
        flameJson = fl;
        flame.setData(fl);
        restoreZoom();
        applySearch();
      }
    } catch (e) {
      if (signal?.aborted) return;
      err.textContent = e.message;
    }
    document.body.dataset.ready = 'explore';
  }

  /** The whole tree, laid out (the sandwich needs every caller, however thin). */
  let fullFlame = null, fullKey = '';
  async function wholeFlame() {
    if (!flameJson?.hidden) return flame.data;
    const q = { ...query(), sample_index: app.state.si };
    const key = JSON.stringify(q);
    if (key !== fullKey) { fullFlame = layout(await getJSON('flame', q)); fullKey = key; }
    return fullFlame;
  }

  function downloads() {
    const q = query(), s = app.state;
    $('#dl-pprof').href = apiUrl('profile', q);
    $('#dl-svg').href = apiUrl('flame', { ...q, sample_index: s.si, format: 'svg', inverted: s.layout === 'icicle' ? '1' : '' });
    $('#dl-folded').href = apiUrl('flame', { ...q, sample_index: s.si, format: 'folded' });
    $('#dl-speedscope').href = apiUrl('flame', { ...q, sample_index: s.si, format: 'speedscope' });
  }

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const s = app.state;
    err.textContent = '';
    downloads();
    if (!s.kind) { err.textContent = 'No profiles stored yet: gocost shows them here once it has scraped a target (see Targets).'; return; }
    const q = query();
    const [from, to] = app.rangeMs();
    $('#x-tl-title').textContent = `Timeline — ${q.query}`;
    document.body.dataset.ready = '';
    const t0 = performance.now();
    // Execution traces of the service: stop-the-world pauses and GC assists as markers.
    const traced = app.traced(s.job);
    const markerSel = (name) => selector('', s.job, [s.sel, `__name__="${name}"`].filter(Boolean).join(','));
    const markersP = traced ? Promise.all(['go_trace_stw_pause_seconds', 'go_trace_gc_assist_seconds'].map((n) =>
      getJSON('runtime', { query: markerSel(n), from: s.from, to: s.to }, { signal }).catch(() => []))) : Promise.resolve([[], []]);
    const results = await Promise.allSettled([
      getJSON('timeline', { ...q, sample_index: s.si, by: s.by }, { signal }),
      getJSON('flame', { ...q, sample_index: s.si, ...flameParams() }, { signal }),
      getJSON('top', { ...q, sample_index: s.si, nodecount: 500, ...(s.all ? { nodefraction: 0 } : {}) }, { signal }),
      s.graph ? getJSON('graph', { ...q, sample_index: s.si }, { signal }) : Promise.resolve(null),
    ]);
    if (signal.aborted) return;
    const errors = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    err.textContent = [...new Set(errors)].join('\n');
    const [tl, fl0, tp0, gr0] = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
    graphJson = gr0?.empty ? null : gr0;
    // An empty range is an answer (200, with the reason), not an error.
    const empty = fl0?.empty || tp0?.empty || '';
    $('#x-empty').textContent = empty ? `Nothing in this range: ${empty}. Widen the range or check Targets.` : '';
    const fl = fl0?.empty ? null : fl0, tp = tp0?.empty ? null : tp0;
    // Broken down by a label: a line per value (the ten largest, then the rest).
    const lines = tl?.series?.map((x) => ({ name: x.other ? 'other values' : x.value ? `${s.by}=${x.value}` : `no ${s.by}`, points: x.points, kind: 'line' }));
    const [stw, assists] = await markersP;
    if (signal.aborted) return;
    const markers = [
      ...stw.flatMap((x) => x.points.map(([t, v]) => ({ t, label: `stop-the-world ${label(v, 'seconds')} (${x.labels.reason || ''})`, color: '#d55e00', kind: 'stw' }))),
      ...assists.flatMap((x) => x.points.filter(([, v]) => v > 0).map(([t, v]) => ({ t, label: `GC mark assists ${label(v, 'seconds')} in the cycle`, color: '#cc79a7', kind: 'assist' }))),
    ];
    timeline.set(tl ? lines || [{ name: tl.sample_type, points: tl.points, kind: 'bar' }] : [], [from, to], { unit: tl?.unit, step: tl?.step_ms, markers });
    $('#x-tl-title').textContent = `Timeline — ${q.query}${s.by ? ` by ${s.by}` : ''}`;
    flameJson = fl;
    fullKey = '';
    top = tp;
    const t1 = performance.now();
    if (fl) {
      flame.inverted = s.layout === 'icicle';
      flame.setData(fl);
      restoreZoom();
      flame.render();
      scrollToRoot();
    } else {
      flame.data = null;
      const c = $('#x-flame'); c.getContext('2d').clearRect(0, 0, c.width, c.height);
    }
    timing.flameFetchMs = t1 - t0;
    timing.flameLayoutMs = flame.timings.layout;
    timing.flameDrawMs = flame.timings.draw;
    timing.flameRenderMs = performance.now() - t1;
    timing.flameNodes = flame.nodeCount;
    renderTable();
    renderGraph();
    applySearch();
    renderSandwich();
    renderPeek();
    renderRefine();
    loadLabels();
    probeYesterday(signal);
    document.body.dataset.ready = 'explore';
  }

  /** Flame graph or call graph: one of the two boxes shows. */
  function renderGraph() {
    const s = app.state, on = !!s.graph;
    $('#x-flamebox').hidden = on;
    $('#x-graphbox').hidden = !on;
    $('#x-graph').setAttribute('aria-pressed', String(on));
    $('#x-graph').textContent = on ? 'Flame graph' : 'Graph';
    const legend = $('#x-graph-legend');
    legend.hidden = !on;
    if (!on) return;
    // pprof's legend: what is shown and what was dropped (the profile's own lines left out).
    legend.textContent = (graphJson?.legend || []).filter((l) => /^(Showing|Dropped)/.test(l)).join(' · ');
    graphView.selected = s.fn;
    graphView.set(graphJson);
  }

  /** Peek: the callers and callees of one function, with their share of its cum. */
  async function renderPeek() {
    const panel = $('#x-peek-panel'), s = app.state;
    if (!s.peek || !s.kind) { panel.hidden = true; panel.replaceChildren(); return; }
    panel.hidden = false;
    panel.innerHTML = `<div class="toolbar"><h3>Peek: ${esc(s.peek)}</h3><span class="muted">callers above, callees below — click one to peek at it</span>
      <span class="spacer"></span><a id="x-peek-text" target="_blank" rel="noopener">as text</a><button type="button" id="x-peek-close">Close</button></div><div class="peekbody">loading…</div>`;
    panel.querySelector('#x-peek-close').addEventListener('click', () => app.set({ peek: '' }, true));
    const params = { ...query(), sample_index: s.si, symbol: `^${reEscape(s.peek)}$` };
    panel.querySelector('#x-peek-text').href = apiUrl('peek', { ...params, format: 'text' });
    const body = panel.querySelector('.peekbody');
    try {
      const r = await getJSON('peek', params);
      const e = r.entries?.[0];
      if (!e) { body.textContent = r.empty ? `Nothing in this range: ${r.empty}` : 'No such function in this range.'; return; }
      const row = (x, cls) => `<tr tabindex="0" class="${cls}" data-name="${esc(x.name)}"><td>${esc(x.weight_text)}</td><td class="pct">${esc(x.percent.trim())}</td>
        <td class="name" title="${esc(x.name)}">${esc(x.name)}${x.inline ? ' <span class="muted">(inline)</span>' : ''}</td></tr>`;
      body.innerHTML = `<table class="data peektable" aria-label="Callers and callees of ${esc(e.name)}"><thead><tr><th>calls</th><th class="pct">calls%</th><th class="name">context</th></tr></thead><tbody>
        ${e.callers.map((x) => row(x, 'caller')).join('') || '<tr><td colspan="3" class="muted">no callers (an entry point)</td></tr>'}
        <tr class="self"><td>${esc(e.flat_text)} flat</td><td class="pct">${esc(e.cum_text)} cum</td><td class="name"><b>${esc(e.name)}</b> <span class="muted">${esc(e.cum_percent.trim())} of total</span></td></tr>
        ${e.callees.map((x) => row(x, 'callee')).join('') || '<tr><td colspan="3" class="muted">no callees (all its time is its own)</td></tr>'}</tbody></table>`;
      body.querySelector('tbody').addEventListener('click', (ev) => {
        const tr = ev.target.closest('tr[data-name]');
        if (tr) app.set({ peek: tr.dataset.name, fn: tr.dataset.name }, true);
      });
    } catch (err2) {
      body.innerHTML = `<p class="error">${esc(err2.message)}</p>`;
    }
  }

  function openPeek() {
    const s = app.state;
    const name = lastPicked || s.fn || (top?.rows[0]?.name ?? '');
    if (name) app.set({ peek: s.peek === name ? '' : name }, true);
  }

  /** In the flame layout the root is at the bottom of a possibly tall canvas: show it. */
  function scrollToRoot() {
    const box = $('#x-flamebox');
    box.scrollTop = flame.inverted ? 0 : box.scrollHeight;
  }

  function restoreZoom() {
    const s = app.state;
    let z = 0;
    if (s.zoom) {
      try { z = Math.max(0, flame.findPath(JSON.parse(s.zoom))); } catch { z = 0; }
    }
    restoring = true;
    flame.setZoom(z);
    restoring = false;
  }

  function applySearch() {
    const s = app.state, out = $('#x-matched');
    $('#x-search').value = s.search;
    if (!flame.data) { out.textContent = ''; return; }
    let share = null;
    // Boxes the API summed (thinner than the drawing shows) have no name to match: over a
    // cut tree a search's share is a lower bound, and a function's share is its cum.
    const cut = flame.cutBelow(0);
    if (s.search) {
      share = flame.setSearch(searchRegex(s.search));
      out.textContent = `matched ${cut ? 'at least ' : ''}${label(flame.matchedValue, flame.data.unit)} · ${(share * 100).toFixed(2)}%`;
    } else if (s.fn) {
      share = flame.setSearch(null, s.fn);
      const row = cut && top?.total ? top.rows.find((r) => r.name === s.fn) : null;
      if (row) share = Math.abs(row.cum) / Math.abs(top.total);
      out.textContent = `${s.fn}: ${cut && !row ? 'at least ' : ''}${(share * 100).toFixed(2)}% of total`;
    } else {
      flame.setSearch(null);
      out.textContent = '';
    }
    out.dataset.share = share == null ? '' : String(share);
    timing.searchMs = flame.timings.search;
  }

  function rows() {
    if (!top) return [];
    const re = searchRegex(app.state.search);
    const r = re ? top.rows.filter((x) => re.test(x.name)) : top.rows.slice();
    if (app.state.sort === 'cum') r.sort((a, b) => b.cum - a.cum || a.name.localeCompare(b.name));
    return r;
  }

  /** "Compare with yesterday" only when there are profiles a day earlier to compare with. */
  async function probeYesterday(signal) {
    const b = $('#x-compare'), s = app.state, day = -86400e3;
    let ok = false;
    try {
      const t = await getJSON('timeline', { query: query().query, from: shiftTime(s.from, day), to: shiftTime(s.to, day), step: '24h' }, { signal });
      ok = t.points.length > 0;
    } catch (e) { if (e.name === 'AbortError') return; }
    b.disabled = !ok;
    b.title = ok ? 'Compare this range with the same range 24 hours earlier'
      : 'No profiles a day earlier to compare with: pick any two ranges in Compare (key 2)';
  }

  /** The label explorer: `/api/v1/tags` of the current selection, fetched when open. */
  async function loadLabels() {
    const body = $('#x-labels-body');
    if (!$('#x-labels').open || !app.state.kind) return;
    const s = app.state;
    try {
      const t = await getJSON('tags', { ...query(), sample_index: s.si });
      if (!t.keys.length) { body.innerHTML = '<p class="muted">No pprof labels in these samples (Go programs set them with <code>pprof.Do</code>).</p>'; return; }
      body.innerHTML = t.keys.map((k) => `<table class="data labels" aria-label="${esc(k.key)}"><thead><tr><th class="name">${esc(k.key)}
        <button type="button" class="by" data-by="${esc(k.key)}" aria-pressed="${s.by === k.key}" title="Break the timeline down by ${esc(k.key)}">timeline</button></th>
        <th>${esc(label(k.total, t.unit))}</th><th>${t.total ? ((k.total / t.total) * 100).toFixed(2) + '%' : ''}</th></tr></thead><tbody>
        ${k.values.slice(0, 20).map(([v, n]) => `<tr tabindex="0" data-key="${esc(k.key)}" data-value="${esc(v)}" data-numeric="${k.numeric ? '1' : ''}" title="Only samples with ${esc(k.key)}=${esc(v)} (tagfocus)">
          <td class="name">${esc(v)}</td><td>${esc(label(n, t.unit))}</td><td>${t.total ? ((n / t.total) * 100).toFixed(2) + '%' : ''}</td></tr>`).join('')}
        ${k.values.length > 20 ? `<tr><td class="name muted" colspan="3">and ${k.values.length - 20} more values</td></tr>` : ''}</tbody></table>`).join('');
    } catch (e) {
      if (e.name !== 'AbortError') body.innerHTML = `<p class="error">${esc(e.message)}</p>`;
    }
  }

  /** The active refine options as removable chips, and the buttons' state. */
  function renderRefine() {
    const s = app.state, name = lastPicked || s.fn;
    for (const b of root.querySelectorAll('[data-refine]')) {
      b.disabled = !name;
      b.title = b.title.replace(/ — .*$/, '') + (name ? ` — ${name}` : '');
    }
    $('#x-tag').value = s.tagfocus;
    $('#x-gran').value = s.granularity;
    $('#x-chips').innerHTML = REFINE.filter((k) => s[k] && k !== 'granularity').map((k) =>
      `<button type="button" class="chip" data-unrefine="${k}" title="Remove this filter">${esc(k)}=${esc(s[k])} ×</button>`).join('')
      + (s.by ? `<button type="button" class="chip" data-unrefine="by" title="One timeline again">timeline by ${esc(s.by)} ×</button>` : '');
  }

  function renderTable() {
    const tb = $('#x-top tbody'), s = app.state;
    for (const b of root.querySelectorAll('[data-sort]')) b.setAttribute('aria-pressed', String(b.dataset.sort === s.sort));
    const dropped = $('#x-dropped');
    if (!top) { tb.innerHTML = ''; dropped.textContent = ''; return; }
    const shown = rows();
    tb.innerHTML = shown.map((r) => `<tr tabindex="0" data-name="${esc(r.name)}" aria-selected="${r.name === s.fn}">
      <td class="name" title="${esc(r.name)}">${esc(r.name)}${r.inline ? ` <span class="muted">${esc(r.inline)}</span>` : ''}</td>
      <td>${esc(r.flat_text)}</td><td class="pct">${esc(r.flat_percent.trim())}</td><td class="pct">${esc(r.sum_percent.trim())}</td>
      <td>${esc(r.cum_text)}</td><td class="pct">${esc(r.cum_percent.trim())}</td></tr>`).join('');
    // pprof's own words for what the table leaves out, and a way to see it.
    const drop = (top.header || []).find((h) => /^Dropped \d+ nodes?/.test(h));
    const parts = [];
    if (s.search) parts.push(`${shown.length} of ${top.rows.length} functions match the search`);
    if (drop) parts.push(`${drop.replace('Dropped', 'Hidden:').replace(/ nodes?/, ' small functions')} <button type="button" id="x-all">show all</button>`);
    else if (s.all) parts.push('All functions shown <button type="button" id="x-all">hide small ones</button>');
    dropped.innerHTML = parts.join(' · ');
    dropped.querySelector('#x-all')?.addEventListener('click', () => app.set({ all: s.all ? '' : '1' }, true));
  }

  function selectRow(name) {
    for (const tr of root.querySelectorAll('#x-top tbody tr')) {
      const on = tr.dataset.name === name;
      tr.setAttribute('aria-selected', String(on));
      if (on) tr.scrollIntoView({ block: 'nearest' });
    }
  }

  // Sandwich: the callers of one function (all its call paths, flame-style, the function at
  // the bottom) above its callees (everything it calls, merged, icicle-style).
  async function renderSandwich() {
    const panel = $('#x-sandwich-panel'), s = app.state;
    sandwichFlames.forEach((f) => f.resizeObserver.disconnect());
    sandwichFlames = [];
    if (!s.sandwich || !flame.data) { panel.hidden = true; panel.replaceChildren(); return; }
    let data;
    try { data = await wholeFlame(); } catch (e) { err.textContent = e.message; return; }
    if (app.state.sandwich !== s.sandwich) return;
    const { callers, callees } = sandwich(data, s.sandwich);
    panel.hidden = false;
    panel.innerHTML = `<div class="toolbar"><h3>Sandwich: ${esc(s.sandwich)}</h3><span class="muted">callers above, callees below</span>
      <span class="spacer"></span><button type="button" id="x-sw-close">Close</button></div>
      <div class="flamebox"><canvas aria-label="Callers"></canvas></div><div class="flamebox"><canvas aria-label="Callees"></canvas></div>`;
    panel.querySelector('#x-sw-close').addEventListener('click', () => app.set({ sandwich: '' }, true));
    const [a, b] = panel.querySelectorAll('canvas');
    const up = new Flame(a, { tooltip, rootLabel: `all callers of ${s.sandwich}` });
    const down = new Flame(b, { tooltip, rootLabel: `all callees of ${s.sandwich}` });
    up.inverted = false; up.setData(callers); up.render();
    down.inverted = true; down.setData(callees); down.render();
    sandwichFlames = [up, down];
  }

  const on = (id, ev, f) => $(id).addEventListener(ev, f);
  let searchTimer = 0;
  on('#x-search', 'input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => app.set({ search: e.target.value }), 120);
  });
  on('#x-search', 'keydown', (e) => { if (e.key === 'Enter') { clearTimeout(searchTimer); app.set({ search: e.target.value }, true); } });
  on('#x-reset', 'click', () => app.set({ zoom: '', search: '', fn: '' }, true));
  on('#x-layout', 'click', () => app.set({ layout: app.state.layout === 'icicle' ? 'flame' : 'icicle' }, true));
  on('#x-sandwich', 'click', () => openSandwich());
  on('#x-peek', 'click', () => openPeek());
  on('#x-graph', 'click', () => app.set({ graph: app.state.graph ? '' : '1' }, true));
  on('#x-compare', 'click', () => {
    const s = app.state, day = -86400e3;
    app.set({ view: 'compare', bfrom: shiftTime(s.from, day), bto: shiftTime(s.to, day), zoom: '' }, true);
  });
  for (const b of root.querySelectorAll('[data-sort]')) b.addEventListener('click', () => app.set({ sort: b.dataset.sort }, true));
  const tbody = $('#x-top tbody');
  const pick = (tr) => {
    lastPicked = tr.dataset.name;
    app.set({ fn: tr.dataset.name === app.state.fn ? '' : tr.dataset.name, search: '' }, true);
  };
  tbody.addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) pick(tr); });
  for (const b of root.querySelectorAll('[data-refine]')) {
    b.addEventListener('click', () => {
      const name = lastPicked || app.state.fn, k = b.dataset.refine;
      if (!name) return;
      const re = `^${reEscape(name)}$`, cur = app.state[k];
      // Several functions: one regexp that matches any of them, as pprof's refine menu does.
      app.set({ [k]: cur ? `${cur}|${re}` : re, zoom: '', fn: '', sandwich: '' }, true);
    });
  }
  on('#x-tag', 'change', (e) => app.set({ tagfocus: e.target.value.trim(), zoom: '' }, true));
  on('#x-gran', 'change', (e) => app.set({ granularity: e.target.value, zoom: '', fn: '', sandwich: '' }, true));
  on('#x-labels', 'toggle', () => loadLabels());
  on('#x-labels-body', 'click', (e) => {
    const by = e.target.closest('[data-by]');
    if (by) { app.set({ by: app.state.by === by.dataset.by ? '' : by.dataset.by }, true); return; }
    const tr = e.target.closest('tr[data-key]');
    if (!tr) return;
    // A numeric label (allocation bytes) is filtered by a range; a whole value (1MB) is one,
    // a rounded one (5.25kB) cannot be matched exactly: type a range in Labels instead.
    const { key, value, numeric } = tr.dataset;
    if (numeric && value.includes('.')) { $('#x-tag').value = `${key}=`; $('#x-tag').focus(); return; }
    app.set({ tagfocus: `${key}=${numeric ? value : `^${reEscape(value)}$`}`, zoom: '' }, true);
  });
  on('#x-chips', 'click', (e) => {
    const b = e.target.closest('[data-unrefine]');
    if (b) app.set({ [b.dataset.unrefine]: '', zoom: '' }, true);
  });
  tbody.addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr');
    if (!tr) return;
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(tr); }
    else if (e.key === 'ArrowDown' || e.key === 'j') { e.preventDefault(); tr.nextElementSibling?.focus(); }
    else if (e.key === 'ArrowUp' || e.key === 'k') { e.preventDefault(); tr.previousElementSibling?.focus(); }
  });
  $('#x-layout').textContent = app.state.layout === 'icicle' ? 'Icicle ▾' : 'Flame ▴';

  function openSandwich() {
    const s = app.state;
    const name = lastPicked || s.fn || (top?.rows[0]?.name ?? '');
    if (name) app.set({ sandwich: s.sandwich === name ? '' : name }, true);
  }

  load();
  return {
    update(changed) {
      const has = (...k) => k.some((x) => changed.has(x));
      if (has('job', 'kind', 'si', 'agg', 'sel', 'from', 'to', 'reload', 'all', 'by', ...REFINE)) { load(); return; }
      if (has('layout')) {
        $('#x-layout').textContent = app.state.layout === 'icicle' ? 'Icicle ▾' : 'Flame ▴';
        flame.inverted = app.state.layout === 'icicle';
        flame.render();
        scrollToRoot();
        downloads();
      }
      if (has('zoom') && flame.data) {
        // Zoomed into a frame whose thin children the API summed: ask for them.
        let z = 0;
        try { z = app.state.zoom ? flame.findPath(JSON.parse(app.state.zoom)) : 0; } catch { z = 0; }
        if (z > 0 && flame.cutBelow(z)) reloadFlame(); else restoreZoom();
      }
      if (has('graph')) { if (app.state.graph && !graphJson) { load(); return; } renderGraph(); }
      if (has('search', 'fn')) { applySearch(); renderTable(); renderRefine(); graphView.select(app.state.fn); }
      if (has('peek')) renderPeek();
      if (has('sort')) renderTable();
      if (has('sandwich')) renderSandwich();
      if (has('theme')) { flame.colors = []; flame.render(); timeline.render(); sandwichFlames.forEach((f) => { f.colors = []; f.render(); }); }
    },
    unmount() { ctrl?.abort(); flame.resizeObserver.disconnect(); tooltip.hidden = true; },
    onKey(e) {
      if (e.key === '/') { e.preventDefault(); $('#x-search').focus(); }
      else if (e.key === 'Escape') app.set({ zoom: '', search: '', fn: '' }, true);
      else if (e.key === 'i') app.set({ layout: app.state.layout === 'icicle' ? 'flame' : 'icicle' }, true);
      else if (e.key === 's') openSandwich();
      else if (e.key === 'g') app.set({ graph: app.state.graph ? '' : '1' }, true);
      else if (e.key === 'p') openPeek();
      else return false;
      return true;
    },
    flame, timeline, graphView,
    get graph() { return graphJson; },
    get top() { return top; },
    get flameJson() { return flameJson; },
  };
}

/** A prefix tree of labelled stacks → the API's flame JSON shape. */
class Trie {
  constructor() { this.root = { kids: new Map(), total: 0, self: 0 }; }
  add(path, value) {
    let n = this.root;
    n.total += value;
    for (const key of path) {
      let c = n.kids.get(key);
      if (!c) { c = { kids: new Map(), total: 0, self: 0 }; n.kids.set(key, c); }
      c.total += value;
      n = c;
    }
    n.self += value;
  }
  toJson(names, unit) {
    const nodes = [];
    const out = [];
    const nameIdx = new Map();
    const visit = (node, key, parent) => {
      let nameI = 0;
      if (key !== null) {
        const [nm, inl] = key.split('\u0000');
        if (!nameIdx.has(nm)) { nameIdx.set(nm, names.length + out.length); out.push(nm); }
        nameI = nameIdx.get(nm);
        nodes.push([nameI, Number(inl), parent, node.total, node.self]);
      } else nodes.push([0, 0, -1, node.total, node.self]);
      const me = nodes.length - 1;
      for (const k of [...node.kids.keys()].sort()) visit(node.kids.get(k), k, me);
    };
    visit(this.root, null, -1);
    return { names: names.concat(out), nodes, unit, total: this.root.total };
  }
}

/** Callers and callees of function `fn` from a laid-out flame tree. */
export function sandwich(d, fn) {
  const callers = new Trie(), callees = new Trie();
  const key = (i) => `${d.names[d.name[i]]}\u0000${d.inline[i]}`;
  for (let i = 1; i < d.n; i++) {
    if (d.names[d.name[i]] !== fn) continue;
    let outer = true;
    for (let a = d.parent[i]; a > 0; a = d.parent[a]) if (d.names[d.name[a]] === fn) { outer = false; break; }
    if (!outer) continue;
    const up = [];
    for (let a = i; a > 0; a = d.parent[a]) up.push(key(a));
    callers.add(up, d.total[i]);
    for (let u = i; u < d.end[i]; u++) {
      if (!d.self[u]) continue;
      const path = [];
      for (let a = u; a !== i; a = d.parent[a]) path.push(key(a));
      path.push(key(i));
      callees.add(path.reverse(), d.self[u]);
    }
  }
  return { callers: callers.toJson([''], d.unit), callees: callees.toJson([''], d.unit) };
}
