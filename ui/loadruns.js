// Load runs: the `gocost load` runs kept by this server (`gocost load --store URL --name
// NAME`), newest first, each with its numbers, its HTML report and its JSON (what `gocost
// compare --base A.json --head B.json` reads).

import { getJSON, apiUrl } from './api.js';
import { esc, label, dateTime, money } from './format.js';

export function mount(root, app) {
  root.innerHTML = `<div class="error" id="lr-error" role="alert"></div>
    <div class="panel"><h3>Load runs</h3>
      <div class="tablebox"><table class="data" id="lr-list" aria-label="Load runs">
      <thead><tr><th class="name">run</th><th class="name">name</th><th class="name">target</th><th class="name">load</th>
        <th>requests</th><th>errors</th><th>answered/s</th><th>P50</th><th>P99</th><th>P99.9</th><th>CPU/request</th><th>cost / 1M</th><th></th><th></th></tr></thead>
      <tbody></tbody></table></div>
      <div class="hint">Keep a run with <code>gocost load --store ${esc(location.origin)} --name NAME …</code>;
        compare two with <code>gocost compare --base a.json --head b.json</code> (each run's <em>JSON</em> link).</div></div>`;
  const err = root.querySelector('#lr-error');
  let ctrl = null;

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    document.body.dataset.ready = '';
    err.textContent = '';
    let runs = [];
    try {
      runs = await getJSON('loadruns', { from: app.state.from, to: app.state.to }, { signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      err.textContent = e.message;
    }
    const secs = (v) => (typeof v === 'number' ? label(v, 'seconds') : '');
    const offered = (r) => [r.rate != null ? `${r.rate}/s` : `${r.concurrency} clients`, r.protocol || ''].filter(Boolean).join(' · ');
    root.querySelector('#lr-list tbody').innerHTML = runs.length ? runs.map((r) => `<tr data-id="${esc(r.id)}">
      <td class="name">${esc(dateTime(r.time_ms))}</td><td class="name">${esc(r.name || '')}</td>
      <td class="name">${esc(r.url || '')}</td><td class="name">${esc(offered(r))}</td>
      <td>${esc(r.requests ?? '')}</td><td>${esc(r.errors ?? '')}</td><td>${typeof r.throughput === 'number' ? r.throughput.toFixed(1) : ''}</td>
      <td>${secs(r.latency?.p50)}</td><td>${secs(r.latency?.p99)}</td><td>${secs(r.latency?.p999)}</td>
      <td>${secs(r.cpu_per_request_seconds)}</td><td>${typeof r.cost_per_million === 'number' ? esc(money(r.cost_per_million, r.currency || '')) : ''}</td>
      <td>${r.report ? `<a href="${apiUrl('loadruns/' + r.id + '/report')}" target="_blank" rel="noopener">report</a>` : ''}</td>
      <td><a href="${apiUrl('loadruns/' + r.id)}" download="${esc(r.name || 'run')}-${esc(r.id)}.json">JSON</a></td></tr>`).join('')
      : '<tr><td colspan="14" class="empty">No load runs in this range.</td></tr>';
    if (signal.aborted) return;
    document.body.dataset.ready = 'loadruns';
  }

  load();
  return {
    update(changed) {
      if (['from', 'to', 'reload'].some((k) => changed.has(k))) load();
    },
    unmount() { ctrl?.abort(); },
  };
}
