// The import-map page's script: the element and the runtime client by their package names.
import { OmakaseRecs, omakase } from 'omakase-recs';
import { Omakase } from 'omakase-recs/runtime';

const page = /** @type {any} */ (window);
page.__events = [];
document.addEventListener('omakase-error', (e) => page.__events.push({ type: 'omakase-error', detail: /** @type {CustomEvent} */ (e).detail }));
page.__exports = { element: typeof OmakaseRecs, forget: typeof omakase.forget, client: typeof Omakase.start };
const settings = new URLSearchParams(location.hash.slice(1));
const recs = document.createElement('omakase-recs');
for (const [name, value] of settings) if (name.startsWith('a.')) recs.setAttribute(name.slice(2), value);
const id = new URLSearchParams(location.search).get('id');
if (id) recs.setAttribute('product', id);
document.getElementById('recs').append(recs);
