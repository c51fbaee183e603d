// A flame graph drawn on a <canvas>. Input: the API's flame JSON (`names`, `nodes` as
// depth-first `[name, kind, parent, total, self(, base total, base self)]`, node 0 the
// root; kind 0 a frame, 1 an inlined frame, 2 a parent's children narrower than a pixel
// when the API cut the tree to the graph's `width`). Layout is computed once per data set into typed arrays; a frame draws only boxes
// at least MIN_PX wide and skips whole subtrees of narrower ones (a depth-first list keeps
// every subtree contiguous: `end[i]` is one past its last node), so drawing costs what is
// visible, not the tree's size. Hit testing is a binary search in the nodes of one depth.

import { label, pct, signed, esc } from './format.js';

const ROW = 18;
const MIN_PX = 0.35;
const FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return h >>> 0;
}

/** The package of a Go symbol (`net/http.(*conn).serve` → `net/http`). */
function pkg(name) {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot > 0 ? name.slice(0, dot) : name;
}

export class Flame {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} o  onSelect(node), onZoom(node), onHover(node|null), tooltip element
   */
  constructor(canvas, o = {}) {
    this.canvas = canvas;
    this.o = o;
    this.ctx = canvas.getContext('2d');
    this.data = null;
    this.inverted = true;
    this.zoom = 0;
    this.sel = -1;
    this.hover = -1;
    this.match = null; // Uint8Array: 1 = matched
    this.minPx = MIN_PX; // boxes narrower than this are skipped with their subtrees
    this.timings = { layout: 0, draw: 0, hover: 0, search: 0, zoom: 0 };
    canvas.tabIndex = 0;
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => { this.setHover(-1); this.hideTip(); });
    canvas.addEventListener('click', (e) => {
      const n = this.hit(e.offsetX, e.offsetY);
      if (n >= 0) { this.select(n); this.setZoom(n); }
    });
    canvas.addEventListener('keydown', (e) => this.onKey(e));
    this.resizeObserver = new ResizeObserver(() => this.render());
    this.resizeObserver.observe(canvas.parentElement);
  }

  /** Loads a flame JSON. `diff`: nodes carry base values; `scale` multiplies them. */
  setData(json, opts = {}) {
    const t0 = performance.now();
    this.data = layout(json, opts);
    this.colors = new Array(json.names.length);
    this.zoom = 0; this.sel = -1; this.hover = -1; this.match = null;
    this.timings.layout = performance.now() - t0;
  }

  get nodeCount() { return this.data ? this.data.n - 1 : 0; }

  label(i) {
    const d = this.data;
    if (i === 0) return this.o.rootLabel || 'root';
    const s = d.names[d.name[i]];
    return d.inline[i] === 1 ? `${s} (inline)` : s;
  }

  /** Whether node `i` stands for children narrower than a pixel (the API's kind 2). */
  isOther(i) { return this.data.inline[i] === 2; }

  /** Whether the subtree of `i` has rows the API cut (kind 2): zooming in needs detail. */
  cutBelow(i) {
    const d = this.data;
    for (let k = i; k < d.end[i]; k++) if (d.inline[k] === 2) return true;
    return false;
  }

  /** The path of a node as frame labels (for the URL). */
  pathOf(i) {
    const out = [];
    for (; i > 0; i = this.data.parent[i]) out.push(this.label(i));
    return out.reverse();
  }

  /** The node at a path of labels, or -1. */
  findPath(path) {
    const d = this.data;
    let cur = 0;
    for (const lab of path) {
      let found = -1;
      for (let c = cur + 1; c < d.end[cur]; c = d.end[c]) if (this.label(c) === lab) { found = c; break; }
      if (found < 0) return -1;
      cur = found;
    }
    return cur;
  }

  setZoom(i) {
    const t0 = performance.now();
    this.zoom = i;
    this.render();
    this.timings.zoom = performance.now() - t0;
    this.o.onZoom?.(i);
  }

  select(i) {
    this.sel = i;
    this.render();
    this.o.onSelect?.(i);
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    this.render();
  }

  /**
   * Highlights nodes whose label matches `re` (or, with `exact`, equals a function name);
   * returns the matched share: Σ width of matched nodes with no matched ancestor over the
   * root's width.
   */
  setSearch(re, exactName = null) {
    const t0 = performance.now();
    const d = this.data;
    if (!d || (!re && exactName == null)) { this.match = null; this.render(); return null; }
    const nameHit = new Uint8Array(d.names.length);
    for (let k = 0; k < d.names.length; k++) {
      const s = d.names[k];
      nameHit[k] = exactName != null ? (s === exactName ? 1 : 0) : (re.test(s) ? 1 : 0);
    }
    const m = new Uint8Array(d.n);
    let sum = 0, covered = 0;
    for (let i = 1; i < d.n; i++) {
      let hit = nameHit[d.name[i]];
      if (!hit && re && exactName == null && d.inline[i] === 1) hit = re.test(this.label(i)) ? 1 : 0;
      if (d.inline[i] === 2) hit = 0; // boxes too thin to draw, summed: no name to match
      m[i] = hit;
      if (hit && i >= covered) { sum += d.width[i]; covered = d.end[i]; }
    }
    this.match = m;
    this.matchedValue = sum;
    this.render();
    this.timings.search = performance.now() - t0;
    return d.width[0] ? sum / d.width[0] : 0;
  }

  color(i) {
    const d = this.data;
    const dark = document.documentElement.dataset.theme === 'dark';
    if (d.diff) {
      const head = d.total[i], base = d.bTotal[i];
      const m = Math.max(Math.abs(head), Math.abs(base));
      const r = m ? (head - base) / m : 0; // -1 … 1
      const a = Math.min(1, Math.sqrt(Math.abs(r))); // ±6% → 0.25, ±25% → 0.5, ±100% → 1
      // Blue (less) / orange (more): distinguishable with every common colour-vision deficiency.
      const [h, s] = r > 0 ? [28, 95] : [212, 80];
      const l = dark ? 22 + 26 * a : 92 - 40 * a;
      return `hsl(${h} ${Math.round(s * Math.max(a, 0.12))}% ${Math.round(l)}%)`;
    }
    if (d.inline[i] === 2) return dark ? '#555' : '#c8c8c8';
    const k = d.name[i];
    let c = this.colors[k];
    if (c === undefined) {
      const nm = d.names[k];
      const p = pkg(nm);
      const hv = hash(p);
      let hue;
      if (p === 'runtime' || p.startsWith('runtime/')) hue = 200 + (hv % 20);
      else if (!p.includes('.') && !p.startsWith('main')) hue = 40 + (hv % 15); // std
      else hue = 8 + (hv % 26); // user code: warm
      const sat = 60 + (hash(nm) % 25);
      const l = dark ? 30 + (hash(nm) % 10) : 62 + (hash(nm) % 12);
      c = this.colors[k] = `hsl(${hue} ${sat}% ${l}%)`;
    }
    return c;
  }

  /** Canvas-pixel geometry of the current view. */
  view() {
    const d = this.data;
    const w = this.canvas.clientWidth;
    const z = this.zoom;
    return { w, x0: d.x0[z], scale: d.width[z] ? w / d.width[z] : 0 };
  }

  rowY(depth) {
    return this.inverted ? depth * ROW : (this.data.maxDepth - depth) * ROW;
  }

  render() {
    if (!this.data) return;
    const t0 = performance.now();
    const d = this.data, ctx = this.ctx, cv = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const cssW = cv.parentElement.clientWidth;
    const cssH = (d.maxDepth + 1) * ROW;
    if (cv.width !== Math.round(cssW * dpr) || cv.height !== Math.round(cssH * dpr)) {
      cv.width = Math.round(cssW * dpr); cv.height = Math.round(cssH * dpr);
      cv.style.width = cssW + 'px'; cv.style.height = cssH + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const style = getComputedStyle(document.documentElement);
    ctx.fillStyle = style.getPropertyValue('--bg').trim() || '#fff';
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    if (!this.charW) this.charW = ctx.measureText('MMMMMMMMMM').width / 10;
    const textColor = style.getPropertyValue('--flame-text').trim() || '#000';
    const dim = style.getPropertyValue('--flame-dim').trim() || '#ddd';
    const hl = style.getPropertyValue('--flame-match').trim() || '#c0f';
    const { x0: vx, scale } = this.view();
    const z = this.zoom, zEnd = d.end[z];
    const ancestors = new Set();
    for (let a = d.parent[z]; z > 0 && a >= 0; a = a === 0 ? -1 : d.parent[a]) ancestors.add(a);
    const m = this.match;
    let drawn = 0;
    const box = (i, x, w) => {
      const y = this.rowY(d.depth[i]);
      ctx.fillStyle = m && !m[i] ? dim : m ? hl : this.color(i);
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
      if (i === this.sel || i === this.hover) {
        ctx.strokeStyle = textColor; ctx.lineWidth = i === this.sel ? 2 : 1;
        ctx.strokeRect(x + 1, y + 1, Math.max(w - 2.5, 0.5), ROW - 3);
      }
      const chars = Math.floor((w - 6) / this.charW);
      if (chars >= 3) {
        let t = this.label(i);
        if (i === 0) t = `${this.o.rootLabel || 'root'} · ${label(d.total[0], d.unit)}`;
        if (t.length > chars) t = t.slice(0, chars - 1) + '…';
        ctx.fillStyle = textColor;
        ctx.fillText(t, x + 3, y + ROW / 2);
      }
      drawn++;
    };
    // Ancestors of the zoomed node span the whole width.
    for (const a of ancestors) box(a, 0, cssW);
    for (let i = z; i < zEnd;) {
      const w = d.width[i] * scale;
      if (w < this.minPx) { i = d.end[i]; continue; }
      box(i, (d.x0[i] - vx) * scale, w);
      i++;
    }
    this.drawn = drawn;
    this.timings.draw = performance.now() - t0;
  }

  /** The node under canvas CSS pixel (x, y), or -1. */
  hit(x, y) {
    const d = this.data;
    if (!d) return -1;
    const row = Math.floor(y / ROW);
    const depth = this.inverted ? row : d.maxDepth - row;
    if (depth < 0 || depth > d.maxDepth) return -1;
    const z = this.zoom;
    if (depth <= d.depth[z]) {
      let a = z;
      while (d.depth[a] > depth) a = d.parent[a];
      return a;
    }
    const { x0: vx, scale } = this.view();
    if (!scale) return -1;
    const vxAt = vx + x / scale;
    const list = d.byDepth[depth];
    let lo = 0, hi = list.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (d.x0[list[mid]] <= vxAt) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0) return -1;
    const i = list[found];
    if (vxAt >= d.x0[i] + d.width[i] || i < z || i >= d.end[z]) return -1;
    if (d.width[i] * scale < this.minPx) return -1;
    return i;
  }

  /** The CSS-pixel box of a node in the current view (for tests and the keyboard tooltip). */
  boxOf(i) {
    const d = this.data;
    const { x0: vx, scale, w } = this.view();
    const onPath = i <= this.zoom && d.end[i] > this.zoom;
    const x = onPath ? 0 : (d.x0[i] - vx) * scale;
    return { x, y: this.rowY(d.depth[i]), w: onPath ? w : d.width[i] * scale, h: ROW };
  }

  onMove(e) {
    const t0 = performance.now();
    const i = this.hit(e.offsetX, e.offsetY);
    this.setHover(i);
    if (i >= 0) this.showTip(i, e.clientX, e.clientY); else this.hideTip();
    this.timings.hover = performance.now() - t0;
  }

  /** Tooltip text for a node: cum/flat with units and shares. */
  describe(i) {
    const d = this.data, u = d.unit;
    const root = d.diff ? Math.abs(d.total[0]) : d.width[0];
    if (d.diff) {
      const h = d.total[i], b = d.bTotal[i], hs = d.self[i], bs = d.bSelf[i];
      const ch = b ? ((h - b) / Math.abs(b)) * 100 : (h ? Infinity : 0);
      return { name: this.label(i), rows: [
        ['head cum', `${label(h, u)} (${pct(h, d.total[0])})`],
        ['base cum', `${label(b, u)} (${pct(b, d.bTotal[0])})`],
        ['change', `${signed(h - b, u)} (${Number.isFinite(ch) ? (ch > 0 ? '+' : '') + ch.toFixed(2) + '%' : 'new'})`],
        ['head flat', label(hs, u)], ['base flat', label(bs, u)],
      ], values: { total: h, self: hs, base_total: b, base_self: bs } };
    }
    const z = this.zoom;
    const rows = [
      ['cum', `${label(d.total[i], u)} (${pct(d.total[i], root)})`],
      ['flat', `${label(d.self[i], u)} (${pct(d.self[i], root)})`],
    ];
    if (z > 0) rows.push(['of zoomed', pct(d.total[i], d.width[z])]);
    const name = this.isOther(i) ? 'frames narrower than a pixel here (zoom in to see them)' : this.label(i);
    return { name, rows, values: { total: d.total[i], self: d.self[i] } };
  }

  showTip(i, cx, cy) {
    const tip = this.o.tooltip;
    if (!tip) return;
    const t = this.describe(i);
    tip.innerHTML = `<div class="tip-name">${esc(t.name)}</div><table>${t.rows
      .map(([k, v]) => `<tr><th>${k}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
    tip.dataset.node = String(i);
    for (const [k, v] of Object.entries(t.values)) tip.dataset[k] = String(v);
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    const x = Math.min(cx + 14, window.innerWidth - r.width - 8);
    const y = cy + 16 + r.height > window.innerHeight ? cy - r.height - 10 : cy + 16;
    tip.style.left = Math.max(4, x) + 'px';
    tip.style.top = Math.max(4, y) + 'px';
  }

  hideTip() { if (this.o.tooltip) this.o.tooltip.hidden = true; }

  /** Keyboard: arrows move the selection (up/down follow the screen), Enter zooms, Escape resets. */
  onKey(e) {
    const d = this.data;
    if (!d) return;
    let s = this.sel >= 0 ? this.sel : this.zoom;
    const toLeaf = () => { // widest child
      let best = -1;
      for (let c = s + 1; c < d.end[s]; c = d.end[c]) if (best < 0 || d.width[c] > d.width[best]) best = c;
      return best;
    };
    const sibling = (dir) => {
      const list = d.byDepth[d.depth[s]];
      let k = list.indexOf(s) + dir;
      while (k >= 0 && k < list.length && d.parent[list[k]] !== d.parent[s]) k += dir;
      return k >= 0 && k < list.length ? list[k] : -1;
    };
    let next = -2;
    const deeper = this.inverted ? 'ArrowDown' : 'ArrowUp';
    const shallower = this.inverted ? 'ArrowUp' : 'ArrowDown';
    if (e.key === deeper) next = toLeaf();
    else if (e.key === shallower) next = s > 0 ? d.parent[s] : -1;
    else if (e.key === 'ArrowLeft') next = sibling(-1);
    else if (e.key === 'ArrowRight') next = sibling(1);
    else if (e.key === 'Enter' || e.key === ' ') { if (this.sel >= 0) this.setZoom(this.sel); e.preventDefault(); return; }
    else if (e.key === 'Escape') { this.setZoom(0); e.preventDefault(); return; }
    if (next === -2) return;
    e.preventDefault();
    if (next < 0) return;
    this.select(next);
    const b = this.boxOf(next);
    const r = this.canvas.getBoundingClientRect();
    this.showTip(next, r.left + b.x + Math.min(b.w, 40), r.top + b.y);
  }
}

/**
 * A flame JSON laid out in typed arrays: per node its depth, x offset and width (Σ |value|,
 * plus the base's in a diff), and `end` (one past its subtree in the depth-first list).
 * `diff`: nodes carry base values; `baseScale` multiplies them.
 */
export function layout(json, { diff = false, baseScale = 1 } = {}) {
  const nodes = json.nodes;
  const n = nodes.length;
  const name = new Int32Array(n), parent = new Int32Array(n), depth = new Int32Array(n);
  const inline = new Uint8Array(n), end = new Int32Array(n);
  const total = new Float64Array(n), self = new Float64Array(n);
  const width = new Float64Array(n), x0 = new Float64Array(n), next = new Float64Array(n);
  const bTotal = diff ? new Float64Array(n) : null, bSelf = diff ? new Float64Array(n) : null;
  let maxDepth = 0;
  for (let i = 0; i < n; i++) {
    const r = nodes[i];
    name[i] = r[0]; inline[i] = r[1]; parent[i] = r[2]; total[i] = r[3]; self[i] = r[4];
    if (diff) { bTotal[i] = r[5] * baseScale; bSelf[i] = r[6] * baseScale; }
    width[i] = Math.abs(r[3]) + (diff ? Math.abs(bTotal[i]) : 0);
    end[i] = i + 1;
    if (i > 0) {
      const p = r[2];
      depth[i] = depth[p] + 1;
      if (depth[i] > maxDepth) maxDepth = depth[i];
      x0[i] = next[p];
      next[p] += width[i];
    }
    next[i] = x0[i];
  }
  for (let i = n - 1; i > 0; i--) if (end[i] > end[parent[i]]) end[parent[i]] = end[i];
  // Nodes of each depth, left to right (depth-first order is left-to-right per depth).
  const counts = new Int32Array(maxDepth + 1);
  for (let i = 0; i < n; i++) counts[depth[i]]++;
  const byDepth = Array.from(counts, (c) => new Int32Array(c));
  counts.fill(0);
  for (let i = 0; i < n; i++) byDepth[depth[i]][counts[depth[i]]++] = i;
  return { json, names: json.names, unit: json.unit, n, name, parent, depth, inline, end,
    total, self, width, x0, bTotal, bSelf, maxDepth, byDepth, diff };
}
