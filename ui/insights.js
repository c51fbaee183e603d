// Insights: what the selected service costs and what drives it, over the selected range —
// cost per hour and month (`/api/v1/cost`, priced with the config's `[cost]`), what its
// deploys made slower (`/api/v1/regressions`), GC pauses, the collector's CPU and the
// allocation behind it (`/api/v1/gc`), goroutine leaks (`/api/v1/leaks`), growing heap
// (`/api/v1/heap_growth`) and the alert rules with what fires now (`/api/v1/alerts`).
// Every number is the API's; this module only lays out and formats. Endpoints whose data
// the service does not have are not asked (a 404 would only log an error in the console):
// the section says what to scrape instead.

import { getJSON, selector, scrapeHints } from './api.js';
import { esc, ago, dateTime, label, money, durationText } from './format.js';
import { Heatmap } from './charts.js';

const SECTIONS = [['cost', 'Cost'], ['regressions', 'Regressions'], ['gc', 'GC'], ['leaks', 'Goroutine leaks'],
  ['heap', 'Growing heap'], ['alerts', 'Alerts']];

export const MEMORY_SOURCE = {
  none: 'no memory data', heap: 'heap profiles (a lower bound)', go_sys: 'Go runtime (sys)', rss: 'resident (RSS)',
};

/** What a growing runtime.malg site is: new goroutines, and who starts them if known. */
const goroutinesNote = (f) => `descriptors of new goroutines that never exit${f.started_by?.length
  ? `: started by ${f.started_by.join(', ')} (see Goroutine leaks)` : ' (scrape goroutine profiles to see who starts them)'}`;

/** Where an instance's rows come from: its instance label, else the job's. */
const inst = (labels) => labels.instance || labels.job || '(no instance label)';
const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;
/** Cores: `1.25`, or millicores as Kubernetes writes them (`12.5m`) below a tenth of a core. */
export const cores = (v) => {
  if (v === 0) return '0';
  if (Math.abs(v) >= 0.1) return v.toFixed(2);
  const m = v * 1000;
  return `${Math.abs(m) >= 10 ? m.toFixed(1) : m.toPrecision(2)}m`;
};
/** Memory with its unit, also when it is none at all (`0B`). */
export const gib = (v) => (v === 0 ? '0B' : label(v * 1073741824, 'bytes'));
export const share = (v) => (v * 100).toFixed(2) + '%';
/** Per second: bytes as pprof scales them (`1.25GB/s`), counts with thousands separators (`27,136,394/s`). */
export const rate = (v, unit) => `${unit ? label(v, unit) : count(v)}/s`;
export const count = (v) => v.toLocaleString('en', { maximumFractionDigits: Math.abs(v) < 100 ? 2 : 0 });
/** A relative change (odds ratio − 1): `+31.2%`. */
export const change = (v) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`;
/** A build as people name it: its version label, else the build ID's first 12 characters. */
export const build = (b) => b.version || (b.build_id ? b.build_id.slice(0, 12) : '?');
/** The upper bound of pause bucket `r` (the last holds everything above the last bound). */
export const bucketText = (le, r) => (r < le.length ? `≤${label(le[r], 'seconds')}` : `>${label(le[le.length - 1], 'seconds')}`);

/** A rule's threshold or an alert's value in the unit of its `when`. */
export function alertValue(when, v, currency) {
  switch (when) {
    case 'goroutine_leak': return `${v.toFixed(0)}/hour`;
    case 'heap_growth': return `${label(v, 'bytes')}/hour`;
    case 'gc_pause_p99': return label(v, 'seconds');
    case 'gc_cpu_fraction': return share(v);
    case 'cost_per_month': return currency ? `${money(v, currency)}/month` : `${v.toFixed(2)}/month`;
    case 'regression': return change(v);
    default: return String(v);
  }
}

const table = (id, aria, head) => `<div class="tablebox short"><table class="data" id="${id}" aria-label="${aria}">
  <thead><tr>${head.map((h) => `<th${h.startsWith('!') ? ' class="name"' : ''}>${h.replace(/^!/, '')}</th>`).join('')}</tr></thead><tbody></tbody></table></div>`;
/** A row attribute that opens `patch` of the app state on click or Enter (see `mount`). */
const go = (patch) => ` tabindex="0" data-go="${esc(JSON.stringify(patch))}"`;
/** Explore with `fn` highlighted in a kind's profile. */
const explore = (kind, si, fn) => go({ view: 'explore', kind, si, fn, zoom: '', search: '', sandwich: '' });
const emptyRow = (cols, text) => `<tr><td colspan="${cols}" class="empty">${text}</td></tr>`;

export function mount(root, app) {
  root.innerHTML = `<nav class="sections" aria-label="Sections">${SECTIONS.map(([id, t]) => `<a href="#sec-${id}">${t}</a>`).join('')}</nav>
    <section class="insight" id="sec-cost" aria-labelledby="h-cost"><h2 id="h-cost">Cost <span class="muted" id="cost-summary"></span></h2>
    <div class="error" id="cost-error" role="alert"></div>
    <dl class="facts" id="cost-facts" aria-label="Service cost"></dl>
    <h3>Per instance</h3>
    ${table('cost-instances', 'Cost per instance', ['!instance', 'cores', 'memory', '!memory from', 'CPU / month', 'memory / month', 'per hour', 'per month'])}
    <h3>Top functions by cost</h3>
    ${table('cost-functions', 'Top functions by cost', ['!function', 'cores', 'memory', 'CPU / month', 'memory / month', 'per month'])}
    <h3>All services: top spenders</h3>
    ${table('cost-services', 'All services by cost', ['!service', 'instances', 'cores', 'memory', 'per hour', 'per month', 'share'])}
    <div class="hint">Cores: CPU profile time ÷ the time the profiles cover (<code>12.5m</code> = 12.5 millicores). Memory: resident memory when scraped, else the Go
    runtime's (<code>metrics = ["expvar"]</code>), else the heap profiles' in-use heap. A function's memory is its share of the
    heap × the service's memory. Prices from the config's <code>[cost]</code>. Click a function to see it in Explore, a service to switch to it.
    <span id="preempt-rule">A function's CPU includes the <code>runtime.asyncPreempt</code> samples taken while it ran (Go's preemption
    signal lands in tight loops, so pprof shows them as a separate leaf): here and in Regressions they are charged to the function they
    interrupted, so its numbers can be higher than its flat time in Explore, which shows pprof's own view.</span></div></section>

    <section class="insight" id="sec-regressions" aria-labelledby="h-reg"><h2 id="h-reg">Regressions <span class="muted" id="reg-summary"></span></h2>
    <div class="error" id="reg-error" role="alert"></div>
    <h3>Build changes</h3>
    ${table('reg-changes', 'Build changes', ['!instance', 'deployed', '!build', 'profiles before → after', '!result'])}
    <h3>Functions that got more expensive</h3>
    ${table('reg-functions', 'Regressed functions', ['!instance', 'deployed', '!function', 'change', 'share before → after', 'cores before → after', 'p'])}
    <div class="hint">At each change of build (the executable's build ID or the <code>version</code> label) the CPU profiles before and
    after are compared; a function is listed when its share of the CPU grew significantly (p ≤ 0.05 after Holm's correction).
    <code>runtime.asyncPreempt</code> samples count for the function they interrupted (see Cost). Click it to compare before and after.</div></section>

    <section class="insight" id="sec-gc" aria-labelledby="h-gc"><h2 id="h-gc">GC <span class="muted" id="gc-summary"></span></h2>
    <div class="error" id="gc-error" role="alert"></div><div id="gc-hints"></div>
    <h3>Stop-the-world pauses</h3>
    ${table('gc-pauses', 'GC pauses', ['!instance', 'pauses', 'total', 'p50', 'p90', 'p99', 'max'])}
    <div id="gc-heatmaps"></div>
    <h3>GC CPU</h3>
    ${table('gc-cpu', 'GC CPU', ['!instance', 'CPU profiled', 'GC CPU', 'fraction', 'GC cores', '!by phase'])}
    <h3>Top allocation sites</h3>
    ${table('gc-alloc', 'Top allocation sites', ['!instance', '!site', 'bytes / s', 'objects / s', 'share'])}
    <div class="hint">Pauses from the Go runtime's pause ring (<code>metrics = ["expvar"]</code>), else each stop-the-world pause of the GC in the service's execution traces; GC CPU from the CPU profiles'
    collector frames; allocation from the <code>allocs</code> profiles' deltas.</div></section>

    <section class="insight" id="sec-leaks" aria-labelledby="h-leaks"><h2 id="h-leaks">Goroutine leaks <span class="muted" id="l-summary"></span></h2>
    <div class="error" id="l-error" role="alert"></div>
    <div class="tablebox" style="max-height:none"><table class="data" id="l-table" aria-label="Goroutine leaks">
    <thead><tr><th class="name">instance</th><th class="name">function</th><th class="name">blocking</th><th>goroutines</th>
    <th>growth / hour</th><th>first seen</th><th>confidence</th><th class="name">created by</th></tr></thead>
    <tbody></tbody></table></div>
    <div class="hint">A group of goroutines (what it runs, where it waits) leaks when its count keeps growing, still grows
    lately, rarely shrinks and is not sleeping; Go's goroutineleak profile proves some (confidence 1). Hover a row for its stack, click it to see the function in Explore.</div></section>

    <section class="insight" id="sec-heap" aria-labelledby="h-heap"><h2 id="h-heap">Growing heap <span class="muted" id="h-summary"></span></h2>
    <div class="error" id="h-error" role="alert"></div>
    <div class="tablebox" style="max-height:none"><table class="data" id="h-table" aria-label="Growing heap">
    <thead><tr><th class="name">instance</th><th class="name">allocation site</th><th>in use</th><th>growth / hour</th>
    <th>first seen</th><th>confidence</th></tr></thead><tbody></tbody></table></div>
    <div class="hint">Heap in use per allocation site (heap profiles' inuse_space), reported when it keeps growing by 4 MiB/hour or more.</div></section>

    <section class="insight" id="sec-alerts" aria-labelledby="h-alerts"><h2 id="h-alerts">Alerts <span class="muted" id="a-summary"></span></h2>
    <div class="error" id="a-error" role="alert"></div>
    <h3>Rules (all services)</h3>
    ${table('alert-rules', 'Alert rules', ['!rule', '!when', 'above', '!targets', 'window', 'state', 'last evaluation', '!error'])}
    <h3>Firing</h3>
    ${table('alert-firing', 'Firing alerts', ['!rule', '!labels', 'value', '!summary', 'since'])}
    <div class="hint">Rules are the config's <code>[[alert]]</code> entries, evaluated every <code>[alerting] interval</code>;
    firing alerts are POSTed to the rule's webhooks (Alertmanager's JSON) and counted on <code>/metrics</code>.</div></section>`;
  const $ = (id) => root.querySelector(id);
  // Rows that lead somewhere (a function in Explore, a deploy in Compare, another service).
  const follow = (e) => {
    const tr = e.target.closest('tr[data-go]');
    if (!tr || (e.type === 'keydown' && e.key !== 'Enter')) return;
    app.set(JSON.parse(tr.dataset.go), true);
  };
  root.addEventListener('click', follow);
  root.addEventListener('keydown', follow);
  let ctrl = null;
  const data = { cost: null, services: null, instances: null, regressions: null, gc: null, alerts: null, currency: '' };
  let rows = [], heapRows = [], heatmaps = [];

  /** An API answer, or null when it is a 404 (no data of that kind) or aborted; other errors go to `err`. */
  async function fetchOr404(path, params, signal, err, hint) {
    try {
      return await getJSON(path, params, { signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (e.status === 404) { err.textContent = ''; return null; }
      err.textContent = hint ? `${e.message} (${hint})` : e.message;
      return null;
    }
  }

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    const s = app.state;
    document.body.dataset.ready = '';
    for (const e of root.querySelectorAll('.error')) e.textContent = '';
    // Only kinds the service has (asking for others would only log 404s in the console).
    const has = (kind) => app.series.some((x) => x.kind === kind && x.labels.job === s.job);
    const range = { from: s.from, to: s.to };
    try {
      await Promise.all([
        loadCost(s, has, range, signal),
        loadRegressions(s, has, range, signal),
        loadGc(s, has, range, signal),
        loadLeaks(s, has, signal),
        loadHeap(s, has, signal),
      ]);
      await loadAlerts(signal); // after cost: a cost rule's values are in its currency
    } catch (e) {
      if (e.name === 'AbortError') return;
      throw e;
    }
    if (signal.aborted) return;
    document.body.dataset.ready = 'insights';
  }

  async function loadCost(s, has, range, signal) {
    const err = $('#cost-error');
    const query = selector('', s.job, s.sel);
    const mine = has('cpu') || has('heap');
    const anyone = app.series.some((x) => x.kind === 'cpu' || x.kind === 'heap');
    const [job, per, all] = await Promise.all([
      mine ? fetchOr404('cost', { query, by: 'job', ...range }, signal, err) : null,
      mine ? fetchOr404('cost', { query, by: 'instance', ...range }, signal, err) : null,
      anyone ? fetchOr404('cost', { by: 'job', top: 1, ...range }, signal, err) : null,
    ]);
    data.cost = job; data.instances = per; data.services = all;
    const g = job?.groups?.[0];
    const cur = (job || all)?.rates?.currency || '';
    data.currency = cur;
    const m = (v) => money(v, cur);
    if (g) {
      const r = job.rates;
      $('#cost-summary').textContent = `${plural(g.targets, 'instance')}, ${plural(g.cpu_profiles, 'CPU profile')}, ${plural(g.heap_profiles, 'heap profile')}; ${m(r.cpu_per_core_hour)} per core-hour, ${m(r.memory_per_gib_hour)} per GiB-hour`;
      const facts = [['cores', 'cores', cores(g.cores)], ['memory', 'memory', gib(g.memory_gib)],
        ['memory_source', 'memory from', MEMORY_SOURCE[g.memory_source] || g.memory_source],
        ['per_hour', 'per hour', m(g.cpu_per_hour + g.memory_per_hour)], ['per_month', 'per month', m(g.total_per_month)]];
      $('#cost-facts').innerHTML = facts.map(([k, t, v]) => `<div><dt>${t}</dt><dd data-key="${k}">${esc(v)}</dd></div>`).join('');
      $('#cost-functions tbody').innerHTML = g.functions.length ? g.functions.map((f) => `<tr data-name="${esc(f.function)}"${explore('cpu', '', f.function)} title="Show in Explore">
        <td class="name" title="${esc(f.function)}">${esc(f.function)}</td><td>${cores(f.cores)}</td><td>${esc(gib(f.memory_gib))}</td>
        <td>${esc(m(f.cpu_per_month))}</td><td>${esc(m(f.memory_per_month))}</td><td>${esc(m(f.total_per_month))}</td></tr>`).join('')
        : emptyRow(6, 'No functions in the profiles of this range.');
    } else {
      $('#cost-summary').textContent = '';
      $('#cost-facts').innerHTML = '';
      $('#cost-functions tbody').innerHTML = emptyRow(6, mine ? 'No CPU or heap profiles of this service in this range.'
        : 'No CPU or heap profiles for this service: scrape <code>cpu</code> (and <code>heap</code>, or <code>metrics = ["expvar"]</code> for memory) to price it.');
    }
    const groups = per?.groups || [];
    $('#cost-instances tbody').innerHTML = groups.length ? groups.map((x) => `<tr data-instance="${esc(inst(x.labels))}">
      <td class="name">${esc(inst(x.labels))}</td><td>${cores(x.cores)}</td><td>${esc(gib(x.memory_gib))}</td>
      <td class="name">${esc(MEMORY_SOURCE[x.memory_source] || x.memory_source)}</td>
      <td>${esc(m(x.cpu_per_month))}</td><td>${esc(m(x.memory_per_month))}</td>
      <td>${esc(m(x.cpu_per_hour + x.memory_per_hour))}</td><td>${esc(m(x.total_per_month))}</td></tr>`).join('')
      : emptyRow(8, 'No instances with CPU or heap profiles in this range.');
    const svc = all?.groups || [];
    $('#cost-services tbody').innerHTML = svc.length ? svc.map((x) => `<tr data-job="${esc(x.labels.job || '')}"${x.labels.job ? go({ job: x.labels.job }) : ''}${x.labels.job === s.job ? ' aria-selected="true"' : ''}>
      <td class="name">${esc(x.labels.job || '(no job)')}</td><td>${x.targets}</td><td>${cores(x.cores)}</td><td>${esc(gib(x.memory_gib))}</td>
      <td>${esc(m(x.cpu_per_hour + x.memory_per_hour))}</td><td>${esc(m(x.total_per_month))}</td>
      <td>${share(all.total_per_month ? x.total_per_month / all.total_per_month : 0)}</td></tr>`).join('')
      : emptyRow(7, 'No service has CPU or heap profiles in this range.');
  }

  async function loadRegressions(s, has, range, signal) {
    const err = $('#reg-error');
    const series = has('cpu') ? await fetchOr404('regressions', { query: selector('cpu', s.job, s.sel), ...range }, signal, err) || [] : [];
    data.regressions = series;
    const changes = series.flatMap((x) => x.changes.map((c) => ({ instance: inst(x.labels), ...c }))).sort((a, b) => b.at_ms - a.at_ms);
    const fns = changes.flatMap((c) => c.regressions.map((r) => ({ instance: c.instance, at_ms: c.at_ms, ...r })));
    $('#reg-summary').textContent = has('cpu') ? `${plural(changes.length, 'build change')}, ${plural(fns.length, 'regressed function')} in ${plural(series.length, 'instance')}, ${plural(series.reduce((n, x) => n + x.profiles, 0), 'CPU profile')}` : '';
    const when = (ms) => `<td title="${esc(dateTime(ms))}">${esc(dateTime(ms))}</td>`;
    $('#reg-changes tbody').innerHTML = changes.length ? changes.map((c) => `<tr data-at="${c.at_ms}" data-instance="${esc(c.instance)}">
      <td class="name">${esc(c.instance)}</td>${when(c.at_ms)}
      <td class="name" title="${esc(`${c.before.build_id || ''} ${c.before.version || ''} → ${c.after.build_id || ''} ${c.after.version || ''}`)}">${esc(build(c.before))} → ${esc(build(c.after))}</td>
      <td>${c.before_profiles} → ${c.after_profiles}</td>
      <td class="wrap">${c.compared ? (c.regressions.length ? `<span class="bad">${plural(c.regressions.length, 'function')} slower</span>` : '<span class="good">no regression</span>')
        : `<span class="muted">not compared: ${esc(c.note || '')}</span>`}</td></tr>`).join('')
      : emptyRow(5, has('cpu') ? 'No build changes in this range (a deploy shows as a new build ID or version label in the CPU profiles).'
        : 'No CPU profiles for this service: scrape <code>cpu</code> to compare builds.');
    $('#reg-functions tbody').innerHTML = fns.length ? fns.map((r) => `<tr data-name="${esc(r.function)}"${go({ view: 'compare', kind: 'cpu', si: '', bfrom: s.from, bto: String(Math.floor(r.at_ms / 1000)),
      from: String(Math.ceil(r.at_ms / 1000)), to: s.to, bsel: '', zoom: '', search: '', fn: '' })} title="Compare before and after the deploy">
      <td class="name">${esc(r.instance)}</td>${when(r.at_ms)}<td class="name" title="${esc(r.function)}">${esc(r.function)}</td>
      <td class="bad">${change(r.change)}</td><td>${share(r.before_share)} → ${share(r.after_share)}</td>
      <td>${cores(r.before_cores)} → ${cores(r.after_cores)}</td><td>${r.p_adjusted.toPrecision(2)}</td></tr>`).join('')
      : emptyRow(7, changes.length ? 'No function got significantly more expensive.' : 'No build changes to compare.');
  }

  async function loadGc(s, has, range, signal) {
    const err = $('#gc-error');
    // Pauses come from Go's /debug/vars (series lists profiles only; targets list every kind).
    let pausesScraped = false, hints = '';
    try {
      const targets = await getJSON('targets', {}, { signal });
      // Pauses from /debug/vars, else from the service's execution traces.
      pausesScraped = targets.some((t) => t.job === s.job && (t.kind === 'expvar' || t.kind === 'trace'))
        || app.traced(s.job);
      hints = scrapeHints(targets, s.job, ['expvar', 'prometheus', 'cpu', 'allocs']);
    } catch (e) { if (e.name === 'AbortError') throw e; }
    $('#gc-hints').innerHTML = hints;
    const any = has('cpu') || has('allocs') || pausesScraped;
    const list = any ? await fetchOr404('gc', { query: selector('', s.job, s.sel), ...range }, signal, err) || [] : [];
    data.gc = list;
    const withPauses = list.filter((g) => g.pauses);
    const withCpu = list.filter((g) => g.gc_cpu);
    const withAlloc = list.filter((g) => g.allocation);
    const parts = [];
    for (const g of withAlloc) parts.push(`${inst(g.labels)} allocates ${rate(g.allocation.bytes_per_second, 'bytes')}`);
    $('#gc-summary').textContent = parts.join('; ');
    $('#gc-pauses tbody').innerHTML = withPauses.length ? withPauses.map((g) => { const p = g.pauses; return `<tr data-instance="${esc(inst(g.labels))}" data-source="${esc(g.pause_source || '')}">
      <td class="name">${esc(inst(g.labels))}${g.pause_source === 'trace' ? ' <span class="muted" title="No /debug/vars: each stop-the-world pause of the GC in the execution traces">(from traces)</span>' : ''}</td><td>${p.count}</td><td>${label(p.total_seconds, 'seconds')}</td>
      <td>${label(p.p50, 'seconds')}</td><td>${label(p.p90, 'seconds')}</td><td>${label(p.p99, 'seconds')}</td><td>${label(p.max, 'seconds')}</td></tr>`; }).join('')
      : emptyRow(7, pausesScraped ? 'No GC pauses in this range.'
        : 'No GC pauses for this service: add <code>metrics = ["expvar"]</code> (Go\'s <code>/debug/vars</code>) or <code>"trace"</code> to its <code>profiles</code> (execution traces).');
    // One heatmap per instance with pauses.
    const box = $('#gc-heatmaps');
    box.replaceChildren();
    heatmaps = [];
    const [from, to] = app.rangeMs();
    for (const g of withPauses.filter((x) => x.heatmap)) {
      const panel = document.createElement('div');
      panel.className = 'panel';
      panel.dataset.instance = inst(g.labels);
      panel.innerHTML = `<h3>Pauses over time · ${esc(inst(g.labels))}</h3>`;
      box.append(panel);
      const le = g.heatmap.le;
      const h = new Heatmap(panel, { height: 190, tooltip: app.tooltip, rowLabel: (r) => bucketText(le, r), rowTitle: (r) => `pauses ${bucketText(le, r)}` });
      h.instance = inst(g.labels);
      h.set(g.heatmap, le.length + 1, [from, to]);
      heatmaps.push(h);
    }
    const phases = [...new Set(withCpu.flatMap((g) => g.gc_cpu.phases.map((p) => p.phase)))];
    $('#gc-cpu tbody').innerHTML = withCpu.length ? withCpu.map((g) => { const c = g.gc_cpu; return `<tr data-instance="${esc(inst(g.labels))}">
      <td class="name">${esc(inst(g.labels))}</td><td>${label(c.cpu_seconds, 'seconds')}</td><td>${label(c.gc_seconds, 'seconds')}</td>
      <td>${share(c.fraction)}</td><td>${cores(c.cores)}</td>
      <td class="name">${phases.map((ph) => { const p = c.phases.find((x) => x.phase === ph); return `${esc(ph.replace(/_/g, ' '))} ${share(p ? p.fraction : 0)}`; }).join(' · ')}</td></tr>`; }).join('')
      : emptyRow(6, 'No CPU profiles for this service in this range: scrape <code>cpu</code> to see the collector\'s share.');
    const sites = withAlloc.flatMap((g) => g.allocation.sites.map((x) => ({ instance: inst(g.labels), ...x })));
    $('#gc-alloc tbody').innerHTML = sites.length ? sites.map((x) => `<tr data-name="${esc(x.site)}"${explore('allocs', 'alloc_space', x.site)} title="Show in Explore">
      <td class="name">${esc(x.instance)}</td><td class="name" title="${esc(x.site)}">${esc(x.site)}</td>
      <td>${rate(x.bytes_per_second, 'bytes')}</td><td>${rate(x.objects_per_second, '')}</td><td>${share(x.share)}</td></tr>`).join('')
      : emptyRow(5, has('allocs') ? 'No allocations in this range.'
        : 'No allocs profiles for this service: add <code>"allocs"</code> to its scrape job\'s <code>profiles</code> to see what drives the GC.');
  }

  async function loadLeaks(s, has, signal) {
    let series = [];
    if (has('goroutine')) series = await fetchOr404('leaks', { query: selector('goroutine', s.job, s.sel), from: s.from, to: s.to }, signal, $('#l-error'),
      'scrape the goroutine profile to find leaks') || [];
    rows = series.flatMap((x) => x.findings.map((f) => ({ instance: inst(x.labels), ...f })));
    const snaps = series.reduce((n, x) => n + x.snapshots, 0);
    $('#l-summary').textContent = `${plural(rows.length, 'leak')} in ${plural(series.length, 'instance')}, ${plural(snaps, 'goroutine profile')}`;
    $('#l-table tbody').innerHTML = rows.length ? rows.map((f) => `<tr title="${esc(f.stack.join('\n'))}"${explore('goroutine', '', f.function)}>
      <td class="name">${esc(f.instance)}</td><td class="name">${esc(f.function)}</td>
      <td class="name">${esc(f.blocking)}${f.blocking_frame !== f.function ? ` <span class="muted">in ${esc(f.blocking_frame)}</span>` : ''}</td>
      <td>${f.count}</td><td>${f.rate_per_hour.toFixed(0)}</td>
      <td title="${esc(dateTime(f.first_seen_ms))}">${esc(ago(f.first_seen_ms))}</td>
      <td>${f.confidence.toFixed(2)}${f.evidence.includes('runtime') ? ' <span class="badge down">proven</span>' : ''}</td>
      <td class="name">${esc(f.created_by || '')}</td></tr>`).join('')
      : emptyRow(8, has('goroutine') ? 'No goroutine leaks in this range.'
        : 'No goroutine profiles for this service: scrape the <code>goroutine</code> profile to find leaks.');
  }

  async function loadHeap(s, has, signal) {
    let series = [];
    if (has('heap')) series = await fetchOr404('heap_growth', { query: selector('heap', s.job, s.sel), from: s.from, to: s.to }, signal, $('#h-error'),
      'scrape the heap profile to find growth') || [];
    heapRows = series.flatMap((x) => x.findings.map((f) => ({ instance: inst(x.labels), ...f })));
    $('#h-summary').textContent = has('heap') ? `${plural(heapRows.length, 'growing site')}, ${plural(series.reduce((n, x) => n + x.snapshots, 0), 'heap profile')}` : '';
    $('#h-table tbody').innerHTML = heapRows.length ? heapRows.map((f) => `<tr title="${esc(f.stack.join('\n'))}"${explore('heap', 'inuse_space', f.site)}>
      <td class="name">${esc(f.instance)}</td><td class="name"${f.site === 'runtime.malg' ? ` title="${esc(goroutinesNote(f))}"` : ''}>${esc(f.site)}</td>
      <td>${esc(label(f.inuse_bytes, 'bytes'))}</td><td>${esc(label(f.rate_bytes_per_hour, 'bytes'))}</td>
      <td title="${esc(dateTime(f.first_seen_ms))}">${esc(ago(f.first_seen_ms))}</td><td>${f.confidence.toFixed(2)}</td></tr>`).join('')
      : emptyRow(6, has('heap') ? 'No growing heap in this range.'
        : 'No heap profiles for this service: scrape the <code>heap</code> profile to find growth.');
  }

  async function loadAlerts(signal) {
    const rules = await fetchOr404('alerts', {}, signal, $('#a-error')) || [];
    data.alerts = rules;
    const cur = data.currency;
    const firing = rules.flatMap((r) => r.firing.map((a) => ({ rule: r, ...a })));
    $('#a-summary').textContent = `${plural(rules.length, 'rule')}, ${firing.length} firing`;
    $('#alert-rules tbody').innerHTML = rules.length ? rules.map((r) => `<tr data-name="${esc(r.name)}">
      <td class="name">${esc(r.name)}</td><td class="name" title="${esc(r.unit || '')}">${esc(r.when)}</td>
      <td title="${esc(`${r.above} (${r.unit})`)}">${esc(alertValue(r.when, r.above, cur))}</td><td class="name">${esc(r.query || 'all')}</td>
      <td>${durationText(r.window_seconds)}</td>
      <td>${r.firing.length ? `<span class="badge down">${r.firing.length} firing</span>` : r.last_evaluation_ms ? '<span class="badge up">ok</span>' : '<span class="muted">not evaluated yet</span>'}</td>
      <td title="${r.last_evaluation_ms ? esc(dateTime(r.last_evaluation_ms)) : ''}">${r.last_evaluation_ms ? esc(ago(r.last_evaluation_ms)) : 'never'}</td>
      <td class="err">${esc(r.last_error || '')}</td></tr>`).join('')
      : emptyRow(8, 'No alert rules: add <code>[[alert]]</code> entries to the config (README, “Alerts”).');
    $('#alert-firing tbody').innerHTML = firing.length ? firing.map((a) => `<tr data-name="${esc(a.rule.name)}">
      <td class="name">${esc(a.rule.name)}</td>
      <td class="name">${esc(Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`).join(', '))}</td>
      <td>${esc(alertValue(a.rule.when, a.value, cur))}</td><td class="wrap">${esc(a.summary)}</td>
      <td title="${esc(dateTime(a.starts_at_ms))}">${esc(ago(a.starts_at_ms))}</td></tr>`).join('')
      : emptyRow(5, rules.length ? 'Nothing fires.' : 'No alert rules.');
  }

  load();
  return {
    update(changed) {
      if (['job', 'sel', 'from', 'to', 'reload'].some((k) => changed.has(k))) load();
      else if (changed.has('theme')) heatmaps.forEach((h) => h.render());
    },
    unmount() { ctrl?.abort(); app.tooltip.hidden = true; },
    data,
    get rows() { return rows; },
    get heapRows() { return heapRows; },
    get heatmaps() { return heatmaps; },
  };
}
