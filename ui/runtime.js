// Runtime: the service's profile timeline with GC pauses, heap and goroutines beneath it on
// the same time axis (drag on any chart to zoom all of them). Targets: every scrape target
// and profile kind, its health and last error.

import { getJSON, selector, scrapeHints } from './api.js';
import { esc, label, ago, dateTime, toApiTime } from './format.js';
import { TimeChart } from './charts.js';

const CHARTS = [
  { id: 'cpu', title: 'CPU (profile totals)', unit: 'nanoseconds' },
  { id: 'gc', title: 'GC pauses (one dot per cycle; from execution traces: one per stop-the-world pause)', unit: 'seconds',
    metrics: [['go_gc_pause_seconds', 'dots'], ['go_trace_stw_pause_seconds', 'dots']] },
  { id: 'heap', title: 'Heap', unit: 'bytes',
    metrics: [['go_memstats_heap_alloc_bytes', 'line'], ['go_memstats_heap_inuse_bytes', 'line'], ['go_memstats_next_gc_bytes', 'line']] },
  { id: 'goroutines', title: 'Goroutines', unit: '' },
  { id: 'sched', title: 'Scheduler latency, runnable → running (execution traces: p50, p90, p99, max per capture)', unit: 'seconds',
    metrics: [['go_trace_sched_latency_seconds', 'line']] },
  { id: 'mmu', title: 'Minimum mutator utilisation (execution traces: per window length, per capture)', unit: '%',
    metrics: [['go_trace_mmu', 'line']] },
];

/** What tells apart series of one metric: a quantile, an MMU window, a pause's reason. */
function part(l) {
  if (l.quantile) return l.quantile === '1' ? 'max' : `p${Math.round(Number(l.quantile) * 100)}`;
  if (l.window) return `window ${l.window}`;
  return l.reason || '';
}

export function mount(root, app) {
  root.innerHTML = `<div class="error" id="r-error" role="alert"></div><div id="r-hints"></div>
    ${CHARTS.map((c) => `<div class="panel" data-chart="${c.id}"><h3>${c.title}</h3><div id="r-${c.id}"></div></div>`).join('')}
    <div class="hint">Points are per instance; drag across any chart to zoom all of them.</div>`;
  const err = root.querySelector('#r-error');
  const onSelect = (a, b) => app.set({ from: toApiTime(a), to: toApiTime(b) }, true);
  const charts = Object.fromEntries(CHARTS.map((c) => [c.id, new TimeChart(root.querySelector(`#r-${c.id}`), {
    height: 110, unit: c.unit, tooltip: app.tooltip, onSelect, empty: 'no data in this range',
  })]));
  const counts = {};
  let ctrl = null, goroutineStep = '';

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const s = app.state;
    document.body.dataset.ready = '';
    err.textContent = '';
    const range = app.rangeMs();
    const errors = [];
    const sel = (extra) => selector('', s.job, [s.sel, extra].filter(Boolean).join(','));
    const series = async (name) => {
      try { return await getJSON('runtime', { query: sel(`__name__="${name}"`), from: s.from, to: s.to }, { signal }); }
      catch (e) { if (e.status !== 404) errors.push(e.message); return []; }
    };
    const inst = (labels) => labels.instance || labels.job || '';
    const jobs = [];
    // Kinds this service has (asking for others would only log 404s in the console).
    const has = (kind) => app.series.some((x) => x.kind === kind && x.labels.job === s.job);
    // CPU profile totals (the timeline the Explore view shows).
    jobs.push((async () => {
      if (!has('cpu')) { counts.cpu = 0; charts.cpu.set([], range); return; }
      try {
        const tl = await getJSON('timeline', { query: selector('cpu', s.job, s.sel), from: s.from, to: s.to }, { signal });
        counts.cpu = tl.points.length;
        charts.cpu.set([{ name: 'cpu', points: tl.points, kind: 'bar' }], range, { unit: tl.unit || 'nanoseconds', step: tl.step_ms });
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e.status !== 404) errors.push(e.message);
        counts.cpu = 0;
        charts.cpu.set([], range);
      }
    })());
    for (const c of CHARTS.filter((c) => c.metrics)) {
      jobs.push((async () => {
        const out = [];
        for (const [name, kind] of c.metrics) {
          for (const x of await series(name)) {
            out.push({ name: [name.replace(/^go_memstats_|^go_trace_|^go_/, ''), part(x.labels), inst(x.labels)].filter(Boolean).join(' '), points: x.points, kind });
          }
        }
        counts[c.id] = out.reduce((a, x) => a + x.points.length, 0);
        charts[c.id].set(out, range);
      })());
    }
    // Goroutines: Prometheus' go_goroutines when the job exports it, else the goroutine
    // profiles: the timeline gives, per bucket, each instance's mean of its snapshots,
    // instances added up — what the service holds.
    jobs.push((async () => {
      let out = (await series('go_goroutines')).map((x) => ({ name: `goroutines ${inst(x.labels)}`, points: x.points, kind: 'line' }));
      if (!out.length && has('goroutine')) {
        try {
          const [from, to] = range;
          const step = Math.max(1, Math.floor((to - from) / 1000 / 400));
          const tl = await getJSON('timeline', { query: selector('goroutine', s.job, s.sel), from: s.from, to: s.to, step: `${step}s` }, { signal });
          goroutineStep = `${step}s`;
          out = [{ name: 'goroutines (from goroutine profiles)', points: tl.points, kind: 'line' }];
        } catch (e) { if (e.name !== 'AbortError' && e.status !== 404) errors.push(e.message); }
      }
      counts.goroutines = out.reduce((a, x) => a + x.points.length, 0);
      charts.goroutines.set(out, range);
    })());
    // Charts left empty by a failing scrape say which one and what the service lacks.
    jobs.push((async () => {
      try {
        root.querySelector('#r-hints').innerHTML = scrapeHints(await getJSON('targets', {}, { signal }), s.job);
      } catch (e) { if (e.name !== 'AbortError') errors.push(e.message); }
    })());
    await Promise.all(jobs);
    if (signal.aborted) return;
    err.textContent = [...new Set(errors)].join('\n');
    document.body.dataset.ready = 'runtime';
  }

  load();
  return {
    update(changed) {
      if (['job', 'sel', 'from', 'to', 'reload'].some((k) => changed.has(k))) load();
      else if (changed.has('theme')) Object.values(charts).forEach((c) => c.render());
    },
    unmount() { ctrl?.abort(); app.tooltip.hidden = true; },
    counts, charts,
    get goroutineStep() { return goroutineStep; },
  };
}

/** Where a target's kind is shown: its profiles in Explore, its traces in Traces, its metrics in Runtime. */
function kindLink(t) {
  const view = PROFILE_KINDS.includes(t.kind) ? 'explore' : t.kind === 'trace' ? 'traces' : 'runtime';
  const q = new URLSearchParams({ view, job: t.job, sel: `instance="${t.instance}"` });
  if (PROFILE_KINDS.includes(t.kind)) q.set('kind', t.kind);
  return `?${q}`;
}

/** A label set as `name="value"` chips, leaving out `skip`. */
function labelText(labels, skip = []) {
  return Object.entries(labels || {}).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `<code>${esc(k)}="${esc(v)}"</code>`).join(' ');
}

const PROFILE_KINDS = ['cpu', 'heap', 'allocs', 'goroutine', 'goroutineleak', 'mutex', 'block'];

export const targets = {
  mount(root, app) {
    root.innerHTML = `<div class="toolbar"><h2 style="margin:0;font-size:16px">Targets</h2>
      <span class="muted" id="t-summary"></span><span class="spacer"></span>
      <button type="button" id="t-refresh">Refresh</button></div>
      <div class="error" id="t-error" role="alert"></div>
      <div class="tablebox" style="max-height:none"><table class="data" id="t-table" aria-label="Scrape targets">
      <thead><tr><th class="name">job</th><th class="name">instance</th><th class="name">kind</th><th>state</th><th>last scrape</th><th>duration</th><th>bytes</th><th>scrapes</th><th>failures</th><th class="name">last error</th><th class="name">labels</th></tr></thead>
      <tbody></tbody></table></div>
      <h3 style="font-size:14px">Dropped by relabelling <span class="muted" id="t-dropped-summary"></span></h3>
      <div class="tablebox"><table class="data" id="t-dropped" aria-label="Dropped targets">
      <thead><tr><th class="name">job</th><th class="name">discovered labels</th></tr></thead><tbody></tbody></table></div>`;
    const $ = (id) => root.querySelector(id);
    let timer = 0, list = [], dropped = [];
    async function load() {
      document.body.dataset.ready = '';
      try {
        [list, dropped] = await Promise.all([getJSON('targets'), getJSON('targets', { state: 'dropped' })]);
        $('#t-error').textContent = '';
      } catch (e) {
        $('#t-error').textContent = e.message;
        list = [];
        dropped = [];
      }
      list.sort((a, b) => a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance) || a.kind.localeCompare(b.kind));
      const down = list.filter((t) => !t.up).length;
      $('#t-summary').textContent = `${list.length} target×kind, ${down} down`;
      $('#t-table tbody').innerHTML = list.length ? list.map((t) => `<tr data-up="${t.up}">
        <td class="name">${esc(t.job)}</td><td class="name">${esc(t.instance)}</td><td class="name"><a href="${kindLink(t)}">${esc(t.kind)}</a></td>
        <td><span class="badge ${t.up ? 'up' : 'down'}">${t.up ? 'up' : 'down'}</span></td>
        <td title="${t.last_scrape_ms ? dateTime(t.last_scrape_ms) : ''}">${t.last_scrape_ms ? ago(t.last_scrape_ms) : 'never'}</td>
        <td>${t.last_duration_ms}ms</td><td>${esc(label(t.last_bytes, 'bytes'))}</td><td>${t.scrapes_total}</td>
        <td class="${t.failures_total ? 'bad' : ''}">${t.failures_total}</td>
        <td class="err">${esc(t.last_error || '')}</td>
        <td class="name labels">${labelText(t.labels, ['job', 'instance'])}${t.discovered_labels && Object.keys(t.discovered_labels).length
          ? `<details><summary class="muted">discovered</summary>${labelText(t.discovered_labels)}</details>` : ''}</td></tr>`).join('')
        : '<tr><td colspan="11" class="empty">No scrape targets: start gocost with --config (see README).</td></tr>';
      // A fleet may drop thousands: the first 500 are drawn, the count says how many.
      $('#t-dropped-summary').textContent = dropped.length > 500 ? `(${dropped.length}, the first 500 shown)` : `(${dropped.length})`;
      $('#t-dropped tbody').innerHTML = dropped.length ? dropped.slice(0, 500).map((d) => `<tr>
        <td class="name">${esc(d.job)}</td><td class="name labels">${labelText(d.discovered_labels)}</td></tr>`).join('')
        : '<tr><td colspan="2" class="empty">None</td></tr>';
      document.body.dataset.ready = 'targets';
    }
    $('#t-refresh').addEventListener('click', load);
    load();
    timer = setInterval(load, 10000);
    return { update(changed) { if (changed.has('reload')) load(); }, unmount() { clearInterval(timer); }, get list() { return list; }, get dropped() { return dropped; } };
  },
};
