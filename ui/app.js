// The page: view routing, the selection controls every view shares, and the state that
// lives in the URL (every view can be shared by copying the address). Views are modules
// with `mount(root, app)` returning `{ update(changed), unmount() }`.

import { getJSON } from './api.js';
import { parseTime, prettyTime, toApiTime } from './format.js';
import * as explore from './explore.js';
import * as compare from './compare.js';
import * as runtime from './runtime.js';
import * as insights from './insights.js';
import * as traces from './traces.js';
import * as loadruns from './loadruns.js';

const VIEWS = { explore, compare, runtime, insights, traces, loadruns, targets: runtime.targets };
/** Old view names that still open their successor (shared links keep working). */
const ALIASES = { leaks: 'insights' };

/** Every piece of view state and its default; only non-defaults are written to the URL. */
const DEFAULTS = {
  view: 'explore', job: '', kind: '', si: '', sel: '', from: 'now-1h', to: 'now',
  // How snapshots (goroutines, heap in use) combine over the range: '' = mean per instance
  agg: '',
  // Explore
  zoom: '', search: '', layout: 'icicle', sort: 'flat', fn: '', sandwich: '', all: '', by: '', graph: '', peek: '',
  // Refine, as go tool pprof's flags (Explore and Compare)
  focus: '', ignore: '', hide: '', show: '', show_from: '', prune_from: '', tagfocus: '', tagignore: '', granularity: '',
  // Compare: base range and labels (the head is from/to and sel)
  bfrom: '', bto: '', bsel: '', norm: '1',
  // Traces: the capture shown
  trace: '',
};

/** Kinds whose profiles are snapshots (what a process holds at one time): over a range the
 * API answers each instance's mean (agg=mean), its last (latest) or the plain sum. */
export const SNAPSHOT_KINDS = ['goroutine', 'goroutineleak', 'heap'];

/** Sample types per kind, as Go writes them ('' = the profile's default). */
export const SAMPLE_TYPES = {
  cpu: ['samples', 'cpu'],
  heap: ['inuse_space', 'inuse_objects', 'alloc_space', 'alloc_objects'],
  allocs: ['alloc_space', 'alloc_objects', 'inuse_space', 'inuse_objects'],
  goroutine: ['goroutine'], goroutineleak: ['goroutine'],
  mutex: ['delay', 'contentions'], block: ['delay', 'contentions'],
};

function readUrl() {
  const q = new URLSearchParams(location.search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) if (q.has(k)) s[k] = q.get(k);
  if (ALIASES[s.view]) s.view = ALIASES[s.view];
  if (!VIEWS[s.view]) s.view = 'explore';
  return s;
}

function writeUrl(s, push) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (v !== DEFAULTS[k] || k === 'view') q.set(k, v);
  const url = `${location.pathname}?${q}`;
  if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

class App {
  constructor() {
    this.state = readUrl();
    this.series = [];
    this.view = null;
    this.tooltip = document.getElementById('tooltip');
    this.timings = {};
    window.addEventListener('popstate', () => this.apply(readUrl(), false));
    document.getElementById('theme').addEventListener('click', () => this.toggleTheme());
    document.getElementById('help').addEventListener('click', () => document.getElementById('keys').showModal());
    document.getElementById('nav').addEventListener('click', (e) => {
      const a = e.target.closest('a[data-view]');
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      this.set({ view: a.dataset.view }, true);
    });
    document.addEventListener('keydown', (e) => this.onKey(e));
    window.gocost = this; // for the browser tests and the curious
  }

  async start() {
    try {
      this.series = await getJSON('series');
    } catch (e) {
      this.series = [];
      this.startError = e.message;
    }
    this.fillDefaults(this.state);
    writeUrl(this.state, false);
    this.mountView();
  }

  jobs() {
    // Services with profiles or execution traces.
    return [...new Set(this.series.filter((s) => s.kind !== 'metric').map((s) => s.labels.job).filter(Boolean))].sort();
  }

  /** Profile kinds of a service (traces have their own view). */
  kinds(job) {
    return [...new Set(this.series.filter((s) => s.kind !== 'metric' && s.kind !== 'trace' && (!job || s.labels.job === job)).map((s) => s.kind))].sort();
  }

  /** Whether a service has execution traces. */
  traced(job) {
    return this.series.some((s) => s.kind === 'trace' && s.labels.job === job);
  }

  fillDefaults(s) {
    const jobs = this.jobs();
    if (!s.job && jobs.length) s.job = jobs[0];
    const kinds = this.kinds(s.job);
    if (!s.kind && kinds.length) s.kind = kinds.includes('cpu') ? 'cpu' : kinds[0];
  }

  /** Changes state (and the URL); `push` makes a history entry (a new view or range). */
  set(patch, push = false) {
    const next = { ...this.state, ...patch };
    if (patch.job !== undefined && patch.kind === undefined && !this.kinds(next.job).includes(next.kind)) {
      next.kind = '';
      this.fillDefaults(next);
    }
    if (patch.kind !== undefined && patch.si === undefined && next.kind !== this.state.kind) next.si = '';
    this.apply(next, push);
  }

  apply(next, push) {
    const changed = new Set(Object.keys(next).filter((k) => next[k] !== this.state[k]));
    this.state = next;
    writeUrl(next, push);
    if (changed.has('view') || !this.view) this.mountView();
    else if (changed.size) {
      if (['job', 'kind', 'si', 'agg', 'sel', 'from', 'to'].some((k) => changed.has(k))) this.renderControls();
      this.view.update(changed);
    }
  }

  mountView() {
    this.view?.unmount?.();
    const root = document.getElementById('view');
    root.replaceChildren();
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === this.state.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.title = `gocost · ${this.state.view}`;
    this.renderControls();
    if (this.startError) {
      const e = document.createElement('div');
      e.className = 'error'; e.textContent = this.startError;
      root.append(e);
    }
    this.view = VIEWS[this.state.view].mount(root, this);
  }

  /** The selection bar: service, kind, sample type, label matchers, time range. */
  renderControls() {
    const s = this.state, box = document.getElementById('controls');
    const v = s.view;
    if (v === 'targets') { box.replaceChildren(); box.hidden = true; return; }
    box.hidden = false;
    const opt = (val, text, cur) => `<option value="${attr(val)}"${val === cur ? ' selected' : ''}>${attr(text)}</option>`;
    const jobs = this.jobs();
    const kinds = this.kinds(s.job);
    const types = SAMPLE_TYPES[s.kind] || [];
    const presets = ['5m', '15m', '1h', '6h', '24h', '7d'];
    // Suggestions for the matchers box: every label="value" pair of the service's series.
    const pairs = [...new Set(this.series.filter((x) => x.labels.job === s.job)
      .flatMap((x) => Object.entries(x.labels).filter(([k]) => k !== 'job' && k !== '__name__').map(([k, val]) => `${k}="${val}"`)))].sort();
    const onlyRange = v === 'loadruns'; // runs are listed by time alone
    box.innerHTML = `
      ${onlyRange ? '' : `<label>Service <select id="c-job">${jobs.map((j) => opt(j, j, s.job)).join('') || '<option value="">(no data yet)</option>'}</select></label>`}
      ${v === 'runtime' || v === 'insights' || v === 'traces' || onlyRange ? '' : `<label>Profile <select id="c-kind">${kinds.map((k) => opt(k, k, s.kind)).join('')}</select></label>
      <label>Type <select id="c-si">${opt('', 'default', s.si)}${types.map((t) => opt(t, t, s.si)).join('')}</select></label>
      ${SNAPSHOT_KINDS.includes(s.kind) ? `<label title="Goroutines and heap in use are snapshots: over a range, each instance's mean (instances add up), its last snapshot, or every snapshot added up (pprof's merge)">Over range <select id="c-agg">${opt('', 'mean', s.agg)}${opt('latest', 'latest', s.agg)}${opt('sum', 'sum', s.agg)}</select></label>` : ''}`}
      ${onlyRange ? '' : `<label title="Label matchers, e.g. instance=&quot;10.0.0.1:6060&quot;, env!=&quot;dev&quot;, pod=~&quot;api-.*&quot;">Labels
        <input id="c-sel" class="sel" list="c-labels" placeholder='instance="…"' value="${attr(s.sel)}"></label>`}
      <datalist id="c-labels">${pairs.map((p) => `<option value="${attr(p)}">`).join('')}</datalist>
      <span class="presets" role="group" aria-label="Time range presets">${presets.map((p) =>
        `<button type="button" data-preset="${p}" aria-pressed="${s.from === 'now-' + p && s.to === 'now'}">${p}</button>`).join('')}</span>
      <label title="${v === 'compare' ? 'The head range (compared with the base)' : 'Start of the range'}">${v === 'compare' ? '<span class="head-key">Head</span>' : 'From'} <input id="c-from" class="time" value="${attr(prettyTime(s.from))}" title="unix seconds, RFC 3339, now or now-1h"></label>
      <label>to <input id="c-to" class="time" value="${attr(prettyTime(s.to))}"></label>
      <button type="button" id="c-out" title="Zoom out: twice the range, same centre (-)">−</button>
      <button type="button" id="c-reload" title="Reload the data (r)">↻</button>`;
    const on = (id, ev, f) => box.querySelector(id)?.addEventListener(ev, f);
    on('#c-job', 'change', (e) => this.set({ job: e.target.value, zoom: '', fn: '', sandwich: '' }, true));
    on('#c-kind', 'change', (e) => this.set({ kind: e.target.value, zoom: '', fn: '', sandwich: '' }, true));
    on('#c-si', 'change', (e) => this.set({ si: e.target.value }, true));
    on('#c-agg', 'change', (e) => this.set({ agg: e.target.value }, true));
    const commit = (e) => { if (e.type === 'change' || e.key === 'Enter') this.set({ sel: box.querySelector('#c-sel').value.trim() }, true); };
    on('#c-sel', 'change', commit);
    const range = () => this.set({ from: box.querySelector('#c-from').value.trim() || 'now-1h', to: box.querySelector('#c-to').value.trim() || 'now' }, true);
    on('#c-from', 'change', range);
    on('#c-to', 'change', range);
    on('#c-out', 'click', () => this.zoomOut());
    on('#c-reload', 'click', () => this.reload());
    for (const b of box.querySelectorAll('[data-preset]')) b.addEventListener('click', () => this.set({ from: 'now-' + b.dataset.preset, to: 'now' }, true));
  }

  /** [fromMs, toMs] of the current range, resolved now. */
  rangeMs(from = this.state.from, to = this.state.to) {
    const now = Date.now();
    return [parseTime(from, now) ?? now - 3600e3, parseTime(to, now) ?? now];
  }

  /** Twice the range around the same centre, ending no later than now. */
  zoomOut() {
    const [from, to] = this.rangeMs();
    const now = Date.now(), span = to - from;
    const end = Math.min(now, to + span / 2);
    this.set({ from: toApiTime(end - 2 * span), to: end === now ? 'now' : toApiTime(end) }, true);
  }

  /** Fetches the view's data again (relative ranges move to the current time). */
  reload() {
    this.view?.update(new Set(['reload']));
  }

  toggleTheme() {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = t;
    localStorage.setItem('gocost-theme', t);
    this.view?.update(new Set(['theme']));
  }

  onKey(e) {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName);
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const views = ['explore', 'compare', 'runtime', 'insights', 'traces', 'targets', 'loadruns'];
    if (e.key >= '1' && e.key <= '7') this.set({ view: views[Number(e.key) - 1] }, true);
    else if (e.key === 't') this.toggleTheme();
    else if (e.key === '?') document.getElementById('keys').showModal();
    else if (e.key === 'r') this.reload();
    else if (e.key === '-') this.zoomOut();
    else if (this.view?.onKey?.(e) !== false) return;
  }
}

/** Escapes text for HTML attributes and content. */
function attr(s) {
  return String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

new App().start();
