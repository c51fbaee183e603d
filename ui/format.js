// Number, unit and time formatting. Values are printed as pprof prints them
// (gocost-pprof's units.rs, pprof's measurement package): auto-scaled, two decimals,
// ".00" dropped — 13.10ms, 2.62s, 7617.88kB, 0.

const FAMILIES = [
  { units: [['B', ['b', 'byte'], 1], ['kB', ['kb', 'kbyte', 'kilobyte'], 1024],
    ['MB', ['mb', 'mbyte', 'megabyte'], 1048576], ['GB', ['gb', 'gbyte', 'gigabyte'], 1073741824],
    ['TB', ['tb', 'tbyte', 'terabyte'], 1099511627776], ['PB', ['pb', 'pbyte', 'petabyte'], 1125899906842624]] },
  { units: [['ns', ['ns', 'nanosecond'], 1], ['us', ['μs', 'us', 'microsecond'], 1e3],
    ['ms', ['ms', 'millisecond'], 1e6], ['s', ['s', 'sec', 'second'], 1e9], ['hrs', ['hour', 'hr'], 3600e9]] },
];

function sniff(family, unit) {
  let u = unit.toLowerCase();
  if (u.length > 2 && u.endsWith('s')) u = u.slice(0, -1);
  return family.units.find((x) => x[1].includes(u));
}

/** `value` in `unit` auto-scaled: [scaled value, unit to print ('' for counts)]. */
export function scale(value, unit) {
  if (value < 0) { const [v, u] = scale(-value, unit); return [-v, u]; }
  for (const fam of FAMILIES) {
    const from = sniff(fam, unit || '');
    if (!from) continue;
    const v = value * from[2];
    let f = 0, name = '';
    for (const [n, , factor] of fam.units) if (factor >= f && v / factor >= 1) { f = factor; name = n; }
    if (f === 0) return [v / fam.units[0][2], fam.units[0][0]];
    return [v / f, name];
  }
  return [value, ''];
}

/** pprof's value label: `1.23s`, `512kB`, `42`. */
export function label(value, unit) {
  const [v, u] = scale(value, unit);
  let s = v.toFixed(2);
  if (s.endsWith('.00')) s = s.slice(0, -3);
  if (s === '0' || s === '-0') return '0';
  return s + u;
}

/** A signed label: `+1.2s`, `-300ms`. */
export function signed(value, unit) {
  return (value > 0 ? '+' : '') + label(value, unit);
}

/** `part / whole` as a percentage with two decimals (`12.34%`). */
export function pct(part, whole) {
  if (!whole) return '0.00%';
  return ((part / whole) * 100).toFixed(2) + '%';
}

/**
 * Money in `currency` (an ISO 4217 code formats with its symbol, anything else is appended):
 * two decimals from 1 up, three significant digits below (`€1,234.50`, `€0.0123`).
 */
export function money(value, currency) {
  const abs = Math.abs(value);
  const o = abs >= 1 || abs === 0 ? { minimumFractionDigits: 2, maximumFractionDigits: 2 } : { maximumSignificantDigits: 3 };
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency, ...o }).format(value);
  } catch {
    return `${new Intl.NumberFormat('en', o).format(value)} ${currency}`;
  }
}

/** A duration in seconds as the config writes it: `90s`, `15m`, `2h`, `1d`. */
export function durationText(secs) {
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60]]) if (secs >= n && secs % n === 0) return `${secs / n}${u}`;
  return `${secs}s`;
}

/** Durations as the API takes them: 15m, 1h, 7d. */
export function parseDuration(s) {
  const m = /^(\d+(?:ms|s|m|h|d|w|y))+$/.test(s) ? s.match(/\d+(?:ms|s|m|h|d|w|y)/g) : null;
  if (!m) return null;
  const mult = { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5, y: 31536e6 };
  return m.reduce((acc, part) => {
    const [, n, u] = part.match(/^(\d+)(\D+)$/);
    return acc + Number(n) * mult[u];
  }, 0);
}

/** A time as the API takes it (unix seconds, RFC 3339, now, now-1h) → unix ms, or null. */
export function parseTime(s, nowMs = Date.now()) {
  s = String(s ?? '').trim();
  if (s === 'now') return nowMs;
  if (s.startsWith('now-')) {
    const d = parseDuration(s.slice(4));
    return d == null ? null : nowMs - d;
  }
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

/** Unix ms → the API's unix seconds (a string, whole seconds). */
export function toApiTime(ms) {
  return String(Math.round(ms / 1000));
}

/** A short local clock time for axes (`14:05`, `14:05:30`, `Nov 22 14:05`). */
export function clock(ms, spanMs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (spanMs <= 10 * 60e3) return `${hm}:${p(d.getSeconds())}`;
  if (spanMs <= 36 * 3600e3) return hm;
  return `${d.toLocaleString('en', { month: 'short' })} ${d.getDate()} ${hm}`;
}

/** A full local date-time (`2026-11-22 14:05:30`). */
export function dateTime(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** How long ago (`3s ago`, `5m ago`). */
export function ago(ms, nowMs = Date.now()) {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** HTML-escapes text. */
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A regexp from user text: a valid regexp as typed (case-insensitive), else the literal text. */
export function searchRegex(text) {
  if (!text) return null;
  try { return new RegExp(text, 'i'); } catch { return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i'); }
}

/** Regexp-escapes text (for an exact-name match). */
export function reEscape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Moves an API time by `ms` (`now-1h` − 1 day = `now-25h`; absolute times as unix seconds). */
export function shiftTime(t, ms) {
  const m = /^now(?:-(\d+)s)?$/.exec(toSecondsForm(t));
  if (m) {
    const secs = Number(m[1] || 0) - ms / 1000;
    return secs === 0 ? 'now' : prettyTime(`now-${secs}s`);
  }
  const v = parseTime(t);
  return v == null ? t : toApiTime(v + ms);
}

function toSecondsForm(t) {
  if (t === 'now') return t;
  if (t.startsWith('now-')) {
    const v = parseTime(t, 0);
    return v == null ? t : `now-${Math.round(-v / 1000)}s`;
  }
  return t;
}

/** For display: `now-3600s` → `now-1h`; unix seconds → RFC 3339 UTC (both as the API reads them). */
export function prettyTime(t) {
  if (/^\d{9,11}(\.\d+)?$/.test(t)) return new Date(Number(t) * 1000).toISOString().replace('.000Z', 'Z');
  const m = /^now-(\d+)s$/.exec(t);
  if (!m) return t;
  const s = Number(m[1]);
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60]]) if (s % n === 0) return `now-${s / n}${u}`;
  return t;
}
