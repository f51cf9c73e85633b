// The test shop's page script (tests/browser/hosting.mjs; tests/browser/pages/shop.html). Settings
// come in the fragment, as URLSearchParams: `widget` the element's script URL (default this
// sub-path's omakase/widget/omakase-recs.js), `a.NAME` an attribute of the element, `restyle` a card
// template, German strings and itemDetails, `slot` a slotted heading. The product is the page's
// ?id=. Every omakase-* event's detail and every CSP violation is kept for the test to read.

const settings = new URLSearchParams(location.hash.slice(1));
const page = /** @type {any} */ (window);
page.__events = [];
page.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => page.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
for (const type of ['omakase-impression', 'omakase-click', 'omakase-update', 'omakase-new-product', 'omakase-error']) {
  document.addEventListener(type, (e) => page.__events.push({ type, detail: JSON.parse(JSON.stringify(/** @type {CustomEvent} */ (e).detail)) }));
}

const widget = settings.get('widget') || new URL('omakase/widget/omakase-recs.js', location.href).href;
page.__module = await import(widget);
const recs = document.createElement('omakase-recs');
const id = new URLSearchParams(location.search).get('id');
if (id) recs.setAttribute('product', id);
document.getElementById('title').textContent = `Product ${id || '(none)'}`;
for (const [name, value] of settings) if (name.startsWith('a.')) recs.setAttribute(name.slice(2), value);
if (settings.get('slot')) {
  const heading = document.createElement('h3');
  heading.slot = 'heading';
  heading.id = 'slotted';
  heading.textContent = 'Our picks';
  recs.append(heading);
}
if (settings.get('restyle')) {
  recs.classList.add('restyled');
  const template = document.createElement('template');
  template.dataset.card = '';
  /** A card slot: an element filled from `field`, styled through the part of the same name. */
  const slot = (tag, field) => {
    const element = document.createElement(tag);
    element.dataset.field = field;
    element.setAttribute('part', field);
    return element;
  };
  const [img, title, price, cta] = [slot('img', 'image'), slot('strong', 'title'), slot('span', 'price'), slot('span', 'cta')];
  template.content.append(img, title, price, cta);
  recs.append(template);
  recs.strings = { heading: 'Für Sie ausgewählt', subheading: 'auf diesem Gerät berechnet', why: 'warum?', because: 'Weil Sie {title} angesehen haben ({similarity}).' };
  recs.itemDetails = (item) => ({ price: `€${(item.position + 0.99).toFixed(2)}`, cta: 'Ansehen' });
}
document.getElementById('recs').append(recs);
page.__ready = true;
