// The streamed catalogue in headless Chromium (issue 17; docs/bundle.md § Index, "Streamed
// reader's files"), on a small indexed bundle (`omakase export --index on`):
//   node tests/browser/stream.mjs --bundle DIR [--verbose]
// - the load downloads only manifest.json, the sequence tower, the centroids and popular.json;
// - recommend() probing every partition equals the whole bundle's exact answer (ids and scores),
//   with search { path: "index", probed: all, missing: [] }; it downloads no items.json;
// - a partial answer on a fresh load comes at once and fetches nothing (no id resolved yet: EmptySession);
// - prefetch() brings whole partitions, most popular first; streamStats() counts them;
// - a tampered partition served by the server is refused by its sha256 naming the file, and the
//   answer comes from the verified partitions (the refused one missing, none of its items listed).
// Exit status 0 when every check passes, 1 otherwise.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch, openPage } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const i = process.argv.indexOf('--bundle');
if (i < 0 || !process.argv[i + 1]) throw new Error('usage: node stream.mjs --bundle DIR (an indexed bundle)');
const bundle = path.resolve(process.argv[i + 1]);
const verbose = process.argv.includes('--verbose');
const K = 10;

let failures = 0;
function check(name, ok, detail = '') {
  if (ok) console.log(`ok    ${name}`);
  else {
    failures++;
    console.log(`FAIL  ${name}${detail ? `: ${detail}` : ''}`);
  }
}

const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
if (!manifest.index || !manifest.index.metadata) throw new Error(`${bundle}: not an indexed bundle with the streamed reader's files`);
const P = manifest.index.partitions;
const ids = JSON.parse(fs.readFileSync(path.join(bundle, 'items.json'), 'utf8')).map((m) => m.id);
const n = ids.length;
const at = (x) => ids[Math.min(n - 1, Math.floor(x))];
const sessions = [[at(0)], [at(1), at(n / 2), at(n / 3)], [at(n - 1), at(n / 5), at(n / 7), at(n / 9)]];

// A copy of the bundle whose partition 1 has one byte flipped (the manifest unchanged).
const TAMPERED = 1;
const tamperedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-stream-'));
for (const name of fs.readdirSync(bundle)) fs.copyFileSync(path.join(bundle, name), path.join(tamperedDir, name));
const tamperedFile = manifest.shards[TAMPERED].file.path;
const bytes = fs.readFileSync(path.join(tamperedDir, tamperedFile));
bytes[bytes.length - 1] ^= 0x40;
fs.writeFileSync(path.join(tamperedDir, tamperedFile), bytes);
const tamperedIds = new Set(JSON.parse(fs.readFileSync(path.join(bundle, manifest.index.metadata[TAMPERED].path), 'utf8')).map((m) => m.id));

async function main() {
  const server = await serve([
    ['/', path.join(repo, 'www')],
    ['/pkg/', path.join(repo, 'pkg')],
    ['/test/', path.join(here, 'pages')],
    ['/bundle/', bundle],
    ['/tampered/', tamperedDir],
  ]);
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openPage(browser, `${server.url}/test/harness.html`, verbose ? console.log : () => {});
    await page.waitForFunction(() => window.harnessReady === true);
    await page.evaluate(async () => {
      window.client = await window.Omakase.start();
    });
    const filesSince = (from, prefix) => server.served.slice(from).filter((s) => s.url.startsWith(prefix)).map((s) => s.url.slice(prefix.length));

    // The load: nothing per item.
    let from = server.served.length;
    const info = await page.evaluate(() => window.client.load('/bundle/manifest.json', { cache: false }));
    const loaded = filesSince(from, '/bundle/').sort();
    const expected = ['manifest.json', manifest.sequence_tower.path, manifest.index.centroids.path, manifest.index.popular.path].sort();
    check('load: streamed', info.streamed === true, JSON.stringify(info));
    check('load: only manifest, sequence tower, centroids and popular.json', JSON.stringify(loaded) === JSON.stringify(expected), loaded.join(' '));
    console.log(`      load: ${loaded.length} files, ${info.stats.downloaded} B of ${info.stats.bundle} B; ${info.itemCount} items in ${P} partitions`);

    // A partial answer at once, fetching nothing: no session id is resolved yet (EmptySession).
    from = server.served.length;
    const early = await page.evaluate(([s, k]) => window.client.recommend(s, k, { partial: true })
      .then((r) => ({ ids: r.ids }), (e) => ({ kind: e.kind, message: e.message })), [sessions[1], K]);
    check('partial: answers at once from what is here, fetching nothing', early.kind === 'EmptySession' && filesSince(from, '/bundle/').length === 0,
      JSON.stringify(early));

    // prefetch within a budget of exactly the most popular partition: that one, nothing else.
    const budget = manifest.shards[0].file.bytes + manifest.index.metadata[0].bytes;
    const first = await page.evaluate((b) => window.client.prefetch(b), budget);
    const one = await page.evaluate(() => window.client.streamStats());
    check('prefetch: the most popular partition first, within the budget', first.partitions === 1 && first.bytes === budget && one.present === 1,
      `${JSON.stringify(first)} ${JSON.stringify(one)}`);

    // Streamed answers probing every partition.
    from = server.served.length;
    const streamed = [];
    for (const s of sessions) {
      streamed.push(await page.evaluate(async ([s, k, p]) => {
        const r = await window.client.recommend(s, k, { nprobe: p });
        return { ids: r.ids, scores: Array.from(r.scores), search: r.search, titles: r.items.map((m) => m.title) };
      }, [s, K, P]));
    }
    const fetched = filesSince(from, '/bundle/');
    check('recommend: no whole-catalogue file fetched', !fetched.some((f) => ['items.json', 'popularity.json', 'columns.json'].includes(f) || f.startsWith('explain')), fetched.join(' '));
    for (const [j, r] of streamed.entries()) {
      check(`recommend ${j}: search is the index, every partition probed, none missing`,
        r.search.path === 'index' && r.search.probed.length === P && r.search.missing.length === 0, JSON.stringify(r.search));
      check(`recommend ${j}: every item has its card`, r.titles.length === K && r.titles.every((t) => typeof t === 'string'));
    }
    const stats = await page.evaluate(() => window.client.streamStats());
    const prefetched = await page.evaluate(() => window.client.prefetch(1e9));
    const after = await page.evaluate(() => window.client.streamStats());
    console.log(`      stats: ${JSON.stringify(stats)}; prefetch ${JSON.stringify(prefetched)}; then ${after.present}/${after.partitions} present`);
    check('prefetch: whole partitions arrive, streamStats counts them', after.present === P && after.present >= stats.present && prefetched.failed.length === 0, JSON.stringify(after));
    const again = await page.evaluate(async ([s, k, p]) => {
      const r = await window.client.recommend(s, k, { nprobe: p, partial: true });
      return { ids: r.ids, missing: r.search.missing };
    }, [sessions[0], K, P]);
    check('partial: with every partition prefetched, the same answer', JSON.stringify(again.ids) === JSON.stringify(streamed[0].ids) && again.missing.length === 0);

    // The whole bundle (stream: false) scans every row: the same answers.
    const whole = await page.evaluate(() => window.client.load('/bundle/manifest.json', { stream: false, backend: 'wasm', cache: false }));
    check('stream: false loads the whole bundle', whole.streamed === false);
    for (const [j, s] of sessions.entries()) {
      const w = await page.evaluate(async ([s, k]) => {
        const r = await window.client.recommend(s, k);
        return { ids: r.ids, scores: Array.from(r.scores), search: r.search };
      }, [s, K]);
      const same = JSON.stringify(w.ids) === JSON.stringify(streamed[j].ids) && w.scores.every((x, q) => Math.abs(x - streamed[j].scores[q]) <= 1e-6);
      check(`session ${j}: streamed (nprobe = all) equals the whole bundle's exact answer`, same && w.search.path === 'exact',
        `${streamed[j].ids.join(',')} vs ${w.ids.join(',')}`);
    }

    // A tampered partition: refused by its sha256, naming the file; the answer uses the rest.
    await page.evaluate(() => window.client.load('/tampered/manifest.json', { cache: false }));
    const t = await page.evaluate(async ([s, k, p]) => {
      const r = await window.client.recommend(s, k, { nprobe: p });
      return { ids: r.ids, search: r.search };
    }, [sessions[1], K, P]);
    const refused = t.search.refused || [];
    check('tampered partition: refused by sha256 naming the file',
      refused.some((e) => e.kind === 'Checksum' && e.file === tamperedFile && e.message.includes(tamperedFile)), JSON.stringify(refused));
    check('tampered partition: reported missing, none of its items listed',
      t.search.missing.includes(TAMPERED) && t.ids.length === K && !t.ids.some((id) => tamperedIds.has(id)), JSON.stringify(t.search.missing));
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(tamperedDir, { recursive: true, force: true });
  }
  console.log(failures === 0 ? 'stream: all checks passed' : `stream: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
