// The call graph of `go tool pprof -http`'s Graph view, drawn in the browser: the API's
// `/api/v1/graph` (the nodes, edges and weights `go tool pprof -dot` has, the same pruning)
// laid out top-down in layers (callers above callees) and drawn as SVG. Box size grows with
// flat, colour with cum (pprof's colours); edge width with weight, dotted for residual edges
// (a path through nodes not shown). Click a box to select its function; wheel + Ctrl zooms.

import { esc } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';

/** Layers: longest path from the entries, cycles (recursion) broken at their back edges. */
export function layout(g) {
  const n = g.nodes.length;
  const out = Array.from({ length: n + 1 }, () => []), inn = Array.from({ length: n + 1 }, () => []);
  for (const e of g.edges) {
    if (!e.src || !e.dst || e.src === e.dst) continue;
    out[e.src].push(e.dst);
    inn[e.dst].push(e.src);
  }
  // DFS from the entries (heaviest first; then any node not reached) to find back edges.
  const state = new Uint8Array(n + 1), back = new Set(), order = [];
  const byCum = g.nodes.map((x) => x.id).sort((a, b) => Math.abs(g.nodes[b - 1].cum) - Math.abs(g.nodes[a - 1].cum));
  const starts = byCum.filter((i) => inn[i].length === 0).concat(byCum);
  for (const s of starts) {
    if (state[s]) continue;
    const stack = [[s, 0]];
    state[s] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, k] = top;
      if (k < out[v].length) {
        top[1]++;
        const w = out[v][k];
        if (state[w] === 1) back.add(`${v}>${w}`);
        else if (!state[w]) { state[w] = 1; stack.push([w, 0]); }
      } else { state[v] = 2; order.push(v); stack.pop(); }
    }
  }
  order.reverse(); // a topological order of the graph without its back edges
  const rank = new Int32Array(n + 1);
  for (const v of order) for (const w of out[v]) if (!back.has(`${v}>${w}`)) rank[w] = Math.max(rank[w], rank[v] + 1);
  const layers = [];
  for (const v of order) (layers[rank[v]] ||= []).push(v);
  // Order within layers: barycentres of the neighbours, sweeping down and up a few times.
  const pos = new Float64Array(n + 1);
  const place = () => layers.forEach((l) => l.forEach((v, i) => { pos[v] = i; }));
  place();
  for (let sweep = 0; sweep < 6; sweep++) {
    const down = sweep % 2 === 0;
    const seq = down ? layers.slice(1) : layers.slice(0, -1).reverse();
    for (const l of seq) {
      const bc = new Map(l.map((v) => {
        const nb = down ? inn[v] : out[v];
        return [v, nb.length ? nb.reduce((a, w) => a + pos[w], 0) / nb.length : pos[v]];
      }));
      l.sort((a, b) => bc.get(a) - bc.get(b));
      l.forEach((v, i) => { pos[v] = i; });
    }
  }
  return { layers, rank, back };
}

/** pprof's box text: the short name's parts on lines, then flat and cum. */
function boxLines(node, total) {
  const pct = (v) => (total ? `${((Math.abs(v) / Math.abs(total)) * 100).toFixed(2)}%` : '');
  const lines = [node.short || node.name];
  lines.push(node.flat ? `${node.flat_text} (${pct(node.flat)})` : '0');
  if (node.cum !== node.flat) lines.push(`of ${node.cum_text} (${pct(node.cum)})`);
  return lines;
}

export class CallGraphView {
  /** @param {HTMLElement} box  scrolling container; o: onSelect(name), tooltip */
  constructor(box, o = {}) {
    this.box = box;
    this.o = o;
    this.scale = 1;
    this.data = null;
    this.selected = '';
    box.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2);
    }, { passive: false });
  }

  zoom(f) {
    this.scale = Math.min(4, Math.max(0.2, this.scale * f));
    const svg = this.box.querySelector('svg');
    if (svg) { svg.style.width = `${svg.dataset.w * this.scale}px`; svg.style.height = `${svg.dataset.h * this.scale}px`; }
  }

  set(g) {
    this.data = g;
    this.render();
  }

  render() {
    const g = this.data, box = this.box;
    box.replaceChildren();
    if (!g || !g.nodes.length) return;
    const { layers, back } = layout(g);
    // Measure: a monospace font, box size from the text.
    const charW = 7.2, lineH = 15, padX = 8, padY = 6, gapX = 26, gapY = 58;
    const sizes = g.nodes.map((nd) => {
      const f = 0.85 + (nd.font_size - 8) / 32; // pprof's 8–24 pt, as 0.85–1.35×
      const lines = boxLines(nd, g.total);
      const w = Math.max(...lines.map((l) => l.length)) * charW * f + 2 * padX;
      return { f, lines, w, h: lines.length * lineH * f + 2 * padY };
    });
    const xy = new Map();
    let width = 0, y = 10;
    const rows = layers.map((l) => {
      const w = l.reduce((a, v) => a + sizes[v - 1].w, 0) + gapX * (l.length - 1);
      width = Math.max(width, w);
      return w;
    });
    width += 20;
    layers.forEach((l, li) => {
      let x = (width - rows[li]) / 2;
      const h = Math.max(...l.map((v) => sizes[v - 1].h));
      for (const v of l) {
        const s = sizes[v - 1];
        xy.set(v, { x, y: y + (h - s.h) / 2, w: s.w, h: s.h });
        x += s.w + gapX;
      }
      y += h + gapY;
    });
    const height = y - gapY + 10;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.dataset.w = String(width);
    svg.dataset.h = String(height);
    svg.style.width = `${width * this.scale}px`;
    svg.style.height = `${height * this.scale}px`;
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `Call graph: ${g.nodes.length} functions, ${g.edges.length} calls`);
    const total = Math.abs(g.total) || 1;
    let html = `<defs><marker id="cg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>`;
    // Edges first, under the boxes.
    for (const e of g.edges) {
      const a = xy.get(e.src), b = xy.get(e.dst);
      if (!a || !b) continue;
      const w = 1 + Math.min(Math.floor((Math.abs(e.weight) * 5) / total), 5);
      const up = back.has(`${e.src}>${e.dst}`) || e.src === e.dst;
      const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
      const d = e.src === e.dst
        ? `M${a.x + a.w},${a.y + a.h * 0.3} c40,-20 40,${a.h * 0.8} 0,${a.h * 0.5}`
        : up ? `M${a.x + a.w},${a.y + a.h / 2} C${Math.max(a.x, b.x) + Math.max(a.w, b.w) + 60},${a.y} ${Math.max(a.x, b.x) + Math.max(a.w, b.w) + 60},${b.y + b.h} ${b.x + b.w},${b.y + b.h / 2}`
          : `M${x1},${y1} C${x1},${y1 + 30} ${x2},${y2 - 30} ${x2},${y2}`;
      const tip = `${g.nodes[e.src - 1].name} ${e.residual ? '…' : '→'} ${g.nodes[e.dst - 1].name} (${e.weight_text})`;
      html += `<g class="cg-edge" data-src="${e.src}" data-dst="${e.dst}" data-weight="${e.weight}"><title>${esc(tip)}</title>
        <path d="${d}" fill="none" stroke="${edgeColor(e.weight / total)}" stroke-width="${w}"${e.residual ? ' stroke-dasharray="3 3"' : ''} marker-end="url(#cg-arrow)"/>
        <text x="${(x1 + x2) / 2 + 4}" y="${(y1 + y2) / 2}" class="cg-elabel">${esc(e.weight_text)}${e.inline ? ' (inline)' : ''}</text></g>`;
    }
    for (const nd of g.nodes) {
      const p = xy.get(nd.id), s = sizes[nd.id - 1];
      if (!p) continue;
      const tags = nd.tags.length ? `\n${nd.tags.map((t) => `${t.name.replaceAll('\\n', ' ')}: ${t.value_text}`).join('\n')}` : '';
      html += `<g class="cg-node" tabindex="0" data-id="${nd.id}" data-name="${esc(nd.name)}" data-flat="${nd.flat}" data-cum="${nd.cum}" aria-selected="${nd.name === this.selected}">
        <title>${esc(`${nd.name}\nflat ${nd.flat_text} · cum ${nd.cum_text}${tags}`)}</title>
        <rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="3" fill="${nd.fill}" stroke="${nd.color}"/>
        ${s.lines.map((l, i) => `<text x="${p.x + p.w / 2}" y="${p.y + 6 + (i + 0.8) * 15 * s.f}" font-size="${(12 * s.f).toFixed(1)}" text-anchor="middle"${i === 0 ? ' font-weight="600"' : ''}>${esc(l)}</text>`).join('')}</g>`;
    }
    svg.innerHTML = html;
    svg.addEventListener('click', (e) => {
      const gEl = e.target.closest('.cg-node');
      if (gEl) this.o.onSelect?.(gEl.dataset.name);
    });
    svg.addEventListener('keydown', (e) => {
      const gEl = e.target.closest('.cg-node');
      if (gEl && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); this.o.onSelect?.(gEl.dataset.name); }
    });
    box.appendChild(svg);
    // Start at the entry: the top row, centred.
    box.scrollTop = 0;
    box.scrollLeft = Math.max(0, (width * this.scale - box.clientWidth) / 2);
  }

  /** Marks the selected function's box (and scrolls to it). */
  select(name) {
    this.selected = name;
    for (const el of this.box.querySelectorAll('.cg-node')) {
      const on = el.dataset.name === name;
      el.setAttribute('aria-selected', String(on));
      if (on) el.scrollIntoView?.({ block: 'nearest', inline: 'nearest' });
    }
  }
}

/** pprof's edge colour (`dotColor`, foreground): grey for light edges, red for heavy ones,
 * green for negative (diffs). */
export function edgeColor(score) {
  let s = Math.max(-1, Math.min(1, score));
  let sat = 1;
  const v = 0.7;
  if (Math.abs(s) < 0.2) sat *= Math.abs(s) / 0.2;
  s = s > 0 ? Math.pow(s, 0.3) : s < 0 ? -Math.pow(-s, 0.3) : 0;
  let r, g;
  if (s < 0) { g = v; r = v * (1 + sat * s); } else { r = v; g = v * (1 - sat * s); }
  const b = v * (1 - sat);
  const h = (x) => Math.floor(x * 255).toString(16).padStart(2, '0');
  return `#${h(r)}${h(g)}${h(b)}`;
}
