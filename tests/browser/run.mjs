// Browser tests of the wasm runtime (issue 6, 3(b)(c)), in headless Chromium:
//   node tests/browser/run.mjs --bundle DIR --omakase BIN
// - recommendations for a fixed set of sessions equal `omakase recommend --json` (same ids, scores
//   within tolerance), once on WebGPU (SwiftShader here) and once with WebGPU disabled (wasm-simd);
// - a session of unknown items, a tampered shard (refused), a missing shard (a clear error);
// - the CPU fallback after a lost GPU device; a product added at run time; Cache API reuse;
//   progress events; no request carrying the session.
// - new products embedded in the worker against `omakase embed --quantized`: words only, and with a
//   picture (a committed public-domain photo, tests/fixtures/) when the bundle has an image
//   encoder; on a bundle without one (a text-only catalogue, e.g. the ML-100K build.sh fetches when
//   ../shared is absent) picture bytes are refused (NoEncoders) and an image URL is not read.
// Exit status 0 when every check passes, 1 otherwise (each failure printed).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch, openPage } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || !process.argv[i + 1]) throw new Error(`usage: node run.mjs --bundle DIR --omakase BIN (missing ${name})`);
  return process.argv[i + 1];
}

const bundle = path.resolve(arg('--bundle'));
const omakase = path.resolve(arg('--omakase'));
const verbose = process.argv.includes('--verbose');
const K = 10;
// Scores: wasm-simd runs the same kernels as native (bit-identical by the kernels' contract; the
// tower's f32 math may round differently); the GPU sums in another order and may run the tower.
const TOLERANCE = { 'wasm-simd': 1e-4, 'webgpu-f32': 2e-3, 'webgpu-f16': 2e-3 };

let failures = 0;
function check(name, ok, detail = '') {
  if (ok) console.log(`ok    ${name}`);
  else {
    failures++;
    console.log(`FAIL  ${name}${detail ? `: ${detail}` : ''}`);
  }
}

// The fixed sessions: item ids picked by position in items.json (any bundle works).
const ids = JSON.parse(fs.readFileSync(path.join(bundle, 'items.json'), 'utf8')).map((m) => m.id);
const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
const at = (i) => ids[Math.min(ids.length - 1, Math.floor(i))];
const n = ids.length;
const sessions = [
  [at(0)],
  [at(1), at(2), at(3)],
  [at(n / 2), at(n / 3), at(n / 4), at(n / 5), at(n / 6)],
  Array.from({ length: 30 }, (_, i) => at((i * 37) % n)), // longer than max_len: the last ones count
  [at(n - 1), at(n - 2)],
];
const mixedSession = ['no-such-item-a', at(7), 'no-such-item-b', at(11)];

function native(session) {
  const out = execFileSync(omakase, ['recommend', '--bundle', bundle, '--session', session.join(','), '--k', String(K), '--json'], { encoding: 'utf8' });
  const json = JSON.parse(out);
  return { ids: json.recommendations.map((r) => r.id), scores: json.recommendations.map((r) => r.score), unknown: json.unknown };
}

// A product the bundle does not hold, embedded in the worker: its vector against native `omakase embed
// --quantized` (the same Q8_0 encoders), then the failures a page can meet.
const NEW_PRODUCT = {
  id: 'browser-test-new',
  title: 'Harbour Lights',
  description: 'A retired codebreaker decodes a radio signal from a ship lost at sea forty years ago.',
  year: 2026,
  genres: ['Drama', 'Mystery'],
};

// The picture for new-product checks: a photo committed with the tests (public domain, see
// tests/fixtures/efficientnet-lite0/README.md), not a dataset poster (a text-only dataset has none).
const PHOTO = path.resolve(repo, 'tests/fixtures/efficientnet-lite0/photos/rocket.jpg');
// Whether the bundle's model reads pictures (its encoders section has an image encoder).
const readsPictures = Boolean(manifest.encoders && manifest.encoders.image);

function nativeEmbed(product, image = null) {
  const metadata = JSON.stringify({ year: product.year, genres: product.genres });
  const out = execFileSync(omakase, ['embed', '--bundle', bundle, '--title', product.title, '--description', product.description,
    ...(image ? ['--image', image] : []), '--metadata', metadata, '--quantized', '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return JSON.parse(out);
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return a.length === b.length && a.length > 0 ? ab / Math.sqrt(aa * bb) : -1;
}

async function newProducts(page) {
  if (!manifest.encoders) {
    check('new products: the test bundle has encoders (export --encoders)', false, 'manifest has no encoders section');
    return;
  }
  console.log(`      bundle encoders: text ${manifest.encoders.text.path}, image ${manifest.encoders.image ? manifest.encoders.image.path : 'none (the model reads no pictures)'}`);
  const native = nativeEmbed(NEW_PRODUCT);
  const got = await page.evaluate(async (product) => {
    const c = window.client;
    await c.load('/bundle/manifest.json', { backend: 'wasm' });
    const added = await c.addProduct(product);
    const recs = await c.recommend([product.id], 10);
    const again = await c.addProduct(product).then(() => null, (e) => e.kind);
    const garbage = await c.addProduct({ ...product, id: 'browser-test-garbage' }, new Uint8Array([1, 2, 3, 4]).buffer).then(() => null, (e) => ({ kind: e.kind, message: e.message }));
    const noTitle = await c.addProduct({ id: 'browser-test-empty', title: ' ' }).then(() => null, (e) => e.kind);
    return { text: added.text, tokens: added.tokens, hasImage: added.hasImage, vector: Array.from(added.vector), recs: recs.ids, again, garbage, noTitle };
  }, NEW_PRODUCT);
  const cos = cosine(got.vector, native.vector);
  console.log(`      new product: ${got.tokens} tokens, "${got.text}"`);
  check('new product: the worker composes the same text as native omakase embed', got.text === native.text, `${got.text} | ${native.text}`);
  check(`new product: vector vs native (same Q8_0 encoders): cosine ${cos.toFixed(6)} >= 0.999`, cos >= 0.999);
  check('new product: recommendations from a session of only the new product', got.recs.length === 10 && !got.recs.includes(NEW_PRODUCT.id), got.recs.join(' '));
  check('new product: adding the same id twice is refused (BadArgument)', got.again === 'BadArgument', String(got.again));
  check('new product: words only, no image features', got.hasImage === false, String(got.hasImage));
  if (readsPictures) {
    check('new product: bytes that are no picture are refused (Image)', got.garbage && got.garbage.kind === 'Image', JSON.stringify(got.garbage));
  } else {
    check('new product, bundle without an image encoder: any picture bytes are refused (NoEncoders)', got.garbage && got.garbage.kind === 'NoEncoders', JSON.stringify(got.garbage));
  }
  check('new product: no title and no description is refused (BadArgument)', got.noTitle === 'BadArgument', String(got.noTitle));
  await newProductWithPhoto(page, native, got.vector);
  // The text encoder's layers on WebGPU (SwiftShader here; "auto" would pass a CPU rasteriser over).
  const onGpu = await page.evaluate(async (product) => {
    const c = window.client;
    await c.load('/bundle/manifest.json', { backend: 'wasm' });
    const added = await c.addProduct({ ...product, id: 'browser-test-gpu' }, null, { textBackend: 'webgpu' });
    return { vector: Array.from(added.vector), backend: added.encoderStats.textBackend, note: added.encoderStats.textBackendNote };
  }, NEW_PRODUCT);
  if (onGpu.backend === 'webgpu') {
    const cosGpu = cosine(onGpu.vector, native.vector);
    check(`new product, text encoder on WebGPU (${onGpu.note}): vector vs native cosine ${cosGpu.toFixed(6)} >= 0.999`, cosGpu >= 0.999);
  } else {
    check('new product: textBackend "webgpu" runs on WebGPU when the browser has an adapter', false, `${onGpu.backend}: ${onGpu.note}`);
  }
  for (const [name, kind, file] of [['tampered-encoder', 'Checksum', manifest.encoders.text.path], ['no-encoders', 'NoEncoders', 'manifest.json']]) {
    const error = await page.evaluate(async (name) => {
      const c = window.client;
      await c.load(`/bundles/${name}/manifest.json`, { backend: 'wasm', cache: false });
      return c.addProduct({ id: 'x-new', title: 'A film' }, null, { cache: false }).then(() => null, (e) => ({ name: e.name, kind: e.kind, file: e.file, message: e.message }));
    }, name);
    console.log(`      ${name}: ${error && error.message}`);
    check(`new product on the ${name} bundle: refused with ${kind} naming ${file}`, error && error.kind === kind && error.file === file, JSON.stringify(error));
  }
}

// A product with a picture (the committed photo). With an image encoder: the worker reads the picture
// from bytes and from the product's image URL, and both vectors equal native `omakase embed --image
// --quantized`. Without one: the photo's bytes are refused (NoEncoders, as native embed refuses
// --image), and an image URL (a card's picture to the page) is not read: the vector is the words'.
async function newProductWithPhoto(page, textOnly, browserTextOnly) {
  if (!fs.existsSync(PHOTO)) {
    check(`new product with a picture: the photo ${path.relative(repo, PHOTO)} is there`, false, 'missing');
    return;
  }
  const product = { ...NEW_PRODUCT, id: 'browser-test-photo' };
  const got = await page.evaluate(async (product) => {
    const c = window.client;
    await c.load('/bundle/manifest.json', { backend: 'wasm' });
    const bytes = await (await fetch('/fixtures/rocket.jpg')).arrayBuffer();
    const fromBytes = await c.addProduct(product, bytes).then(
      (a) => ({ hasImage: a.hasImage, vector: Array.from(a.vector), imageMs: a.timings.imageMs, backend: a.encoderStats.imageBackend }),
      (e) => ({ error: { kind: e.kind, message: e.message } }));
    const fromUrl = await c.addProduct({ ...product, id: `${product.id}-url`, image: '/fixtures/rocket.jpg' }).then(
      (a) => ({ hasImage: a.hasImage, vector: Array.from(a.vector) }),
      (e) => ({ error: { kind: e.kind, message: e.message } }));
    // The image encoder's network on WebGPU (SwiftShader here; "auto" above passes a CPU rasteriser over).
    const again = await (await fetch('/fixtures/rocket.jpg')).arrayBuffer();
    const onGpu = await c.addProduct({ ...product, id: `${product.id}-gpu` }, again, { imageBackend: 'webgpu' }).then(
      (a) => ({ vector: Array.from(a.vector), imageMs: a.timings.imageMs, backend: a.encoderStats.imageBackend, note: a.encoderStats.imageBackendNote }),
      (e) => ({ error: { kind: e.kind, message: e.message } }));
    return { fromBytes, fromUrl, onGpu };
  }, product);
  if (readsPictures) {
    const native = nativeEmbed(product, PHOTO);
    const cosBytes = got.fromBytes.vector ? cosine(got.fromBytes.vector, native.vector) : -1;
    const cosUrl = got.fromUrl.vector ? cosine(got.fromUrl.vector, native.vector) : -1;
    const cosText = cosine(native.vector, textOnly.vector);
    console.log(`      new product with ${path.basename(PHOTO)}: image encoder ${got.fromBytes.imageMs?.toFixed(0)} ms; words-only vs with picture cosine ${cosText.toFixed(4)}`);
    check(`new product with a picture (bytes): image features used, vector vs native embed --image cosine ${cosBytes.toFixed(6)} >= 0.999`,
      got.fromBytes.hasImage === true && cosBytes >= 0.999, JSON.stringify(got.fromBytes.error || { hasImage: got.fromBytes.hasImage }));
    check(`new product with a picture (image URL fetched by the worker): vector vs native cosine ${cosUrl.toFixed(6)} >= 0.999`,
      got.fromUrl.hasImage === true && cosUrl >= 0.999, JSON.stringify(got.fromUrl.error || { hasImage: got.fromUrl.hasImage }));
    check('new product with a picture: imageBackend "auto" keeps the image encoder off a CPU rasteriser (wasm-simd)',
      got.fromBytes.backend === 'wasm-simd', String(got.fromBytes.backend));
    if (got.onGpu.backend === 'webgpu') {
      const cosGpu = cosine(got.onGpu.vector, native.vector);
      console.log(`      image encoder on WebGPU (${got.onGpu.note}): ${got.onGpu.imageMs?.toFixed(0)} ms (a CPU rasteriser: no performance reference)`);
      check(`new product with a picture, image encoder on WebGPU: vector vs native embed --image cosine ${cosGpu.toFixed(6)} >= 0.999`, cosGpu >= 0.999);
    } else {
      check('new product with a picture: imageBackend "webgpu" runs on WebGPU when the browser has an adapter', false, JSON.stringify(got.onGpu));
    }
  } else {
    check('new product with a picture, bundle without an image encoder: the photo\'s bytes are refused (NoEncoders)',
      got.fromBytes.error && got.fromBytes.error.kind === 'NoEncoders', JSON.stringify(got.fromBytes.error || { hasImage: got.fromBytes.hasImage }));
    let refused = null;
    try {
      execFileSync(omakase, ['embed', '--bundle', bundle, '--title', product.title, '--image', PHOTO, '--quantized', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      refused = { status: e.status, message: String(e.stderr || '').trim() };
    }
    console.log(`      native embed --image: ${refused && refused.message}`);
    check('native omakase embed --image on this bundle is refused too (exit 2)', refused && refused.status === 2, JSON.stringify(refused));
    // The same words as the first new product, on the same encoders: the same vector.
    const cosUrl = got.fromUrl.vector ? cosine(got.fromUrl.vector, browserTextOnly) : -1;
    check(`new product with an image URL, bundle without an image encoder: not read (hasImage false), the words-only vector (cosine ${cosUrl.toFixed(6)})`,
      got.fromUrl.hasImage === false && cosUrl >= 0.999999, JSON.stringify(got.fromUrl.error || { hasImage: got.fromUrl.hasImage }));
    const fetched = server.requests.filter((u) => u.startsWith('/fixtures/'));
    check('the image URL was not fetched by the worker (only the page\'s own fetch of the bytes)', fetched.length === 1, fetched.join(' '));
  }
}

function compare(label, got, want, tolerance) {
  const sameIds = JSON.stringify(got.ids) === JSON.stringify(want.ids);
  check(`${label}: same ids as native`, sameIds, sameIds ? '' : `\n      got  ${got.ids.join(' ')}\n      want ${want.ids.join(' ')}`);
  const worst = Math.max(...want.scores.map((s, i) => Math.abs(s - got.scores[i])));
  check(`${label}: scores within ${tolerance}`, sameIds && worst <= tolerance, `largest difference ${worst}`);
}

// Bundles the server offers: the real one, one with a flipped byte in a shard, one without a shard,
// one with a flipped byte in the text encoder, one exported without encoders. (Encoder files are
// linked, not copied, where they stay intact: 31 MB each.)
function brokenBundles() {
  const shard = manifest.shards[0].file.path;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-browser-'));
  const encoderFiles = new Set(manifest.encoders ? [manifest.encoders.text.path, manifest.encoders.image?.path].filter(Boolean) : []);
  for (const name of ['tampered', 'missing', 'tampered-encoder', 'no-encoders']) {
    fs.mkdirSync(path.join(root, name));
    for (const f of fs.readdirSync(bundle)) {
      if (encoderFiles.has(f)) fs.symlinkSync(path.join(bundle, f), path.join(root, name, f));
      else fs.copyFileSync(path.join(bundle, f), path.join(root, name, f));
    }
  }
  if (manifest.encoders) {
    const text = path.join(root, 'tampered-encoder', manifest.encoders.text.path);
    const copy = Buffer.from(fs.readFileSync(text));
    copy[copy.length >> 1] ^= 0x01;
    fs.rmSync(text);
    fs.writeFileSync(text, copy);
  }
  const stripped = { ...manifest };
  delete stripped.encoders;
  fs.writeFileSync(path.join(root, 'no-encoders', 'manifest.json'), JSON.stringify(stripped, null, 2));
  const tampered = path.join(root, 'tampered', shard);
  const bytes = fs.readFileSync(tampered);
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(tampered, bytes);
  fs.rmSync(path.join(root, 'missing', shard));
  return { root, shard };
}

let server = null; // the static file server (its request log)

async function main() {
  const expected = sessions.map(native);
  const expectedMixed = native(mixedSession);
  check('native: mixed session reports its unknown ids', expectedMixed.unknown.length === 2);
  const broken = brokenBundles();
  server = await serve([
    ['/', path.join(repo, 'www')],
    ['/pkg/', path.join(repo, 'pkg')],
    ['/test/', path.join(here, 'pages')],
    ['/bundle/', bundle],
    ['/bundles/', broken.root],
    ['/fixtures/', path.dirname(PHOTO)],
  ]);
  const browser = await launch();
  try {
    const { page } = await openPage(browser, `${server.url}/test/harness.html`, verbose ? console.log : () => {});
    await page.waitForFunction(() => window.harnessReady === true);
    await page.evaluate(async () => {
      window.client = await window.Omakase.start();
    });

    /** @type {Record<string, string>} the note of each explicit backend's load */
    const notes = {};
    for (const backend of ['webgpu', 'wasm']) {
      const info = await page.evaluate(async (backend) => {
        const events = [];
        const info = await window.client.load('/bundle/manifest.json', { backend, towerOnGpu: true, onProgress: (p) => events.push(p) });
        return { ...info, events };
      }, backend);
      console.log(`      ${backend}: ${info.backend} (${info.note}); ${info.itemCount} items, load ${info.loadMs.toFixed(0)} ms, ${info.stats.downloaded} B downloaded of ${info.stats.bundle} B`);
      notes[backend] = info.note;
      const expectedName = backend === 'wasm' ? /^wasm-simd$/ : /^webgpu-f(16|32)$/;
      check(`${backend}: backend is ${expectedName}`, expectedName.test(info.backend), info.note);
      check(`${backend}: chosen by preference, unmeasured`, info.choice.reason === 'preference' && info.choice.cpuCalls + info.choice.gpuCalls === 0, JSON.stringify(info.choice));
      if (backend === 'webgpu') {
        const last = info.events[info.events.length - 1];
        check('progress: events reach the total bundle bytes', info.events.length > 0 && last.loaded === last.total && last.total === info.stats.bundle,
          JSON.stringify(last));
        check('progress: loaded never decreases', info.events.every((e, i) => i === 0 || e.loaded >= info.events[i - 1].loaded));
      } else {
        check('cache: a second load downloads only the manifest', info.stats.downloaded < 4096, `${info.stats.downloaded} B`);
      }
      const tolerance = TOLERANCE[info.backend] ?? 2e-3;
      for (const [i, session] of sessions.entries()) {
        const got = await page.evaluate(async ([s, k]) => {
          const r = await window.client.recommend(s, k);
          return { ids: r.ids, scores: Array.from(r.scores), backend: r.backend, explained: r.explanations.sessionIds.every((id) => s.includes(id)) };
        }, [session, K]);
        compare(`${backend}: session ${i} (${session.length} items)`, got, expected[i], tolerance);
        check(`${backend}: session ${i} explanations name session items`, got.explained);
      }
      const mixed = await page.evaluate(async ([s, k]) => {
        const r = await window.client.recommend(s, k);
        return { ids: r.ids, scores: Array.from(r.scores), unknown: r.unknown };
      }, [mixedSession, K]);
      compare(`${backend}: session with unknown ids`, mixed, expectedMixed, tolerance);
      check(`${backend}: unknown ids reported`, JSON.stringify(mixed.unknown) === JSON.stringify(['no-such-item-a', 'no-such-item-b']), JSON.stringify(mixed.unknown));
      const unknownOnly = await page.evaluate(async () => {
        try {
          await window.client.recommend(['no-such-item-a', 'no-such-item-b'], 10);
          return null;
        } catch (e) {
          return { name: e.name, kind: e.kind, message: e.message };
        }
      });
      check(`${backend}: a session of unknown items is refused (EmptySession)`, unknownOnly && unknownOnly.name === 'OmakaseError' && unknownOnly.kind === 'EmptySession' && unknownOnly.message.includes('no-such-item-a'),
        JSON.stringify(unknownOnly));
      // A product added at run time, with the session's own user vector: it must come first.
      const added = await page.evaluate(async (s) => {
        const v = await window.client.userVector(s);
        const row = await window.client.addItem('new-product', v, { title: '<script>x</script>' });
        const r = await window.client.recommend(s, 3);
        return { row, first: r.ids[0], title: r.items[0].title, backend: r.backend };
      }, sessions[1]);
      check(`${backend}: an added product is recommended (${added.backend})`, added.row === n && added.first === 'new-product' && added.title === '<script>x</script>', JSON.stringify(added));
      // A product known only by its frozen features: the item tower is downloaded on first use.
      const towerBefore = server.requests.filter((u) => u.endsWith('/item_tower.gguf')).length;
      const featured = await page.evaluate(async ([textDim, imageDim]) => {
        const text = new Float32Array(textDim).map((_, i) => Math.sin(i));
        const image = new Float32Array(imageDim).map((_, i) => 0.5 * Math.cos(i));
        const row = await window.client.addItemFeatures('new-by-features', { text, image }, { title: 'made in the browser' });
        let again = null;
        try {
          await window.client.addItemFeatures('new-by-features', { text: new Float32Array(textDim) });
        } catch (e) {
          again = e.kind;
        }
        const r = await window.client.recommend(['new-by-features'], 5);
        return { row, again, meta: await window.client.item(row), ids: r.ids, because: r.explanations.sessionIds };
      }, [manifest.model.text_dim, manifest.model.image_dim]);
      const towerAfter = server.requests.filter((u) => u.endsWith('/item_tower.gguf')).length;
      check(`${backend}: a product added by its features gets the next row and is recommendable`,
        featured.row === n + 1 && featured.meta.title === 'made in the browser' && featured.ids.length === 5 && featured.because.every((id) => id === 'new-by-features'),
        JSON.stringify(featured));
      check(`${backend}: adding the same id twice is refused (BadArgument)`, featured.again === 'BadArgument', String(featured.again));
      if (backend === 'webgpu') check('item tower: downloaded only when a product is added by features', towerBefore === 0 && towerAfter === 1, `${towerBefore} then ${towerAfter}`);
      if (backend === 'webgpu' && info.backend.startsWith('webgpu')) {
        const fallback = await page.evaluate(async ([s, k]) => {
          await window.client.load('/bundle/manifest.json', { backend: 'webgpu', towerOnGpu: true });
          await window.client.simulateDeviceLoss();
          const r = await window.client.recommend(s, k);
          const after = await window.client.describe();
          return { ids: r.ids, scores: Array.from(r.scores), backend: r.backend, note: after.note };
        }, [sessions[2], K]);
        check('device lost: the call finishes on wasm-simd', fallback.backend === 'wasm-simd', `${fallback.backend}: ${fallback.note}`);
        compare('device lost: CPU answer', fallback, expected[2], TOLERANCE['wasm-simd']);
      }
    }

    // "auto" where the adapter is a CPU rasteriser (SwiftShader here): wasm-simd, nothing measured; on
    // a real GPU both backends are measured and the faster kept.
    const auto = await page.evaluate(async ([s, k]) => {
      const info = await window.client.load('/bundle/manifest.json', { backend: 'auto' });
      const r = await window.client.recommend(s, k);
      return { backend: info.backend, note: info.note, choice: info.choice, answered: r.backend, ids: r.ids, scores: Array.from(r.scores) };
    }, [sessions[0], K]);
    console.log(`      auto: ${auto.backend} (${auto.choice.reason}: ${auto.note})`);
    if (/swiftshader|llvmpipe|lavapipe|Cpu/i.test(notes.webgpu || '')) {
      check('auto on a software adapter: wasm-simd, unmeasured', auto.backend === 'wasm-simd' && auto.answered === 'wasm-simd' && auto.choice.reason === 'software adapter'
        && auto.choice.cpuMs === null && auto.choice.gpuMs === null && auto.choice.cpuCalls + auto.choice.gpuCalls === 0, JSON.stringify(auto.choice));
    } else {
      check('auto on a hardware adapter: measured', auto.choice.reason === 'measured' || auto.choice.reason === 'remembered', JSON.stringify(auto.choice));
    }
    compare('auto: session 0', auto, expected[0], TOLERANCE[auto.backend] ?? 2e-3);

    for (const [name, kind] of [['tampered', 'Checksum'], ['missing', 'MissingFile']]) {
      const error = await page.evaluate(async (name) => {
        try {
          await window.client.load(`/bundles/${name}/manifest.json`, { backend: 'wasm', cache: false });
          return null;
        } catch (e) {
          return { name: e.name, kind: e.kind, file: e.file, message: e.message };
        }
      }, name);
      console.log(`      ${name}: ${error && error.message}`);
      check(`${name} shard: refused with ${kind} naming ${broken.shard}`,
        error && error.name === 'OmakaseError' && error.kind === kind && error.file === broken.shard && error.message.includes(broken.shard), JSON.stringify(error));
    }

    await newProducts(page);

    const badOptions = await page.evaluate(async () => {
      try {
        await window.client.load('/bundle/manifest.json', { backend: 'cuda' });
        return null;
      } catch (e) {
        return { kind: e.kind, message: e.message };
      }
    });
    check('options: an unknown backend is refused (BadArgument)', badOptions && badOptions.kind === 'BadArgument', JSON.stringify(badOptions));

    // Every request is a plain file path (bundle files, the module, pages): nothing to carry a session in.
    const leaks = server.requests.filter((u) => u.includes('?') || u.includes('#'));
    check(`privacy: none of ${server.requests.length} requests carries a query`, leaks.length === 0, leaks.join(' '));
    // A browser without WebGPU: "auto" finds no adapter and runs on wasm-simd, with the same answers;
    // an ordinary state, so one debug line on the console (the worker's), no warning.
    const plain = await launch({ webgpu: false });
    try {
      const { page: noGpu } = await openPage(plain, `${server.url}/test/harness.html`, verbose ? console.log : () => {});
      /** @type {{ type: string, text: string }[]} */
      const ours = [];
      noGpu.on('console', (m) => { if (m.text().startsWith('omakase:')) ours.push({ type: m.type(), text: m.text() }); });
      await noGpu.waitForFunction(() => window.harnessReady === true);
      const got = await noGpu.evaluate(async ([s, k]) => {
        const client = await window.Omakase.start();
        const info = await client.load('/bundle/manifest.json');
        const r = await client.recommend(s, k);
        return { backend: info.backend, note: info.note, reason: info.choice.reason, ids: r.ids, scores: Array.from(r.scores) };
      }, [sessions[1], K]);
      check('no WebGPU in the browser: "auto" falls back to wasm-simd', got.backend === 'wasm-simd' && got.reason === 'no adapter', `${got.backend} (${got.reason}): ${got.note}`);
      check('no WebGPU in the browser: one debug line, no warning', ours.length === 1 && ours[0].type === 'debug', JSON.stringify(ours));
      compare('no WebGPU in the browser: session 1', got, expected[1], TOLERANCE['wasm-simd']);
    } finally {
      await plain.close();
    }
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(broken.root, { recursive: true, force: true });
  }
  console.log(failures === 0 ? 'browser tests: all passed' : `browser tests: ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
