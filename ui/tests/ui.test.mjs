// Browser tests of gocost's web UI: node ui.test.mjs <gocost base URL> <output dir> [start unix s]
//
// Drives Debian's chromium (headless) with playwright-core against a running gocost that
// scrapes real Go services (crates/cli/tests/ui.rs sets that up), and checks what the page
// shows against the API: top table rows, hover values, search shares (computed here
// independently from the flame JSON), zoom and URL round trips, range selection, downloads,
// the diff flame graph and its table, runtime charts, the Insights sections (cost, regressions,
// GC and its heatmap, leaks, heap growth, alerts) and targets. Every view must load with
// no console errors. Screenshots, downloads and timings.txt go to the output directory.
// Exits 1 on any failed check.

import { chromium } from 'playwright-core';
import { label as formatValue, money, dateTime, durationText } from '../format.js';
import * as ins from '../insights.js';
import fs from 'node:fs';
import path from 'node:path';

const [base, outDir, startArg] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node ui.test.mjs <gocost URL> <output dir> [start unix seconds]');
  process.exit(2);
}
fs.mkdirSync(path.join(outDir, 'downloads'), { recursive: true });

const failures = [];
const timings = [];
function check(cond, what, detail = '') {
  if (cond) console.log(`ok    ${what}`);
  else { failures.push(what); console.log(`FAIL  ${what} ${detail}`); }
}
function note(line) { console.log(line); timings.push(line); }

async function api(p, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  const r = await fetch(`${base}/api/v1/${p}?${q}`);
  if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Σ total of nodes matching `test` with no matching ancestor, over the root's total. */
function share(fl, test) {
  return matchedSum(fl, test) / Math.abs(fl.nodes[0][3]);
}

/** Σ total of nodes matching `test` with no matching ancestor. */
function matchedSum(fl, test) {
  const n = fl.nodes.length;
  const end = new Int32Array(n);
  for (let i = 0; i < n; i++) end[i] = i + 1;
  for (let i = n - 1; i > 0; i--) { const p = fl.nodes[i][2]; if (end[i] > end[p]) end[p] = end[i]; }
  let sum = 0, covered = 0;
  for (let i = 1; i < n; i++) {
    const [nm, inl, , total] = fl.nodes[i];
    const name = fl.names[nm];
    if (i >= covered && test(name, inl ? `${name} (inline)` : name)) { sum += Math.abs(total); covered = end[i]; }
  }
  return sum;
}

const now = Math.floor(Date.now() / 1000);
const T2 = now - 4; // scrapes still in flight cannot change this range any more
const T0 = Math.max(Number(startArg || now - 600), T2 - 600);
const T1 = Math.floor((T0 + T2) / 2);
const range = { from: String(T0), to: String(T2) };
const cpuQ = 'cpu{job="demo"}';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-background-networking'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 960 }, acceptDownloads: true, colorScheme: 'light' });
const page = await context.newPage();
let consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`); });
page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

async function ready(view) {
  await page.waitForFunction((v) => document.body.dataset.ready === v && document.body.dataset.busy === '0', view, { timeout: 30000 });
}
/** /api/v1/flame as the page asked for it: the same width (and zoom) as the data it holds. */
async function pageFlame(params) {
  const { width, zoom } = await page.evaluate(() => ({
    width: window.gocost.view.flameJson?.width,
    zoom: new URL(location.href).searchParams.get('zoom'),
  }));
  return api('flame', { ...params, ...(width ? { width } : {}), ...(zoom ? { zoom } : {}) });
}
async function open(params, view) {
  await page.goto(`${base}/?${new URLSearchParams(params)}`);
  await ready(view);
}
function noConsoleErrors(view) {
  check(consoleErrors.length === 0, `${view}: no console errors`, consoleErrors.join('\n'));
  consoleErrors = [];
}
async function shot(name) { await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true }); }
const urlParam = (k) => new URL(page.url()).searchParams.get(k);
const errorsShown = () => page.evaluate(() => [...document.querySelectorAll('.error')].map((e) => e.textContent).join(''));

try {
  // ---- Explore: the first page a newcomer sees -------------------------------------------
  await page.goto(`${base}/`);
  await ready('explore');
  check(urlParam('job') === 'demo' && urlParam('kind') === 'cpu', 'explore: defaults to the first service and cpu', page.url());
  await shot('explore-default');
  noConsoleErrors('explore (default)');

  await open({ view: 'explore', job: 'demo', kind: 'cpu', ...range }, 'explore');
  check((await errorsShown()) === '', 'explore: no error shown');
  const top = await api('top', { query: cpuQ, ...range, nodecount: 500 });
  const rows = await page.$$eval('#x-top tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent.trim())));
  check(rows.length === top.rows.length && rows.length > 0, `explore: table has the API's ${top.rows.length} rows`, `${rows.length}`);
  const rowMismatch = top.rows.findIndex((r, i) => !rows[i] || !rows[i][0].startsWith(r.name) || rows[i][1] !== r.flat_text
    || rows[i][2] !== r.flat_percent.trim() || rows[i][4] !== r.cum_text || rows[i][5] !== r.cum_percent.trim());
  check(rowMismatch === -1, 'explore: every row equals /api/v1/top (flat, flat%, cum, cum%, name)', JSON.stringify([rows[rowMismatch], top.rows[rowMismatch]]));
  const hottest = top.rows[0].name;
  console.log(`      hottest function: ${hottest} (${top.rows[0].flat_text})`);

  const fl = await pageFlame({ query: cpuQ, ...range });
  const askedWidth = await page.evaluate(() => window.gocost.view.flameJson.width);
  const cssWidth = await page.evaluate(() => document.getElementById('x-flamebox').clientWidth);
  check(askedWidth === Math.ceil(cssWidth / 0.35), 'explore: the flame graph is asked for at the width it draws (a box per 0.35 px)', `${askedWidth} for ${cssWidth} px`);
  const pageTotal = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(pageTotal === fl.nodes[0][3], 'explore: flame root total equals /api/v1/flame', `${pageTotal} vs ${fl.nodes[0][3]}`);

  // Hover the widest frame at depth 3: the tooltip shows the API's values.
  const depthOf = (i) => { let d = 0; for (; i > 0; i = fl.nodes[i][2]) d++; return d; };
  let target = -1;
  fl.nodes.forEach((r, i) => { if (i > 0 && depthOf(i) === 3 && (target < 0 || r[3] > fl.nodes[target][3])) target = i; });
  const canvas = page.locator('#x-flame');
  const box = await page.evaluate((i) => window.gocost.view.flame.boxOf(i), target);
  const cbox = await canvas.boundingBox();
  await page.mouse.move(cbox.x + box.x + box.w / 2, cbox.y + box.y + box.h / 2);
  const tip = await page.evaluate(() => {
    const t = document.getElementById('tooltip');
    return { hidden: t.hidden, node: t.dataset.node, total: t.dataset.total, self: t.dataset.self, text: t.textContent };
  });
  const label = (i) => fl.names[fl.nodes[i][0]] + (fl.nodes[i][1] ? ' (inline)' : '');
  const pctText = ((fl.nodes[target][3] / fl.nodes[0][3]) * 100).toFixed(2) + '%';
  check(!tip.hidden && Number(tip.node) === target && Number(tip.total) === fl.nodes[target][3] && Number(tip.self) === fl.nodes[target][4]
    && tip.text.includes(label(target)) && tip.text.includes(pctText),
  'explore: hover tooltip shows the node\'s cum/flat and % from /api/v1/flame', JSON.stringify({ tip, target: fl.nodes[target], pctText }));
  await shot('explore-hover');

  // Search: the page's matched share equals one computed here from the JSON.
  await page.fill('#x-search', 'main\\.');
  await page.press('#x-search', 'Enter');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('search') === 'main\\.');
  const pageShare = Number(await page.getAttribute('#x-matched', 'data-share'));
  const re = /main\./i;
  const want = share(fl, (n, l) => re.test(n) || re.test(l));
  check(Math.abs(pageShare - want) < 1e-12 && want > 0, `explore: search "main\\." matched share ${(want * 100).toFixed(2)}% equals the JSON's`, `${pageShare} vs ${want}`);
  check((await page.textContent('#x-matched')).includes((want * 100).toFixed(2) + '%'), 'explore: matched % is shown');
  await shot('explore-search');
  const shownNames = await page.$$eval('#x-top tbody tr', (trs) => trs.map((tr) => tr.dataset.name));
  const wantNames = top.rows.filter((r) => re.test(r.name)).map((r) => r.name);
  check(JSON.stringify(shownNames) === JSON.stringify(wantNames) && shownNames.length > 0 && shownNames.length < top.rows.length
    && (await page.textContent('#x-dropped')).includes(`${wantNames.length} of ${top.rows.length} functions match`),
  'explore: search filters the table too, and says how many match', `${shownNames.length} of ${top.rows.length}`);
  // Every function name is whole (wrapped, never clipped), on a desktop and on a phone.
  const clippedNames = () => page.$$eval('#x-top td.name', (tds) => tds.filter((td) => td.scrollWidth > td.clientWidth + 1).length);
  check(await clippedNames() === 0, 'explore: no function name is clipped at 1440 px');
  await page.setViewportSize({ width: 390, height: 844 });
  const phone = await page.$eval('#x-top td.name', (td) => td.getBoundingClientRect().width);
  check(await clippedNames() === 0 && phone > 150, 'explore: names are whole and wide at 390 px', `${phone}px`);
  await shot('explore-phone');
  await page.setViewportSize({ width: 1440, height: 960 });

  // Click to zoom; the URL keeps it; a reload shows the same view. The resize above re-lays
  // the page out (and may scroll it): let the flame graph redraw, then click the frame where
  // it is now, relative to the canvas (the locator scrolls it into view).
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const zbox = await page.evaluate((i) => window.gocost.view.flame.boxOf(i), target);
  await canvas.click({ position: { x: zbox.x + zbox.w / 2, y: zbox.y + zbox.h / 2 } });
  await page.waitForFunction(() => new URL(location.href).searchParams.get('zoom'));
  const zoomed = await page.evaluate(() => window.gocost.view.flame.zoom);
  check(zoomed === target, 'explore: click zooms into the frame', `${zoomed} vs ${target}`);
  const zoomTimes = await page.evaluate(() => window.gocost.view.flame.timings);
  await shot('explore-zoom');
  const zoomUrl = page.url();
  await page.goto(zoomUrl);
  await ready('explore');
  const after = await page.evaluate(() => ({ zoom: window.gocost.view.flame.zoom, share: document.getElementById('x-matched').dataset.share, search: document.getElementById('x-search').value }));
  check(after.zoom === target && Number(after.share) === pageShare && after.search === 'main\\.', 'explore: reloading the URL restores zoom and search', JSON.stringify(after));
  check(page.url() === zoomUrl, 'explore: the URL is stable across a reload', `${page.url()} vs ${zoomUrl}`);

  // Escape resets; keyboard: arrows select, Enter zooms.
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !new URL(location.href).searchParams.get('zoom'));
  await canvas.focus();
  await page.keyboard.press('ArrowDown'); // icicle: toward the leaves (the widest child of root)
  await page.keyboard.press('ArrowDown');
  const sel = await page.evaluate(() => window.gocost.view.flame.sel);
  await page.keyboard.press('Enter');
  const kz = await page.evaluate(() => window.gocost.view.flame.zoom);
  check(sel > 0 && kz === sel && depthOf(sel) === 2, 'explore: keyboard selects (arrows) and zooms (Enter)', `${sel} ${kz}`);
  await page.keyboard.press('Escape');

  // Sort by cum; click a row: the function is highlighted and its share reported.
  await page.click('[data-sort="cum"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') === 'cum');
  const cums = await page.$$eval('#x-top tbody tr', (trs) => trs.map((tr) => tr.dataset.name));
  const byCum = top.rows.slice().sort((a, b) => b.cum - a.cum || a.name.localeCompare(b.name)).map((r) => r.name);
  check(JSON.stringify(cums) === JSON.stringify(byCum), 'explore: sorting by cum orders the rows by the API\'s cum');
  await page.click(`#x-top tbody tr[data-name="${hottest}"]`);
  await page.waitForFunction((n) => new URL(location.href).searchParams.get('fn') === n, hottest);
  const fnShare = Number(await page.getAttribute('#x-matched', 'data-share'));
  const wantFn = share(fl, (n) => n === hottest);
  check(Math.abs(fnShare - wantFn) < 1e-12, `explore: clicking ${hottest} highlights it (${(wantFn * 100).toFixed(2)}% of the graph)`, `${fnShare} vs ${wantFn}`);
  check(await page.getAttribute(`#x-top tbody tr[data-name="${hottest}"]`, 'aria-selected') === 'true', 'explore: the clicked row stays selected');
  await shot('explore-function');

  // Sandwich of the hottest function: callers and callees both add up to its share.
  await page.click('#x-sandwich');
  await page.waitForFunction(() => document.getElementById('x-sandwich-panel')?.hidden === false);
  const sw = await page.evaluate(() => [...document.querySelectorAll('#x-sandwich-panel canvas')].length);
  check(urlParam('sandwich') === hottest, 'explore: the sandwich is of the function last clicked in the table', urlParam('sandwich'));
  const swTotals = await page.evaluate(async (fn) => {
    const m = await import('/ui/explore.js');
    const s = m.sandwich(window.gocost.view.flame.data, fn);
    return [s.callers.total, s.callees.total];
  }, hottest);
  const wantSw = matchedSum(fl, (n) => n === hottest);
  check(sw === 2 && swTotals[0] === wantSw && swTotals[1] === wantSw, 'explore: sandwich view (callers and callees add up to the function\'s cum)', JSON.stringify({ sw, swTotals, wantSw }));
  await shot('explore-sandwich');
  await page.click('#x-sw-close');

  // Flame layout toggle and the dark theme.
  await page.keyboard.press('i');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('layout') === 'flame');
  check(await page.evaluate(() => window.gocost.view.flame.inverted === false), 'explore: i toggles icicle/flame');
  await page.click('#theme');
  check(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'theme: toggles to dark');
  await shot('explore-dark');
  await page.click('#theme');

  // Downloads: pprof (checked with gocost top by the Rust side), SVG, folded, speedscope.
  const dl = {};
  for (const [id, file] of [['dl-pprof', 'profile.pb.gz'], ['dl-svg', 'flame.svg'], ['dl-folded', 'flame.folded'], ['dl-speedscope', 'flame.speedscope.json']]) {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
    const p = path.join(outDir, 'downloads', file);
    await d.saveAs(p);
    dl[file] = fs.readFileSync(p);
  }
  const gz = dl['profile.pb.gz'];
  check(gz[0] === 0x1f && gz[1] === 0x8b && gz.length > 100, 'download: pprof is gzip');
  const svgOk = await page.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    return !doc.querySelector('parsererror') && doc.documentElement.nodeName === 'svg' && doc.querySelectorAll('rect').length > 10;
  }, dl['flame.svg'].toString('utf8'));
  check(svgOk, 'download: SVG parses with boxes');
  // The page formats values with ui/format.js; the SVG with gocost-pprof's units (pprof's
  // rules). Every box title "name (value, share)" must read the same as the page would. The
  // SVG draws boxes down to 0.1 of its 1200 px, finer than the page's pixel (`fl` is cut at
  // the page's width), so its boxes are looked up in the whole tree.
  const whole = await api('flame', { query: cpuQ, ...range });
  const byLabel = new Map();
  whole.nodes.forEach((r, i) => {
    if (i === 0) return;
    const l = whole.names[r[0]] + (r[1] ? ' (inline)' : '');
    byLabel.set(l, [...(byLabel.get(l) || []), r[3]]);
  });
  const titles = [...dl['flame.svg'].toString('utf8').matchAll(/<title>(.*) \(([^,()]+), [\d.]+%\)<\/title>/g)]
    .map((m) => [m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'"), m[2]]);
  const unmatched = titles.filter(([name, text]) => name !== 'root' && !(byLabel.get(name) || []).some((v) => formatValue(v, whole.unit) === text));
  check(titles.length > 50 && unmatched.length === 0 && formatValue(whole.nodes[0][3], whole.unit) === titles.find(([n]) => n === 'root')?.[1],
    `units: the page's value formatting equals gocost's (pprof's) on all ${titles.length} SVG boxes`, JSON.stringify(unmatched.slice(0, 3)));
  const foldedLines = dl['flame.folded'].toString('utf8').trimEnd().split('\n');
  const foldedOk = foldedLines.every((l) => /^[^\n]+ -?\d+$/.test(l));
  const foldedSum = foldedLines.reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  // A folded line is a stack: samples without any frame (the root's own value, rare in CPU
  // profiles) have no line, so the lines add up to the total minus the root's self.
  const foldable = fl.nodes[0][3] - fl.nodes[0][4];
  check(foldedOk && foldedSum === foldable, 'download: folded lines parse and add up to the flame total (less frameless samples)', `${foldedSum} vs ${foldable} (root self ${fl.nodes[0][4]})`);
  const ss = JSON.parse(dl['flame.speedscope.json'].toString('utf8'));
  const prof = ss.profiles?.[0];
  const ssOk = ss.$schema === 'https://www.speedscope.app/file-format-schema.json' && prof?.type === 'sampled'
    && prof.samples.length === prof.weights.length && prof.samples.every((s) => s.every((f) => f >= 0 && f < ss.shared.frames.length))
    && prof.weights.reduce((a, b) => a + b, 0) === prof.endValue && prof.unit === 'nanoseconds';
  check(ssOk, 'download: speedscope JSON follows the schema');

  // Range selection: drag across the middle of the timeline.
  await page.goto(`${base}/?${new URLSearchParams({ view: 'explore', job: 'demo', kind: 'cpu', ...range })}`);
  await ready('explore');
  const tl = await page.locator('#x-timeline canvas').boundingBox();
  await page.mouse.move(tl.x + 64 + (tl.width - 76) * 0.3, tl.y + 40);
  await page.mouse.down();
  await page.mouse.move(tl.x + 64 + (tl.width - 76) * 0.7, tl.y + 40, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((f) => new URL(location.href).searchParams.get('from') !== f, range.from);
  await ready('explore');
  const nf = urlParam('from'), nt = urlParam('to');
  const mid = T0 + (T2 - T0) * 0.3;
  check(Math.abs(Number(nf) - mid) <= 2 && Number(nt) > Number(nf) && Number(nt) < T2, 'timeline: dragging selects a range into the URL', `${nf}..${nt}`);
  const fl2 = await api('flame', { query: cpuQ, from: nf, to: nt });
  const t2 = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(t2 === fl2.nodes[0][3] && t2 < fl.nodes[0][3], 'timeline: the flame graph shows the selected range (total equals the API\'s)', `${t2} vs ${fl2.nodes[0][3]}`);
  await page.click('#c-out');
  await page.waitForFunction((f) => new URL(location.href).searchParams.get('from') !== f, nf);
  await ready('explore');
  const of = Number(urlParam('from')), ot = urlParam('to') === 'now' ? Date.now() / 1000 : Number(urlParam('to'));
  check(Math.abs((ot - of) - 2 * (Number(nt) - Number(nf))) <= 2, 'timeline: zoom out doubles the range', `${urlParam('from')}..${urlParam('to')}`);
  await page.goBack();
  await ready('explore');
  await page.goBack();
  await page.waitForFunction((f) => new URL(location.href).searchParams.get('from') === f, range.from);
  await ready('explore');
  check(await page.evaluate(() => window.gocost.view.flame.data.total[0]) === fl.nodes[0][3], 'history: Back returns to the previous range');
  await shot('explore-range');
  noConsoleErrors('explore');

  // Another kind and sample type, and a label filter: the page shows what the API answers.
  await open({ view: 'explore', job: 'demo', kind: 'heap', si: 'alloc_space', ...range }, 'explore');
  const heapTop = await api('top', { query: 'heap{job="demo"}', ...range, sample_index: 'alloc_space', nodecount: 500 });
  const heapRows = await page.$$eval('#x-top tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent.trim()));
  check(heapTop.sample_type === 'alloc_space' && JSON.stringify(heapRows) === JSON.stringify(heapTop.rows.map((r) => r.flat_text)),
    'explore: heap alloc_space rows equal the API\'s', `${heapRows.slice(0, 3)} vs ${heapTop.rows.slice(0, 3).map((r) => r.flat_text)}`);
  check(await page.$eval('#c-si', (s) => s.value) === 'alloc_space', 'explore: the sample type picker shows the URL\'s');
  const oneInst = (await api('series', { query: cpuQ }))[0].labels.instance;
  await open({ view: 'explore', job: 'demo', kind: 'cpu', sel: `instance="${oneInst}"`, ...range }, 'explore');
  const instFl = await api('flame', { query: `cpu{job="demo",instance="${oneInst}"}`, ...range });
  const instTotal = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(instTotal === instFl.nodes[0][3] && instTotal < fl.nodes[0][3], 'explore: a label filter (one instance) shows that instance\'s profile', `${instTotal} vs ${instFl.nodes[0][3]}`);
  noConsoleErrors('explore (heap, label filter)');

  // Refine as go tool pprof: pick the top function, Focus on it — the graph is the API's with
  // that -focus, the filter is a chip in the URL, and removing the chip restores the graph.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', ...range }, 'explore');
  const fname = await page.$eval('#x-top tbody tr', (tr) => tr.dataset.name);
  await page.click('#x-top tbody tr');
  await page.click('[data-refine="focus"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('focus'));
  await ready('explore');
  const focusRe = urlParam('focus');
  const focusFl = await api('flame', { query: cpuQ, ...range, focus: focusRe });
  const focusTotal = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(focusRe === `^${fname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` && focusTotal === focusFl.nodes[0][3] && focusTotal < fl.nodes[0][3],
    'refine: Focus on the picked function shows the API\'s focused graph', `${focusRe}: ${focusTotal} vs ${focusFl.nodes[0][3]} of ${fl.nodes[0][3]}`);
  const chip = await page.textContent('#x-chips [data-unrefine="focus"]');
  check(chip.includes(focusRe), 'refine: the active filter is a chip', chip);
  await shot('explore-refine');
  await page.click('#x-chips [data-unrefine="focus"]');
  await page.waitForFunction(() => !new URL(location.href).searchParams.get('focus'));
  await ready('explore');
  check(await page.evaluate(() => window.gocost.view.flame.data.total[0]) === fl.nodes[0][3], 'refine: removing the chip restores the whole graph');
  await open({ view: 'explore', job: 'demo', kind: 'cpu', tagfocus: 'tenant=acme', ...range }, 'explore');
  const tagFl = await api('flame', { query: cpuQ, ...range, tagfocus: 'tenant=acme' });
  const tagTotal = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(tagTotal === tagFl.nodes[0][3] && tagTotal > 0 && tagTotal < fl.nodes[0][3] && (await page.$eval('#x-tag', (i) => i.value)) === 'tenant=acme',
    'refine: a pprof label filter (tagfocus) shows the labelled samples', `${tagTotal} of ${fl.nodes[0][3]}`);
  // The label explorer: the API's -tags numbers; a click filters by that value.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', ...range }, 'explore');
  await page.click('#x-labels summary');
  await page.waitForSelector('#x-labels-body table');
  const tagsApi = await api('tags', { query: cpuQ, ...range });
  const shownTags = await page.$$eval('#x-labels-body table', (ts) => ts.map((t) => [t.querySelector('[data-by]').dataset.by,
    [...t.querySelectorAll('tbody tr[data-key]')].map((tr) => tr.dataset.value)]));
  const wantTags = tagsApi.keys.map((k) => [k.key, k.values.slice(0, 20).map(([v]) => v)]);
  check(JSON.stringify(shownTags) === JSON.stringify(wantTags) && wantTags.some(([k]) => k === 'tenant'),
    'labels: the explorer lists the API\'s label keys and values (go tool pprof -tags)', JSON.stringify(shownTags));
  await shot('explore-labels');
  await page.click('#x-labels-body [data-by="tenant"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('by') === 'tenant');
  await ready('explore');
  const byApi = await api('timeline', { query: cpuQ, ...range, by: 'tenant' });
  const byShown = await page.evaluate(() => window.gocost.view.timeline.series.map((x) => [x.name, x.points.length]));
  check(JSON.stringify(byShown) === JSON.stringify(byApi.series.map((x) => [x.other ? 'other values' : x.value ? `tenant=${x.value}` : 'no tenant', x.points.length]))
    && byShown.some(([n]) => n === 'tenant=acme'), 'labels: the timeline breaks down by a label, a line per value (the API\'s)', JSON.stringify(byShown));
  await shot('explore-by-label');
  await page.click('#x-chips [data-unrefine="by"]');
  await page.waitForFunction(() => !new URL(location.href).searchParams.get('by'));
  await ready('explore');
  if (!(await page.$('#x-labels[open]'))) await page.click('#x-labels summary');
  await page.waitForSelector('#x-labels-body tr[data-key="tenant"][data-value="acme"]');
  await page.click('#x-labels-body tr[data-key="tenant"][data-value="acme"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('tagfocus') === 'tenant=^acme$');
  await ready('explore');
  const acmeFl = await api('flame', { query: cpuQ, ...range, tagfocus: 'tenant=^acme$' });
  check(await page.evaluate(() => window.gocost.view.flame.data.total[0]) === acmeFl.nodes[0][3],
    'labels: clicking a value filters the graph by it (tagfocus)');
  noConsoleErrors('explore (labels)');
  noConsoleErrors('explore (refine)');

  // The call graph (go tool pprof -dot's, which the API test compares byte for byte): every
  // node and edge of /api/v1/graph is drawn, boxes in pprof's colours; a click selects the
  // function; Peek lists its callers and callees as /api/v1/peek (go tool pprof -peek) does.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', graph: '1', ...range }, 'explore');
  await page.waitForSelector('#x-graphbox svg .cg-node');
  const cgApi = await api('graph', { query: cpuQ, ...range });
  const drawn = await page.evaluate(() => ({
    nodes: [...document.querySelectorAll('#x-graphbox .cg-node')].map((g) => [g.dataset.name, Number(g.dataset.flat), Number(g.dataset.cum), g.querySelector('rect').getAttribute('fill')]),
    edges: [...document.querySelectorAll('#x-graphbox .cg-edge')].map((g) => [Number(g.dataset.src), Number(g.dataset.dst), Number(g.dataset.weight)]),
    flameHidden: document.getElementById('x-flamebox').hidden,
  }));
  check(cgApi.nodes.length > 10 && JSON.stringify(drawn.nodes) === JSON.stringify(cgApi.nodes.map((n) => [n.name, n.flat, n.cum, n.fill])),
    `graph: the ${cgApi.nodes.length} boxes are /api/v1/graph's nodes (name, flat, cum, pprof's colour)`, `${drawn.nodes.length}`);
  check(cgApi.edges.length > 10 && JSON.stringify(drawn.edges) === JSON.stringify(cgApi.edges.map((e) => [e.src, e.dst, e.weight])),
    `graph: the ${cgApi.edges.length} arrows are its edges with their weights`, `${drawn.edges.length}`);
  check(drawn.flameHidden && (await page.textContent('#x-graph-legend')).includes('Showing nodes accounting for'),
    'graph: replaces the flame graph and shows pprof\'s legend', await page.textContent('#x-graph-legend'));
  const dotText = await fetch(`${base}/api/v1/graph?${new URLSearchParams({ query: cpuQ, ...range, format: 'dot' })}`).then((r) => r.text());
  check(dotText.startsWith('digraph "') && cgApi.nodes.every((n) => dotText.includes(`N${n.id} [label=`)), 'graph: format=dot is the same graph in Graphviz\'s language');
  await shot('explore-graph');
  // A function with both callers and callees (pprof's order: the most telling first).
  const gPick = cgApi.nodes.find((n) => cgApi.edges.some((e) => e.dst === n.id) && cgApi.edges.some((e) => e.src === n.id)) || cgApi.nodes[0];
  await page.click(`#x-graphbox .cg-node[data-id="${gPick.id}"]`);
  await page.waitForFunction((n) => new URL(location.href).searchParams.get('fn') === n, gPick.name);
  check(await page.getAttribute(`#x-graphbox .cg-node[data-id="${gPick.id}"]`, 'aria-selected') === 'true'
    && await page.getAttribute(`#x-top tbody tr[data-name="${gPick.name}"]`, 'aria-selected') === 'true',
  'graph: clicking a box selects its function (box and table row)');
  await page.click('#x-peek');
  await page.waitForSelector('#x-peek-panel .peektable');
  const pk = await api('peek', { query: cpuQ, ...range, symbol: `^${gPick.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` });
  const peekRows = await page.$$eval('#x-peek-panel tbody tr:is(.caller, .self, .callee)', (trs) => trs.map((tr) => [tr.className, tr.dataset.name || '', tr.children[0].textContent.trim()]));
  const e0 = pk.entries[0];
  const wantPeek = [...e0.callers.map((x) => ['caller', x.name, x.weight_text]), ['self', '', `${e0.flat_text} flat`], ...e0.callees.map((x) => ['callee', x.name, x.weight_text])];
  check(pk.entries.length === 1 && JSON.stringify(peekRows) === JSON.stringify(wantPeek) && e0.callers.length + e0.callees.length > 0,
    `peek: ${gPick.name}'s callers and callees are /api/v1/peek's`, JSON.stringify(peekRows.slice(0, 3)));
  await shot('explore-peek');
  await page.setViewportSize({ width: 390, height: 844 });
  // The layout follows the resize a frame or more later: give it up to 5 s to settle.
  const width = () => page.evaluate(() => document.documentElement.scrollWidth);
  await page.waitForFunction(() => document.documentElement.scrollWidth <= 400, null, { timeout: 5000 }).catch(() => {});
  const pageWidth = await width();
  check(pageWidth <= 400, 'graph, peek: nothing widens the page at 390 px (the graph scrolls in its box)', `${pageWidth}px`);
  await shot('explore-graph-phone');
  await page.setViewportSize({ width: 1440, height: 960 });
  noConsoleErrors('explore (graph, peek)');

  // An empty range is an answer, not an error: the page says so, nothing fails in the console.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', from: String(T0 - 7200), to: String(T0 - 3600) }, 'explore');
  const emptyText = await page.textContent('#x-empty');
  check(emptyText.startsWith('Nothing in this range') && (await errorsShown()) === '', 'explore: an empty range says so (200 with a reason)', emptyText);
  noConsoleErrors('explore (empty range)');

  // An API error is shown, not swallowed.
  await page.goto(`${base}/?view=explore&job=demo&kind=cpu&sel=${encodeURIComponent('instance=~"("')}`);
  await page.waitForFunction(() => (document.querySelector('#x-error')?.textContent.length ?? 0) > 0);
  const apiErr = await fetch(`${base}/api/v1/flame?query=${encodeURIComponent('cpu{job="demo",instance=~"("}')}`).then((r) => r.json());
  check((await page.textContent('#x-error')).includes(apiErr.error), 'explore: shows the API\'s error message', apiErr.error);
  consoleErrors = consoleErrors.filter((e) => !e.includes('400')); // the browser logs the failed fetches

  // "Compare with yesterday" from Explore: this gocost has no data from yesterday, so the
  // button is not offered (no dead end); Compare with such a base says so, naming the base.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', from: 'now-10m', to: 'now' }, 'explore');
  await page.waitForFunction(() => document.querySelector('#x-compare')?.disabled === true);
  check((await page.getAttribute('#x-compare', 'title')).startsWith('No profiles a day earlier'),
    'explore: "Compare with yesterday" is disabled, and says why, when there is no yesterday', await page.getAttribute('#x-compare', 'title'));
  await open({ view: 'compare', job: 'demo', kind: 'cpu', from: 'now-10m', to: 'now', bfrom: 'now-1450m', bto: 'now-1d' }, 'compare');
  check((await page.textContent('#d-error')).startsWith('base: no cpu profiles match'), 'compare: a base with no data says so', await page.textContent('#d-error'));
  consoleErrors = consoleErrors.filter((e) => !e.includes('404'));

  // ---- Compare: A = first half, B = second half --------------------------------------------
  const cmp = { view: 'compare', job: 'demo', kind: 'cpu', from: String(T1), to: String(T2), bfrom: String(T0), bto: String(T1) };
  await open(cmp, 'compare');
  check((await errorsShown()) === '', 'compare: no error shown', await errorsShown());
  const df = await api('flame', { query: cpuQ, from: cmp.from, to: cmp.to, base_from: cmp.bfrom, base_to: cmp.bto });
  const pj = await page.evaluate(() => { const v = window.gocost.view; return { head: v.flame.data.total[0], base: v.flame.data.bTotal[0], n: v.flame.data.n }; });
  const scale = df.total / df.base_total;
  check(pj.head === df.nodes[0][3] && Math.abs(pj.base - df.nodes[0][5] * scale) < 1e-6 && pj.n === df.nodes.length,
    'compare: the diff flame graph is the API\'s, base normalised to the head total', JSON.stringify({ pj, head: df.nodes[0][3], base: df.nodes[0][5] }));
  // The changes table: per function Σ flat head − Σ flat base × scale, biggest first (computed here).
  const head = new Map(), baseM = new Map();
  for (const r of df.nodes.slice(1)) {
    const n = df.names[r[0]];
    if (r[4]) head.set(n, (head.get(n) || 0) + r[4]);
    if (r[6]) baseM.set(n, (baseM.get(n) || 0) + r[6] * scale);
  }
  const wantChanges = [...new Set([...head.keys(), ...baseM.keys()])]
    .map((n) => ({ n, d: (head.get(n) || 0) - (baseM.get(n) || 0) }))
    .sort((a, b) => Math.abs(b.d) - Math.abs(a.d) || a.n.localeCompare(b.n)).slice(0, 10).map((x) => x.n);
  const gotChanges = (await page.$$eval('#d-table tbody tr', (trs) => trs.map((tr) => tr.dataset.name))).slice(0, 10);
  check(JSON.stringify(gotChanges) === JSON.stringify(wantChanges), 'compare: the biggest changes are the ones computed from the API', JSON.stringify({ gotChanges, wantChanges }));
  await shot('compare');
  // Cum changes (growth through a frame), each stack counted once per function: sorted by them
  // on request; the diff downloads as the profile go tool pprof -diff_base would build.
  const cumOf = (vi) => {
    const m = new Map();
    df.nodes.forEach((r, i) => {
      if (i === 0 || !r[vi]) return;
      const n = df.names[r[0]];
      for (let a = r[2]; a > 0; a = df.nodes[a][2]) if (df.names[df.nodes[a][0]] === n) return;
      m.set(n, (m.get(n) || 0) + r[vi] * (vi === 5 ? scale : 1));
    });
    return m;
  };
  const headCum = cumOf(3), baseCum = cumOf(5);
  const wantCum = [...new Set([...headCum.keys(), ...baseCum.keys(), ...head.keys(), ...baseM.keys()])]
    .map((n) => ({ n, d: (headCum.get(n) || 0) - (baseCum.get(n) || 0) }))
    .sort((a, b) => Math.abs(b.d) - Math.abs(a.d) || a.n.localeCompare(b.n)).slice(0, 10).map((x) => x.n);
  await page.click('[data-dsort="cum"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') === 'cum');
  const gotCum = (await page.$$eval('#d-table tbody tr', (trs) => trs.map((tr) => tr.dataset.name))).slice(0, 10);
  check(JSON.stringify(gotCum) === JSON.stringify(wantCum), 'compare: sorted by cum change, as computed from the API', JSON.stringify({ gotCum, wantCum }));
  const diffHref = new URL(await page.getAttribute('#dl-diff', 'href'), base);
  const diffDl = await fetch(diffHref);
  check(diffHref.pathname === '/api/v1/profile' && diffHref.searchParams.get('base_from') === cmp.bfrom && diffDl.status === 200,
    'compare: the diff downloads as a pprof profile (-diff_base)', diffHref.search);
  await page.click('[data-dsort="flat"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') !== 'cum');
  await page.click('#d-norm');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('norm') === '0');
  check(await page.evaluate(() => window.gocost.view.flame.data.bTotal[0]) === df.nodes[0][5], 'compare: unnormalised shows raw base values');
  // Two label sets: instance A against instance B over the same range.
  const inst = (await api('series', { query: cpuQ })).map((x) => x.labels.instance).sort();
  const lab = { ...cmp, from: String(T0), to: String(T2), bfrom: String(T0), bto: String(T2), sel: `instance="${inst[0]}"`, bsel: `instance="${inst[1]}"` };
  await open(lab, 'compare');
  const dl2 = await api('flame', { query: `cpu{job="demo",instance="${inst[0]}"}`, from: lab.from, to: lab.to, base_query: `cpu{job="demo",instance="${inst[1]}"}`, base_from: lab.bfrom, base_to: lab.bto });
  const pl = await page.evaluate(() => window.gocost.view.flame.data.total[0]);
  check(inst.length === 2 && pl === dl2.nodes[0][3], 'compare: two label sets (instance vs instance)', `${pl} vs ${dl2.nodes[0][3]}`);
  await shot('compare-labels');
  noConsoleErrors('compare');

  // ---- Runtime ----------------------------------------------------------------------------
  await open({ view: 'runtime', job: 'demo', ...range }, 'runtime');
  check((await errorsShown()) === '', 'runtime: no error shown', await errorsShown());
  const counts = await page.evaluate(() => ({ ...window.gocost.view.counts }));
  const pts = async (name) => (await api('runtime', { query: `{job="demo",__name__="${name}"}`, ...range })).reduce((a, s) => a + s.points.length, 0);
  const gcWant = await pts('go_gc_pause_seconds');
  const heapWant = (await pts('go_memstats_heap_alloc_bytes')) + (await pts('go_memstats_heap_inuse_bytes')) + (await pts('go_memstats_next_gc_bytes'));
  check(counts.gc === gcWant && counts.heap === heapWant && heapWant > 0 && counts.cpu > 0 && counts.goroutines > 0,
    `runtime: charts hold the API's points (${gcWant} GC pauses, ${heapWant} heap points)`, JSON.stringify({ counts, gcWant, heapWant }));
  // Goroutines (no go_goroutines metric here): the goroutine profiles' timeline, per bucket
  // the mean of each instance's snapshots — what the service holds, whatever the bucket.
  const gStep = await page.evaluate(() => window.gocost.view.goroutineStep);
  const gPts = await page.evaluate(() => window.gocost.view.charts.goroutines.series[0].points);
  const gApi = await api('timeline', { query: 'goroutine{job="demo"}', ...range, step: gStep });
  check(gStep && JSON.stringify(gPts) === JSON.stringify(gApi.points) && gApi.points.every(([, v]) => v > 5 && v < 1000),
    'runtime: goroutines = the API\'s timeline (mean per instance per bucket)', JSON.stringify(gPts.slice(0, 3)));
  await shot('runtime');
  noConsoleErrors('runtime');

  // A service without runtime metrics or cpu: empty charts, no errors, nothing logged.
  await open({ view: 'runtime', job: 'synthetic', ...range }, 'runtime');
  check((await errorsShown()) === '', 'runtime: a service without metrics shows empty charts', await errorsShown());
  noConsoleErrors('runtime (no metrics)');
  // A service whose /debug/vars answers 404: the page says which scrape fails and what the
  // service lacks, instead of sitting empty.
  await open({ view: 'runtime', job: 'noexpvar', ...range }, 'runtime');
  const hint = await page.textContent('#r-hints');
  check(hint.includes('expvar scrape of') && hint.includes('404') && hint.includes('import _ "expvar"'),
    'runtime: a failing expvar scrape is named, with what the service lacks', hint);
  noConsoleErrors('runtime (expvar 404)');

  // ---- Traces: execution traces of the traced test bed (scraped every 3 s) ---------------
  {
    const tRange = { from: String(T0), to: String(T2) };
    const list = await api('traces', { query: 'trace{job="traced"}', ...tRange });
    await open({ view: 'traces', job: 'traced', ...tRange }, 'traces');
    check((await errorsShown()) === '', 'traces: no error shown', await errorsShown());
    const rowsShown = await page.$$eval('#tr-list tbody tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id));
    check(list.length >= 2 && rowsShown.length === list.length && rowsShown.every((id) => list.some((t) => t.id === id)),
      `traces: the list shows the API's ${list.length} captures`, JSON.stringify(rowsShown));
    const href = await page.getAttribute('#tr-list tbody tr[data-id] a[download]', 'href');
    const dl = await fetch(base + href);
    const head = Buffer.from(await dl.arrayBuffer()).subarray(0, 5).toString();
    check(dl.ok && head === 'go 1.', 'traces: the download link gives the trace as Go wrote it', `${dl.status} ${head}`);
    noConsoleErrors('traces (list)');

    // One capture: its numbers and its per-P timeline.
    const id = rowsShown[0];
    await page.click(`#tr-list tr[data-id="${id}"] [data-open]`);
    await page.waitForFunction((i) => new URL(location.href).searchParams.get('trace') === i, id);
    await ready('traces');
    const sum = await api(`trace/${id}/summary`);
    const tl = await api(`trace/${id}/timeline`);
    const shown = await page.evaluate(() => ({ n: window.gocost.view.data.slices.length, drawn: window.gocost.view.viewer.drawn,
      view: window.gocost.view.viewer.view, stw: document.querySelector('[data-k="stw"]').textContent }));
    check(shown.n === tl.slices.length && shown.n > 0 && shown.drawn > 0, `traces: the timeline holds the API's ${tl.slices.length} slices and draws them`, JSON.stringify(shown));
    check(shown.stw.startsWith(`${sum.stw.count} pauses, max ${formatValue(sum.stw.max_ns, 'nanoseconds')}`), 'traces: the numbers are the API\'s (pauses)', shown.stw);
    check(shown.view[0] === 0 && shown.view[1] === tl.duration_ns, 'traces: the whole trace is shown first', JSON.stringify(shown.view));
    await shot('traces');
    // Zoom (the + key) and pan (drag), then a double click for the whole trace again.
    await page.keyboard.press('+');
    const zoomed = await page.evaluate(() => window.gocost.view.viewer.view);
    check(Math.abs((zoomed[1] - zoomed[0]) - tl.duration_ns / 2) < 2, 'traces: + zooms in twice', JSON.stringify(zoomed));
    const cb = await page.locator('#tr-canvas').boundingBox();
    await page.mouse.move(cb.x + cb.width / 2, cb.y + 30);
    await page.mouse.down();
    await page.mouse.move(cb.x + cb.width / 2 + 200, cb.y + 30, { steps: 4 });
    await page.mouse.up();
    const panned = await page.evaluate(() => window.gocost.view.viewer.view);
    check(panned[0] < zoomed[0] && Math.abs((panned[1] - panned[0]) - (zoomed[1] - zoomed[0])) < 2, 'traces: dragging pans back in time', JSON.stringify({ zoomed, panned }));
    await page.mouse.dblclick(cb.x + cb.width / 2, cb.y + 30);
    const whole = await page.evaluate(() => window.gocost.view.viewer.view);
    check(whole[0] === 0 && whole[1] === tl.duration_ns, 'traces: a double click shows the whole trace', JSON.stringify(whole));
    // Hover the longest slice: the tooltip names its goroutine and start function.
    const longest = tl.slices.reduce((a, x) => (x[2] - x[1] > a[2] - a[1] ? x : a));
    const pos = await page.evaluate((sl) => {
      const v = window.gocost.view.viewer;
      return { x: v.xOf((sl[1] + sl[2]) / 2), y: 4 + (3 + v.data.procs.indexOf(sl[0])) * 18 + 9 };
    }, longest);
    await page.mouse.move(cb.x + pos.x, cb.y + pos.y);
    const tip = await page.textContent('#tooltip');
    check(tip.includes(`G${longest[3]}`) && tip.includes(tl.functions[longest[4]] || '(unknown)'), 'traces: hovering a slice names its goroutine and function', tip);
    noConsoleErrors('traces (one capture)');

    // Explore marks the pauses and assists of the traces on its timeline.
    await open({ view: 'explore', job: 'traced', kind: 'cpu', ...tRange }, 'explore');
    const stwApi = (await api('runtime', { query: '{job="traced",__name__="go_trace_stw_pause_seconds"}', ...tRange })).reduce((a, x) => a + x.points.length, 0);
    const assistApi = (await api('runtime', { query: '{job="traced",__name__="go_trace_gc_assist_seconds"}', ...tRange }))
      .reduce((a, x) => a + x.points.filter(([, v]) => v > 0).length, 0);
    const marks = await page.evaluate(() => window.gocost.view.timeline.markers.reduce((a, m) => { a[m.kind] = (a[m.kind] || 0) + 1; return a; }, {}));
    check(stwApi > 0 && marks.stw === stwApi && (marks.assist || 0) === assistApi, `explore: ${stwApi} stop-the-world and ${assistApi} assist markers from the traces`, JSON.stringify(marks));
    noConsoleErrors('explore (trace markers)');

    // Runtime: scheduler latency and MMU per capture.
    await open({ view: 'runtime', job: 'traced', ...tRange }, 'runtime');
    const rc = await page.evaluate(() => ({ ...window.gocost.view.counts }));
    const schedApi = (await api('runtime', { query: '{job="traced",__name__="go_trace_sched_latency_seconds"}', ...tRange })).reduce((a, x) => a + x.points.length, 0);
    const mmuApi = (await api('runtime', { query: '{job="traced",__name__="go_trace_mmu"}', ...tRange })).reduce((a, x) => a + x.points.length, 0);
    check(schedApi > 0 && rc.sched === schedApi && rc.mmu === mmuApi, `runtime: scheduler latency (${schedApi} points) and MMU (${mmuApi}) from the traces`, JSON.stringify(rc));
    await shot('runtime-traced');
    noConsoleErrors('runtime (traced)');

    // Insights: no expvar here, so the GC section's pauses are the traces'.
    await open({ view: 'insights', job: 'traced', ...tRange }, 'insights');
    const gcApi = await api('gc', { query: '{job="traced"}', ...tRange });
    const row = await page.$eval('#gc-pauses tbody tr[data-instance]', (tr) => ({ source: tr.dataset.source, count: tr.children[1].textContent }));
    check(gcApi[0].pause_source === 'trace' && row.source === 'trace' && row.count === String(gcApi[0].pauses.count) && gcApi[0].pauses.count > 0,
      'insights: GC pauses from the traces when there is no expvar', JSON.stringify({ row, api: gcApi[0].pauses }));
    noConsoleErrors('insights (traced)');
  }

  // ---- Insights --------------------------------------------------------------------------
  {
  // A fixed range in the past, so that scrapes in flight change neither side.
  const L2 = Math.floor(Date.now() / 1000) - 5;
  const leakRange = { from: String(L2 - 600), to: String(L2) };
  // The old view name (view=leaks) still opens the page, as Insights.
  await open({ view: 'leaks', job: 'leaky', ...leakRange }, 'insights');
  check(urlParam('view') === 'insights' && await page.getAttribute('#nav a[aria-current="page"]', 'data-view') === 'insights',
    'insights: view=leaks opens Insights', page.url());
  const leakApi = await api('leaks', { query: 'goroutine{job="leaky"}', ...leakRange });
  const leakRows = await page.$$eval('#l-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  const findings = leakApi.flatMap((x) => x.findings);
  check(findings.length === 4 && leakRows.length === findings.length, `leaks: one row per finding (${findings.length})`, JSON.stringify(leakRows));
  for (const f of findings) {
    const row = leakRows.find((r) => r[1] === f.function);
    check(row && row[2].startsWith(f.blocking) && row[3] === String(f.count) && row[4] === f.rate_per_hour.toFixed(0)
      && row[6].startsWith(f.confidence.toFixed(2)), `leaks: ${f.function} shows the API's blocking, count, rate and confidence`, JSON.stringify({ row, f }));
  }
  check(!leakRows.some((r) => /poolWorker|handleRequest|cacheFill|napper|tickerLoop/.test(r[1])), 'leaks: no decoy listed');
  // This service has goroutine profiles only: every other section says what to scrape.
  const emptyText = (id) => page.textContent(`${id} tbody`);
  check((await emptyText('#cost-functions')).includes('scrape cpu') && (await emptyText('#reg-changes')).includes('scrape cpu')
    && (await emptyText('#gc-pauses')).includes('metrics = ["expvar"]') && (await emptyText('#gc-alloc')).includes('"allocs"')
    && (await emptyText('#h-table')).includes('scrape the heap'),
  'insights: sections without data say what to scrape', await page.textContent('#view'));
  check((await errorsShown()) === '', 'insights: no error shown (goroutine profiles only)', await errorsShown());
  await shot('insights-leaks');
  noConsoleErrors('insights (leaky)');

  // The demo service: cost, GC, heap growth and alerts against the API's answers.
  const demoRange = { from: String(T0), to: String(L2) };
  const insightsStart = Date.now();
  await open({ view: 'insights', job: 'demo', ...demoRange }, 'insights');
  note(`Insights page of demo over ${L2 - T0} s (9 API requests): navigation to ready ${Date.now() - insightsStart} ms`);
  check((await errorsShown()) === '', 'insights: no error shown (demo)', await errorsShown());
  const tableText = (id) => page.$$eval(`${id} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  // Cost: the service (by=job), its instances (by=instance), its functions and all services.
  const costJob = await api('cost', { query: '{job="demo"}', by: 'job', ...demoRange });
  const cur = costJob.rates.currency, m = (v) => money(v, cur);
  const g = costJob.groups[0];
  check(cur === 'EUR' && costJob.rates.cpu_per_core_hour === 0.05 && costJob.rates.memory_per_gib_hour === 0.01,
    'cost: the config\'s [cost] prices and currency', JSON.stringify(costJob.rates));
  const facts = await page.$$eval('#cost-facts dd', (dds) => Object.fromEntries(dds.map((d) => [d.dataset.key, d.textContent])));
  const wantFacts = { cores: ins.cores(g.cores), memory: ins.gib(g.memory_gib), memory_source: ins.MEMORY_SOURCE[g.memory_source],
    per_hour: m(g.cpu_per_hour + g.memory_per_hour), per_month: m(g.total_per_month) };
  check(JSON.stringify(facts) === JSON.stringify(wantFacts) && g.cores > 0 && g.memory_source === 'go_sys' && facts.per_month.startsWith('€'),
    `cost: the service's cores, memory (${g.memory_source}) and money per hour and month (${facts.per_month})`, JSON.stringify({ facts, wantFacts }));
  const fnRows = await tableText('#cost-functions');
  const wantFn = g.functions.map((f) => [f.function, ins.cores(f.cores), ins.gib(f.memory_gib), m(f.cpu_per_month), m(f.memory_per_month), m(f.total_per_month)]);
  check(wantFn.length > 0 && JSON.stringify(fnRows) === JSON.stringify(wantFn), `cost: the top functions by money are the API's ${wantFn.length}`,
    JSON.stringify({ got: fnRows.slice(0, 2), want: wantFn.slice(0, 2) }));
  const costInst = await api('cost', { query: '{job="demo"}', by: 'instance', ...demoRange });
  const instRows = await tableText('#cost-instances');
  const wantInst = costInst.groups.map((x) => [x.labels.instance, ins.cores(x.cores), ins.gib(x.memory_gib), ins.MEMORY_SOURCE[x.memory_source],
    m(x.cpu_per_month), m(x.memory_per_month), m(x.cpu_per_hour + x.memory_per_hour), m(x.total_per_month)]);
  check(wantInst.length === 2 && JSON.stringify(instRows) === JSON.stringify(wantInst), 'cost: one row per instance, the API\'s numbers',
    JSON.stringify({ instRows, wantInst }));
  const costAll = await api('cost', { by: 'job', top: 1, ...demoRange });
  const svcRows = await tableText('#cost-services');
  const wantSvc = costAll.groups.map((x) => [x.labels.job, String(x.targets), ins.cores(x.cores), ins.gib(x.memory_gib), m(x.cpu_per_hour + x.memory_per_hour),
    m(x.total_per_month), ((x.total_per_month / costAll.total_per_month) * 100).toFixed(2) + '%']);
  check(wantSvc.length >= 2 && JSON.stringify(svcRows) === JSON.stringify(wantSvc), `cost: all services' top spenders (${wantSvc.map((r) => `${r[0]} ${r[5]}`).join(', ')})`,
    JSON.stringify({ svcRows, wantSvc }));
  // GC: pause quantiles, the heatmap (drawn, one column per API column), GC CPU, allocation sites.
  const gcApi = await api('gc', { query: '{job="demo"}', ...demoRange });
  const secs = (v) => formatValue(v, 'seconds');
  const pauseRows = await tableText('#gc-pauses');
  const wantPauses = gcApi.filter((x) => x.pauses).map((x) => [x.labels.instance, String(x.pauses.count), secs(x.pauses.total_seconds),
    secs(x.pauses.p50), secs(x.pauses.p90), secs(x.pauses.p99), secs(x.pauses.max)]);
  check(wantPauses.length === 2 && JSON.stringify(pauseRows) === JSON.stringify(wantPauses), 'gc: pause count, total and p50/p90/p99/max per instance are the API\'s',
    JSON.stringify({ pauseRows, wantPauses }));
  // Each drawn cell's centre pixel is painted (not transparent), read from one copy of the canvas.
  const paintedCells = () => page.evaluate(() => window.gocost.view.heatmaps.map((h) => {
    const c = h.canvas, dpr = c.width / c.clientWidth;
    const copy = document.createElement('canvas');
    copy.width = c.width; copy.height = c.height;
    const ctx = copy.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(c, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    const painted = h.cells.filter(([x, y, w, hh]) => px[(Math.floor((y + hh / 2) * dpr) * c.width + Math.floor((x + w / 2) * dpr)) * 4 + 3] > 0).length;
    return { instance: h.instance, drawn: h.drawn, cells: h.cells.length, painted, width: c.clientWidth };
  }));
  const maps = await paintedCells();
  for (const x of gcApi.filter((y) => y.heatmap)) {
    const h = maps.find((y) => y.instance === x.labels.instance);
    const cells = x.heatmap.columns.reduce((n, [, counts]) => n + counts.filter((c) => c > 0).length, 0);
    check(h && x.heatmap.columns.length > 0 && h.drawn === x.heatmap.columns.length && h.cells === cells && h.painted === cells,
      `gc: heatmap of ${x.labels.instance} draws the API's ${x.heatmap.columns.length} columns (${cells} painted cells)`, JSON.stringify({ h, cols: x.heatmap.columns.length, cells }));
  }
  // Hovering the heatmap's busiest cell shows its bucket and count.
  const hot = await page.evaluate(() => {
    const h = window.gocost.view.heatmaps[0];
    const [x, y, w, hh, , r, n] = h.cells.reduce((a, b) => (b[6] > a[6] ? b : a));
    h.canvas.scrollIntoView();
    return { x: x + w / 2, y: y + hh / 2, r, n };
  });
  const hbox = await page.locator('canvas.heatmap').first().boundingBox();
  await page.mouse.move(hbox.x + hot.x, hbox.y + hot.y);
  const hoverTip = await page.evaluate(() => { const t = document.getElementById('tooltip'); return { hidden: t.hidden, text: t.textContent }; });
  const le0 = gcApi.find((x) => x.heatmap).heatmap.le;
  check(!hoverTip.hidden && hoverTip.text.includes(`pauses ${ins.bucketText(le0, hot.r)}${hot.n}`), `gc: hovering the heatmap's busiest cell shows its bucket and count (${ins.bucketText(le0, hot.r)}: ${hot.n})`,
    JSON.stringify({ hoverTip, hot }));
  await page.mouse.move(0, 0);
  const cpuRows = await tableText('#gc-cpu');
  const wantGcCpu = gcApi.filter((x) => x.gc_cpu).map((x) => [x.labels.instance, secs(x.gc_cpu.cpu_seconds), secs(x.gc_cpu.gc_seconds),
    ins.share(x.gc_cpu.fraction), ins.cores(x.gc_cpu.cores), x.gc_cpu.phases.map((p) => `${p.phase.replace(/_/g, ' ')} ${ins.share(p.fraction)}`).join(' · ')]);
  check(wantGcCpu.length === 2 && JSON.stringify(cpuRows) === JSON.stringify(wantGcCpu), 'gc: GC CPU fraction by phase is the API\'s', JSON.stringify({ cpuRows, wantGcCpu }));
  const allocRows = await tableText('#gc-alloc');
  const wantAlloc = gcApi.filter((x) => x.allocation).flatMap((x) => x.allocation.sites.map((y) => [x.labels.instance, y.site,
    ins.rate(y.bytes_per_second, 'bytes'), ins.rate(y.objects_per_second, ''), ins.share(y.share)]));
  check(wantAlloc.length > 0 && JSON.stringify(allocRows) === JSON.stringify(wantAlloc), `gc: the top allocation sites (${wantAlloc.length}) are the API's`,
    JSON.stringify({ got: allocRows.slice(0, 2), want: wantAlloc.slice(0, 2) }));
  // The growing-heap table lists exactly what the API finds.
  const heapApi = await api('heap_growth', { query: 'heap{job="demo"}', ...demoRange });
  const heapSites = await page.$$eval('#h-table tbody tr', (trs) => trs.map((tr) => tr.cells.length > 1 ? tr.cells[1].textContent.trim() : ''));
  const apiSites = heapApi.flatMap((x) => x.findings.map((f) => f.site));
  check(apiSites.length === 0 ? heapSites.length === 1 && heapSites[0] === '' : JSON.stringify(heapSites) === JSON.stringify(apiSites),
    `leaks: the growing-heap table shows the API's ${apiSites.length} site(s)`, JSON.stringify({ heapSites, apiSites }));
  // Alerts: the rules and what fires, as the page fetched them (evaluations every 2 s move the
  // values), and the same rules and firing label sets as the API answers now.
  const pageAlerts = await page.evaluate(() => window.gocost.view.data.alerts);
  const alertsApi = await api('alerts');
  const ruleRows = await tableText('#alert-rules');
  const wantRules = pageAlerts.map((r) => [r.name, r.when, ins.alertValue(r.when, r.above, cur), r.query || 'all', durationText(r.window_seconds)]);
  check(JSON.stringify(ruleRows.map((r) => r.slice(0, 5))) === JSON.stringify(wantRules) && JSON.stringify(alertsApi.map((r) => r.name)) === JSON.stringify(pageAlerts.map((r) => r.name))
    && ruleRows[0]?.[2] === '€0.00/month' && ruleRows[0]?.[5] === `${pageAlerts[0].firing.length} firing`,
  'alerts: each rule with its when, threshold and unit, targets, window and state', JSON.stringify({ ruleRows, wantRules }));
  const firingRows = await tableText('#alert-firing');
  const pageFiring = pageAlerts.flatMap((r) => r.firing.map((a) => [r.name, Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`).join(', '), ins.alertValue(r.when, a.value, cur), a.summary]));
  const labelsOf = (rules) => JSON.stringify(rules.flatMap((r) => r.firing.map((a) => a.labels)));
  check(pageFiring.length >= 1 && JSON.stringify(firingRows.map((r) => r.slice(0, 4))) === JSON.stringify(pageFiring) && labelsOf(alertsApi) === labelsOf(pageAlerts),
    `alerts: firing alerts with labels, value and summary (${pageFiring.map((r) => r[2]).join(', ')})`, JSON.stringify({ firingRows, pageFiring }));
  await shot('insights-demo');
  // Dark theme: the heatmap is drawn again in the dark palette.
  await page.keyboard.press('t');
  const dark = await paintedCells();
  check(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark' && dark.length === maps.length
    && dark.every((h) => h.cells > 0 && h.painted === h.cells), 'gc: the heatmap redraws in the dark theme', JSON.stringify(dark));
  await shot('insights-demo-dark');
  await page.keyboard.press('t');
  // A function's row opens Explore with it highlighted; Back returns.
  await page.click('#cost-functions tbody tr:first-child');
  await ready('explore');
  check(urlParam('view') === 'explore' && urlParam('kind') === 'cpu' && urlParam('fn') === g.functions[0].function
    && await page.$eval('#x-top tbody tr[aria-selected="true"]', (tr) => tr.dataset.name).catch(() => '') === g.functions[0].function,
  `cost: clicking ${g.functions[0].function} shows it in Explore`, page.url());
  await page.goBack();
  await ready('insights');
  check(urlParam('view') === 'insights', 'insights: Back returns from Explore', page.url());
  noConsoleErrors('insights (demo)');

  // Regressions: the deploy of the slower build.
  await open({ view: 'insights', job: 'deploy', ...demoRange }, 'insights');
  const regApi = await api('regressions', { query: 'cpu{job="deploy"}', ...demoRange });
  const changes = regApi.flatMap((x) => x.changes.map((c) => ({ instance: x.labels.instance, ...c }))).sort((a, b) => b.at_ms - a.at_ms);
  const changeRows = await tableText('#reg-changes');
  const wantChangeRows = changes.map((c) => [c.instance, ins.build(c.before) + ' → ' + ins.build(c.after), `${c.before_profiles} → ${c.after_profiles}`,
    c.compared ? (c.regressions.length ? `${c.regressions.length} function${c.regressions.length === 1 ? '' : 's'} slower` : 'no regression') : `not compared: ${c.note || ''}`]);
  check(changes.length >= 1 && changes[0].compared && JSON.stringify(changeRows.map((r) => [r[0], r[2], r[3], r[4]])) === JSON.stringify(wantChangeRows)
    && changeRows.every((r, k) => r[1] === dateTime(changes[k].at_ms)),
  `regressions: the build change (${wantChangeRows.map((r) => `${r[1]}, ${r[2]} profiles: ${r[3]}`).join('; ')})`, JSON.stringify({ changeRows, wantChangeRows }));
  const fnRegRows = await tableText('#reg-functions');
  const wantReg = changes.flatMap((c) => c.regressions.map((r) => [c.instance, dateTime(c.at_ms), r.function, ins.change(r.change),
    `${ins.share(r.before_share)} → ${ins.share(r.after_share)}`, `${ins.cores(r.before_cores)} → ${ins.cores(r.after_cores)}`, r.p_adjusted.toPrecision(2)]));
  check(wantReg.length === 0 ? fnRegRows.length === 1 && fnRegRows[0].length === 1 : JSON.stringify(fnRegRows) === JSON.stringify(wantReg),
    `regressions: the functions that got more expensive are the API's (${wantReg.map((r) => `${r[2]} ${r[3]}`).join(', ') || 'none found'})`, JSON.stringify({ fnRegRows, wantReg }));
  await shot('insights-regressions');
  noConsoleErrors('insights (deploy)');

  // Keyboard: 4 opens Insights; a service without leaks says so.
  await open({ view: 'explore', job: 'demo', kind: 'cpu', from: 'now-10m', to: 'now' }, 'explore');
  await page.keyboard.press('4');
  await ready('insights');
  check(urlParam('view') === 'insights', 'insights: key 4 opens Insights', page.url());
  check((await errorsShown()) === '' && (await page.textContent('#l-table tbody')).includes('No goroutine leaks'), 'leaks: a service without leaks says so', await errorsShown());
  noConsoleErrors('insights (now)');
  }

  // ---- Targets ----------------------------------------------------------------------------
  await open({ view: 'targets' }, 'targets');
  const targets = await api('targets');
  const trows = await page.$$eval('#t-table tbody tr', (trs) => trs.map((tr) => ({ up: tr.dataset.up, text: tr.textContent })));
  const down = targets.find((t) => !t.up);
  check(trows.length === targets.length && trows.length >= 10, `targets: one row per target and kind (${targets.length})`);
  check(down && trows.some((r) => r.up === 'false' && r.text.includes('down') && r.text.includes(down.last_error || '?')), 'targets: a down target shows its last error', JSON.stringify(down));
  const discovered = await page.$$eval('#t-table tbody td.labels details', (d) => d.length);
  check(discovered === targets.length && targets.every((t) => t.discovered_labels && t.discovered_labels.__address__),
    'targets: each row shows its discovered labels', `${discovered} of ${targets.length}`);
  check(await page.$('#t-dropped') !== null && (await page.textContent('#t-dropped-summary')).includes('('), 'targets: the dropped targets are listed');
  await shot('targets');
  noConsoleErrors('targets');

  // ---- Load runs: two runs kept by the server, listed with the API's numbers -----------------
  const loadRun = (p99, at) => ({
    url: 'http://127.0.0.1:8080/api', model: 'open', rate: 200, protocol: 'HTTP/1.1', duration_seconds: 2,
    measured_from_unix_ns: at * 1e9, requests: 400, errors: 3, throughput: 198.5,
    latency: { p50: 0.0102, p90: 0.02, p99, p999: p99 * 1.5, max: p99 * 2, mean: 0.012 },
    seconds: [{ t: 0, requests: 200, errors: 1, late: 0, latency: { p50: 0.01, p90: 0.02, p99, p999: p99, max: p99, mean: 0.01 } }],
  });
  for (const [name, p99, at, html] of [['checkout-v1', 0.031, T0 + 10, '<!doctype html><title>v1</title><p>the v1 report</p>'], ['checkout-v2', 0.047, T0 + 20, null]]) {
    const r = await fetch(`${base}/api/v1/loadruns`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, run: loadRun(p99, at), html }) });
    check(r.ok, `load runs: ${name} stored`, await r.text());
  }
  await open({ view: 'loadruns', from: String(T0), to: String(now + 60) }, 'loadruns');
  const lrApi = await api('loadruns', { from: String(T0), to: String(now + 60) });
  const lrRows = await page.$$eval('#lr-list tbody tr', (trs) => trs.map((tr) => ({ id: tr.dataset.id, cells: [...tr.children].map((td) => td.textContent.trim()), report: tr.querySelector('a[href*="/report"]')?.getAttribute('href') || '' })));
  check(lrApi.length === 2 && lrRows.length === 2 && lrRows.every((r, i) => r.id === lrApi[i].id), 'load runs: one row per stored run, newest first, as /api/v1/loadruns', JSON.stringify(lrRows.map((r) => r.id)));
  check(lrRows[0].cells[1] === 'checkout-v2' && lrRows[1].cells[1] === 'checkout-v1' && lrRows[1].cells[8] === '31ms' && lrRows[0].cells[8] === '47ms'
    && lrRows[1].cells[4] === '400' && lrRows[1].cells[5] === '3' && lrRows[1].cells[3].includes('200/s'),
  'load runs: name, requests, errors, offered load and P99 as the API gives them', JSON.stringify(lrRows.map((r) => r.cells)));
  check(lrRows[1].report !== '' && lrRows[0].report === '', 'load runs: a report link only for the run stored with its report');
  const rep = await fetch(`${base}${lrRows[1].report}`);
  check(rep.ok && (await rep.text()).includes('the v1 report') && rep.headers.get('content-security-policy') === 'sandbox allow-scripts', 'load runs: the report opens, sandboxed');
  await shot('loadruns');
  noConsoleErrors('loadruns');

  // ---- The 50k-node flame graph -----------------------------------------------------------
  const synth = { view: 'explore', job: 'synthetic', kind: 'goroutine', from: String(T0 - 60), to: String(now) };
  const navStart = Date.now();
  await open(synth, 'explore');
  const endToEnd = Date.now() - navStart;
  const big = await page.evaluate(() => ({ ...window.gocost.timings, drawn: window.gocost.view.flame.drawn }));
  const bigQ = { query: 'goroutine{job="synthetic"}', from: synth.from, to: synth.to };
  const bigApi = await pageFlame(bigQ);
  const bigFull = await api('flame', bigQ);
  const bigFrames = bigApi.nodes.filter((r) => r[1] !== 2).length - 1;
  check(big.flameNodes === bigApi.nodes.length - 1 && bigFull.nodes.length - 1 >= 50000 && bigApi.hidden > 0
    && bigFrames + bigApi.hidden === bigFull.nodes.length - 1 && bigApi.nodes[0][3] === bigFull.nodes[0][3],
  `50k: the page holds what ${bigApi.width} px can draw (${bigApi.nodes.length - 1} of ${bigFull.nodes.length - 1} nodes; the rest summed, same total)`, `${big.flameNodes} ${bigApi.hidden}`);
  const cutBytes = JSON.stringify(bigApi).length, fullBytes = JSON.stringify(bigFull).length;
  // Redraws from scratch (layout + draw), median of 5, and interactions.
  const redraw = await page.evaluate(() => {
    const f = window.gocost.view.flame;
    const json = f.data.json;
    const times = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      f.setData(json); f.render();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[2];
  });
  // Upper bound: every one of the 51,842 boxes drawn, however thin (minPx = 0).
  const drawAll = await page.evaluate(() => {
    const f = window.gocost.view.flame;
    f.minPx = 0;
    const times = [];
    for (let k = 0; k < 5; k++) { const t0 = performance.now(); f.render(); times.push(performance.now() - t0); }
    const drawn = f.drawn;
    f.minPx = 0.35; f.render();
    times.sort((a, b) => a - b);
    return { ms: times[2], drawn };
  });
  const bc = await page.locator('#x-flame').boundingBox();
  const hoverTimes = [];
  for (let k = 0; k < 20; k++) {
    await page.mouse.move(bc.x + 20 + k * 37, bc.y + 18 * 3 + 5);
    hoverTimes.push(await page.evaluate(() => window.gocost.view.flame.timings.hover));
  }
  hoverTimes.sort((a, b) => a - b);
  await page.mouse.click(bc.x + 300, bc.y + 18 * 2 + 5);
  const clickZoom = await page.evaluate(() => window.gocost.view.flame.timings.zoom);
  await ready('explore'); // a zoom into summed children asks the API for them
  const searchT0 = Date.now();
  await page.fill('#x-search', 'leaf07');
  await page.press('#x-search', 'Enter');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('search') === 'leaf07');
  const searchMs = await page.evaluate(() => window.gocost.view.flame.timings.search);
  const searchRound = Date.now() - searchT0;
  const leafShare = Number(await page.getAttribute('#x-matched', 'data-share'));
  const wantLeaf = share(await pageFlame(bigQ), (n) => /leaf07/i.test(n));
  check(Math.abs(leafShare - wantLeaf) < 1e-12, '50k: search share equals the JSON\'s', `${leafShare} vs ${wantLeaf}`);
  await shot('explore-50k');
  note(`50k-node flame graph (${bigFull.nodes.length - 1} nodes; ${big.flameNodes} sent for ${Math.round(bc.width)} px, ${big.drawn} boxes wide enough to draw; JSON ${(cutBytes / 1024).toFixed(0)} KiB instead of ${(fullBytes / 1024).toFixed(0)} KiB):`);
  note(`  first render after the data arrived: ${big.flameRenderMs.toFixed(1)} ms (layout ${big.flameLayoutMs.toFixed(1)} ms + draw ${big.flameDrawMs.toFixed(1)} ms); API fetch + JSON parse ${big.flameFetchMs.toFixed(0)} ms; navigation to ready ${endToEnd} ms`);
  note(`  re-render from JSON (layout + draw), median of 5: ${redraw.toFixed(1)} ms`);
  note(`  drawing all ${drawAll.drawn} boxes (no sub-pixel culling), median of 5: ${drawAll.ms.toFixed(1)} ms`);
  note(`  hover (hit test + redraw + tooltip): median ${hoverTimes[10].toFixed(2)} ms, max ${hoverTimes[19].toFixed(2)} ms`);
  note(`  click-zoom redraw: ${clickZoom.toFixed(1)} ms; search "leaf07" (match + redraw): ${searchMs.toFixed(1)} ms (${searchRound} ms including the URL update round trip)`);
  noConsoleErrors('explore 50k');
} catch (e) {
  failures.push(`exception: ${e.stack || e}`);
  console.log(`FAIL  exception: ${e.stack || e}`);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
}
fs.writeFileSync(path.join(outDir, 'timings.txt'), timings.join('\n') + '\n');
if (failures.length) {
  console.log(`\n${failures.length} UI check(s) failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('\nall UI checks passed');
