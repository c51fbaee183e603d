// Browser test of `gocost load -o report.html`: node load_report.test.mjs <report.html> <output dir>
//
// Opens the self-contained page from disk in Debian's chromium (headless, playwright-core, no
// network) and checks what it shows against the JSON report it embeds (`#report-json`, the
// `--json` output verbatim): the summary's numbers, every chart present and drawn, each
// series' per-second values, the shaded spike seconds, the GC pause heatmap's and the latency
// histogram's counts, the spikes table, and the CPU flame graph (it renders, and a click
// zooms). No console errors. A screenshot goes to the output directory. Exits 1 on any failed
// check.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, outDir] = process.argv.slice(2);
if (!file || !outDir) {
  console.error('usage: node load_report.test.mjs <report.html> <output dir>');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

const failures = [];
function check(cond, what, detail = '') {
  if (cond) console.log(`ok    ${what}`);
  else { failures.push(what); console.log(`FAIL  ${what} ${detail}`); }
}
const same = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  // Nothing may leave the machine: the page is self-contained.
  const requests = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
  await page.goto(pathToFileURL(path.resolve(file)).href);

  const r = JSON.parse(await page.locator('#report-json').textContent());
  const s = r.service;
  check(!!s, 'the report has the service part');

  // Summary cells carry the JSON numbers they print.
  const cells = await page.$$eval('#summary [data-key]', (els) =>
    els.map((e) => ({ key: e.dataset.key, value: e.dataset.value, text: e.textContent })));
  const get = (key) => key.split('.').reduce((o, k) => o?.[k], r);
  for (const key of ['requests', 'throughput', 'errors', 'latency.p50', 'latency.p99', 'latency.p999', 'latency.max',
    'service.cpu.cores', 'service.cpu.per_request_seconds', 'service.cost.total_per_million']) {
    const c = cells.find((x) => x.key === key);
    check(c && same(Number(c.value), get(key)) && c.text.trim() !== '', `summary ${key} = ${get(key)}`, JSON.stringify(c));
  }

  // Every chart is drawn (a visible box with marks in it).
  for (const id of ['latency', 'throughput', 'histogram', 'memory', 'goroutines', 'cpu', 'gc-pauses', 'gc-cpu']) {
    const box = await page.locator(`#chart-${id}`).boundingBox();
    const marks = await page.locator(`#chart-${id} polyline, #chart-${id} rect.cell, #chart-${id} rect.bar`).count();
    check(box && box.width > 500 && box.height > 80 && marks > 0, `chart ${id} is drawn`, JSON.stringify({ box, marks }));
  }

  // Series values per second equal the JSON's.
  const series = async (chart, name) => (await page.locator(`#chart-${chart} g.series[data-name="${name}"]`)
    .getAttribute('data-values')).split(',').map((v) => (v === '' ? null : Number(v)));
  const p99 = await series('latency', 'P99');
  const wantP99 = r.seconds.map((x) => (x.requests > 0 ? x.latency.p99 : null));
  check(p99.length === wantP99.length && p99.every((v, i) => (v === null ? wantP99[i] === null : same(v, wantP99[i]))),
    `P99 per second (${p99.length} seconds)`);
  const gor = await series('goroutines', 'goroutines');
  const wantGor = s.seconds.map((x) => x.goroutines_max ?? null);
  check(gor.length === wantGor.length && gor.every((v, i) => v === wantGor[i]), 'goroutines per second');
  const heap = await series('memory', 'heap in use (max)');
  check(heap.every((v, i) => (v === null ? s.seconds[i].heap_inuse_max_bytes == null : same(v, s.seconds[i].heap_inuse_max_bytes))),
    'heap in use per second');

  const cores = await series('cpu', 'cores');
  check(cores.every((v, i) => (v === null ? s.seconds[i].cpu_seconds == null : same(v, s.seconds[i].cpu_seconds))) && cores.some((v) => v > 0),
    'CPU per second');

  // Spike seconds are shaded in the latency chart and listed with the runtime's numbers.
  const shaded = await page.$$eval('#chart-latency rect.spike', (els) => els.map((e) => Number(e.dataset.t)));
  const wantSpikes = s.spikes.map((x) => x.t);
  check(JSON.stringify(shaded) === JSON.stringify(wantSpikes) && wantSpikes.length > 0, `spikes shaded at ${wantSpikes}`, JSON.stringify(shaded));
  const rows = await page.$$eval('#spikes tr[data-t]', (els) => els.map((e) => Number(e.dataset.t)));
  check(JSON.stringify(rows) === JSON.stringify(wantSpikes), 'the spikes table lists every spike');

  // The heatmap holds every GC pause, each in its second.
  const cellsGc = await page.$$eval('#chart-gc-pauses rect.cell', (els) =>
    els.map((e) => ({ t: Number(e.dataset.t), n: Number(e.dataset.count) })));
  const total = cellsGc.reduce((a, c) => a + c.n, 0);
  check(total === s.gc_pauses.length && total > 0, `heatmap holds ${s.gc_pauses.length} pauses`, `${total}`);
  const perSecond = new Map();
  for (const p of s.gc_pauses) perSecond.set(Math.floor(p.t), (perSecond.get(Math.floor(p.t)) || 0) + 1);
  const cellPerSecond = new Map();
  for (const c of cellsGc) cellPerSecond.set(c.t, (cellPerSecond.get(c.t) || 0) + c.n);
  check([...perSecond].every(([t, n]) => cellPerSecond.get(t) === n), 'heatmap columns are the pauses of their second');

  // The histogram's bars are the JSON's buckets.
  const bars = await page.$$eval('#chart-histogram rect.bar', (els) => els.map((e) => Number(e.dataset.count)));
  check(bars.length === r.histogram.length && bars.every((n, i) => n === r.histogram[i][1]), `histogram: ${bars.length} buckets`);

  // The CPU flame graph renders in its frame and zooms on a click.
  const frame = page.frameLocator('iframe#flame');
  const boxes = await frame.locator('g.f').count();
  check(boxes > 3, `flame graph has ${boxes} frames`);
  // A click on a narrower frame zooms it to the full drawing width.
  const inner = Number(await frame.locator('svg').first().getAttribute('data-inner'));
  const flameTotal = Number(await frame.locator('svg').first().getAttribute('data-total'));
  const pick = await frame.locator('g.f').evaluateAll((els, t) => els.findIndex((g) =>
    Number(g.dataset.d) >= 1 && Number(g.dataset.w) < t && Number(g.querySelector('rect').getAttribute('width')) > 20), flameTotal);
  check(pick >= 0, 'a frame narrower than the root to click');
  if (pick >= 0) {
    await frame.locator('g.f').nth(pick).locator('rect').click();
    const w = Number(await frame.locator('g.f').nth(pick).locator('rect').getAttribute('width'));
    check(Math.abs(w - inner) < 0.02, `a click zooms the frame to the full width (${w} of ${inner})`);
  }

  await page.screenshot({ path: path.join(outDir, 'load-report.png'), fullPage: true });
  check(errors.length === 0, 'no console errors', errors.join('; '));
  check(requests.length === 0, 'no network requests', requests.join(' '));
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
