// A shop's TypeScript against the installed npm package (scripts/typecheck-js.sh copies this file
// into a fresh folder where `npm install omakase-recs-*.tgz` ran, and runs tsc there): the element,
// its attributes, properties and events are typed, and misuse is a type error.
import { OmakaseRecs, omakase } from 'omakase-recs';
import type { ClickDetail, ImpressionDetail, OmakaseRecsAttributes, Strings, UpdateDetail } from 'omakase-recs/types';
import { Omakase } from 'omakase-recs/runtime';

const recs = document.createElement('omakase-recs');
recs.setAttribute('bundle', '/bundle/manifest.json');
const same = document.querySelector('omakase-recs');
if (same) void same.refresh();
const defined: typeof OmakaseRecs | undefined = customElements.get('omakase-recs') as typeof OmakaseRecs | undefined;
console.log(defined?.strings);

recs.addEventListener('omakase-click', (event) => {
  const detail: ClickDetail = event.detail;
  const position: number = detail.position;
  const id: string = detail.itemId;
  console.log(position, id, detail.listId, detail.variant);
});
document.addEventListener('omakase-impression', (event) => {
  const detail: ImpressionDetail = event.detail;
  for (const { itemId, position } of detail.items) console.log(itemId, position);
});
document.addEventListener('omakase-update', (event) => {
  const detail: UpdateDetail = event.detail;
  const views: number = detail.sessionLength;
  // @ts-expect-error no event carries the view history
  console.log(views, detail.session);
});

recs.strings = { heading: 'Für Sie', why: 'warum?' };
// @ts-expect-error an unknown string key
recs.strings = { headline: 'x' };
recs.itemDetails = (item) => ({ price: `€${item.position}.99`, cta: 'Ansehen' });
const variant: 'omakase' | 'control' = recs.variant;
const listId: string | null = recs.listId;

const attributes: OmakaseRecsAttributes = { bundle: '/bundle/manifest.json', k: 8, backend: 'wasm', experiment: 'recs-dec', 'control-items': '1 2 3' };
// @ts-expect-error backend is auto, webgpu or wasm
const wrong: OmakaseRecsAttributes = { bundle: '/b/manifest.json', backend: 'cuda' };
const words: Partial<Strings> = { because: 'Weil Sie {title} angesehen haben.' };

async function direct() {
  const client = await Omakase.start({ base: '/assets/omakase/' });
  const info = await client.load('/bundle/manifest.json', { backend: 'wasm' });
  const recommended = await client.recommend(['1', '7'], 10);
  const first: string | undefined = recommended.ids[0];
  console.log(info.backend, first, omakase.views().length);
}
console.log(variant, listId, attributes, wrong, words, direct);
