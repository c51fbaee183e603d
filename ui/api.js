// The HTTP API (API.md): JSON GETs whose errors carry the server's message.

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
export const REFINE = ['focus', 'ignore', 'hide', 'show', 'show_from', 'prune_from', 'tagfocus', 'tagignore'];

/** The active refine options of a state, for API parameters. */
export function refineParams(s) {
  const r = {};
  for (const k of REFINE) if (s[k]) r[k] = s[k];
  return r;
}
