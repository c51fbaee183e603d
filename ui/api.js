// The HTTP API (API.md): JSON GETs whose errors carry the server's message.

import { esc } from './format.js';

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** The URL of an API endpoint with its parameters (empty ones left out). */
export function apiUrl(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return `/api/v1/${path}${s ? '?' + s : ''}`;
}

let inflight = 0;
function busy(d) {
  inflight += d;
  document.body.dataset.busy = String(inflight);
}

let partialAt = 0;
/** Says, above the page, that an answer lacks the recent data of an instance of a cluster
 * that did not answer (the `X-Gocost-Partial` header, API.md); gone once answers are
 * complete again. */
function notePartial(r) {
  const why = r.headers.get('x-gocost-partial');
  let el = document.getElementById('partial-notice');
  if (why) {
    partialAt = Date.now();
    if (!el) {
      el = document.createElement('div');
      el.id = 'partial-notice';
      el.className = 'partial-notice';
      el.setAttribute('role', 'status');
      document.body.prepend(el);
    }
    el.textContent = `Partial answer: ${why}. Recent data of that instance is missing until it answers again.`;
  } else if (el && Date.now() - partialAt > 2000) {
    el.remove();
  }
}

/** GETs JSON; throws ApiError with the API's `error` message on failure. */
export async function getJSON(path, params, { signal } = {}) {
  busy(1);
  try {
    let r;
    try {
      r = await fetch(apiUrl(path, params), { signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, `gocost is not reachable (${e.message})`);
    }
    notePartial(r);
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    if (!r.ok) throw new ApiError(r.status, (body && body.error) || text || r.statusText);
    if (body === null) throw new ApiError(r.status, 'the API answered with something that is not JSON');
    return body;
  } finally {
    busy(-1);
  }
}

/** A selector: `kind{job="x",extra}` (extra: matchers as typed, e.g. `instance="a:1"`). */
export function selector(kind, job, extra) {
  const m = [];
  if (job) m.push(`job="${job.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  if (extra && extra.trim()) m.push(extra.trim().replace(/^\{|\}$/g, ''));
  return `${kind || ''}{${m.join(',')}}`;
}

/** pprof's refine options kept in the URL and passed to the API as they are. */
export const REFINE = ['focus', 'ignore', 'hide', 'show', 'show_from', 'prune_from', 'tagfocus', 'tagignore', 'granularity'];

/** The active refine options of a state, for API parameters. */
export function refineParams(s) {
  const r = {};
  for (const k of REFINE) if (s[k]) r[k] = s[k];
  return r;
}

/** What each scraped kind needs from a Go service, for hints when its scrape fails. */
const NEEDS = {
  expvar: 'the service serves no /debug/vars: add <code>import _ "expvar"</code> to it (or scrape <code>metrics = ["prometheus"]</code>)',
  prometheus: 'the service serves no Prometheus metrics there: expose them (e.g. promhttp) or set the job\'s <code>metrics_path</code>',
  profile: 'the service serves no /debug/pprof: add <code>import _ "net/http/pprof"</code> to it (or set the job\'s <code>path_prefix</code>)',
};

/**
 * Why a job's data may be missing: its failing scrape targets (of `kinds`, default all),
 * each with its error and, for a 404, what the service lacks. HTML, empty when all is well.
 */
export function scrapeHints(targets, job, kinds = null) {
  return targets.filter((t) => t.job === job && !t.up && t.last_error && (!kinds || kinds.includes(t.kind)))
    .map((t) => {
      const need = t.last_status === 404 ? NEEDS[t.kind] || NEEDS.profile : '';
      return `<div class="hint-fail">The <b>${esc(t.kind)}</b> scrape of ${esc(t.instance)} fails: <code>${esc(t.last_error)}</code>${need ? ` — ${need}` : ''}. See Targets.</div>`;
    }).join('');
}
