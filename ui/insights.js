// Leaks: goroutine leaks of the selected service over the selected range, per instance —
// what the leaked goroutines run, how they wait, how many, how fast they grow, since when and
// how sure gocost is (`/api/v1/leaks`, the analysis of `gocost leaks`) — and allocation sites
// whose heap in use keeps growing (`/api/v1/heap_growth`, `gocost heap-growth`).

import { getJSON, selector } from './api.js';
import { esc, ago, dateTime, label } from './format.js';

export function mount(root, app) {
  root.innerHTML = `<div class="toolbar"><h2 style="margin:0;font-size:16px">Goroutine leaks</h2>
      <span class="muted" id="l-summary"></span></div>
    <div class="error" id="l-error" role="alert"></div>
    <div class="tablebox" style="max-height:none"><table class="data" id="l-table" aria-label="Goroutine leaks">
    <thead><tr><th class="name">instance</th><th class="name">function</th><th class="name">blocking</th><th>goroutines</th>
    <th>growth / hour</th><th>first seen</th><th>confidence</th><th class="name">created by</th></tr></thead>
    <tbody></tbody></table></div>
    <div class="hint">A group of goroutines (what it runs, where it waits) leaks when its count keeps growing, still grows
    lately, rarely shrinks and is not sleeping; Go's goroutineleak profile proves some (confidence 1). Hover a row for its stack.</div>
    <div class="toolbar"><h2 style="margin:0;font-size:16px">Growing heap</h2><span class="muted" id="h-summary"></span></div>
    <div class="error" id="h-error" role="alert"></div>
    <div class="tablebox" style="max-height:none"><table class="data" id="h-table" aria-label="Growing heap">
    <thead><tr><th class="name">instance</th><th class="name">allocation site</th><th>in use</th><th>growth / hour</th>
    <th>first seen</th><th>confidence</th></tr></thead><tbody></tbody></table></div>
    <div class="hint">Heap in use per allocation site (heap profiles' inuse_space), reported when it keeps growing by 4 MiB/hour or more.</div>`;
  const $ = (id) => root.querySelector(id);
  let ctrl = null, rows = [], heapRows = [];

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const s = app.state;
    document.body.dataset.ready = '';
    $('#l-error').textContent = '';
    // Only kinds the service has (asking for others would only log 404s in the console).
    const has = (kind) => app.series.some((x) => x.kind === kind && x.labels.job === s.job);
    let series = [];
    if (has('goroutine')) try {
      series = await getJSON('leaks', { query: selector('goroutine', s.job, s.sel), from: s.from, to: s.to }, { signal: ctrl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      $('#l-error').textContent = e.status === 404 ? `${e.message} (scrape the goroutine profile to find leaks)` : e.message;
    }
    rows = series.flatMap((x) => x.findings.map((f) => ({ instance: x.labels.instance || x.labels.job || '', ...f })));
    const snaps = series.reduce((n, x) => n + x.snapshots, 0);
    $('#l-summary').textContent = `${rows.length} leak${rows.length === 1 ? '' : 's'} in ${series.length} instance${series.length === 1 ? '' : 's'}, ${snaps} goroutine profiles`;
    $('#l-table tbody').innerHTML = rows.length ? rows.map((f) => `<tr title="${esc(f.stack.join('\n'))}">
      <td class="name">${esc(f.instance)}</td><td class="name">${esc(f.function)}</td>
      <td class="name">${esc(f.blocking)}${f.blocking_frame !== f.function ? ` <span class="muted">in ${esc(f.blocking_frame)}</span>` : ''}</td>
      <td>${f.count}</td><td>${f.rate_per_hour.toFixed(0)}</td>
      <td title="${esc(dateTime(f.first_seen_ms))}">${esc(ago(f.first_seen_ms))}</td>
      <td>${f.confidence.toFixed(2)}${f.evidence.includes('runtime') ? ' <span class="badge down">proven</span>' : ''}</td>
      <td class="name">${esc(f.created_by || '')}</td></tr>`).join('')
      : `<tr><td colspan="8" class="empty">${has('goroutine') ? 'No goroutine leaks in this range.'
        : 'No goroutine profiles for this service: scrape the goroutine profile to find leaks.'}</td></tr>`;
    if (has('heap')) await loadHeap(s, ctrl.signal);
    else {
      heapRows = [];
      $('#h-summary').textContent = '';
      $('#h-table tbody').innerHTML = '<tr><td colspan="6" class="empty">No heap profiles for this service: scrape the heap profile to find growth.</td></tr>';
    }
    document.body.dataset.ready = 'leaks';
  }

  async function loadHeap(s, signal) {
    $('#h-error').textContent = '';
    let series = [];
    try {
      series = await getJSON('heap_growth', { query: selector('heap', s.job, s.sel), from: s.from, to: s.to }, { signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      $('#h-error').textContent = e.status === 404 ? `${e.message} (scrape the heap profile to find growth)` : e.message;
    }
    heapRows = series.flatMap((x) => x.findings.map((f) => ({ instance: x.labels.instance || x.labels.job || '', ...f })));
    $('#h-summary').textContent = `${heapRows.length} growing site${heapRows.length === 1 ? '' : 's'}, ${series.reduce((n, x) => n + x.snapshots, 0)} heap profiles`;
    $('#h-table tbody').innerHTML = heapRows.length ? heapRows.map((f) => `<tr title="${esc(f.stack.join('\n'))}">
      <td class="name">${esc(f.instance)}</td><td class="name">${esc(f.site)}</td>
      <td>${esc(label(f.inuse_bytes, 'bytes'))}</td><td>${esc(label(f.rate_bytes_per_hour, 'bytes'))}</td>
      <td title="${esc(dateTime(f.first_seen_ms))}">${esc(ago(f.first_seen_ms))}</td><td>${f.confidence.toFixed(2)}</td></tr>`).join('')
      : '<tr><td colspan="6" class="empty">No growing heap in this range.</td></tr>';
  }
  load();
  return {
    update(changed) { if (['job', 'sel', 'from', 'to', 'reload'].some((k) => changed.has(k))) load(); },
    unmount() { ctrl?.abort(); },
    get rows() { return rows; },
    get heapRows() { return heapRows; },
  };
}
