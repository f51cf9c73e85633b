// The element's styles and words. Styles are a constructable stylesheet adopted by each shadow root
// (no <style> element, no style attribute: a page under `style-src 'self'` allows them). A shop restyles
// the element from its own stylesheet with the custom properties below and ::part() selectors:
//
//   omakase-recs { --omakase-accent: #8a2be2; --omakase-card-min: 180px; }
//   omakase-recs::part(card) { border-radius: 0; }
//   omakase-recs::part(price) { font-weight: 700; }
//
// Custom properties: --omakase-font, --omakase-color, --omakase-muted, --omakase-accent,
// --omakase-focus, --omakase-card-bg, --omakase-card-radius, --omakase-card-shadow,
// --omakase-card-min, --omakase-gap, --omakase-image-ratio, --omakase-placeholder-bg,
// --omakase-state-bg, --omakase-error-color, --omakase-error-bg.
// Parts: header, heading, subheading, note (why a popular list stands in), list, card, link, image,
// placeholder, title, reason (Popular / Viewed / Featured), price, cta, why, why-summary, why-body,
// share, state, skeleton.

/** @typedef {import('./types.js').Strings} Strings */

const CSS = `
:host { display: block; font: var(--omakase-font, 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif); color: var(--omakase-color, #1f2328); }
:host([hidden]) { display: none; }
.head { display: flex; align-items: baseline; justify-content: space-between; flex-wrap: wrap; gap: .25rem 1rem; margin: 0 0 .75rem; }
.heading { font-size: 1.15rem; margin: 0; font-weight: 600; }
.sub { color: var(--omakase-muted, #59636e); font-size: .8rem; }
.grid { list-style: none; margin: 0; padding: 6px; display: grid; gap: var(--omakase-gap, 14px); grid-template-columns: repeat(auto-fill, minmax(var(--omakase-card-min, 140px), 1fr)); }
.card { background: var(--omakase-card-bg, #fff); border-radius: var(--omakase-card-radius, 10px); box-shadow: var(--omakase-card-shadow, 0 1px 3px rgba(0,0,0,.12)); display: flex; flex-direction: column; min-width: 0; }
.link { color: inherit; text-decoration: none; display: flex; flex-direction: column; flex: 1; border-radius: var(--omakase-card-radius, 10px); }
.link:focus-visible, summary:focus-visible { outline: 3px solid var(--omakase-focus, #0b63ce); outline-offset: 2px; }
.poster, .noimg { aspect-ratio: var(--omakase-image-ratio, 2 / 3); width: 100%; border-radius: var(--omakase-card-radius, 10px) var(--omakase-card-radius, 10px) 0 0; }
.poster { object-fit: cover; display: block; background: var(--omakase-placeholder-bg, linear-gradient(135deg, #e8e4dc, #d6d0c4)); }
.noimg { display: flex; align-items: center; justify-content: center; box-sizing: border-box; padding: 6px; text-align: center; color: #6b5f4b; background: var(--omakase-placeholder-bg, linear-gradient(135deg, #efe9dd, #dcd2bf)); font-weight: 600; font-size: .78rem; overflow: hidden; overflow-wrap: anywhere; }
.title { padding: 8px 8px 2px; font-weight: 600; font-size: .82rem; line-height: 1.3; overflow-wrap: break-word; hyphens: auto; }
.price { padding: 0 8px; font-size: .82rem; }
.note { margin: -.4rem 0 .75rem; color: var(--omakase-muted, #59636e); font-size: .8rem; }
.reason { margin: 4px 8px 0; align-self: flex-start; font-size: .7rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; color: var(--omakase-muted, #59636e); }
.cta { margin: 6px 8px 0; align-self: flex-start; color: var(--omakase-accent, #0b63ce); font-size: .8rem; font-weight: 600; }
details { padding: 4px 10px 8px; font-size: .78rem; color: var(--omakase-muted, #59636e); }
summary { cursor: pointer; color: var(--omakase-accent, #0b63ce); list-style: none; display: inline-block; padding: 2px 0; border-radius: 3px; }
summary::-webkit-details-marker { display: none; }
.why { margin-top: 4px; }
.bar { display: flex; height: 6px; border-radius: 3px; overflow: hidden; margin: 6px 0 2px; background: #eee; }
.bar .t { background: #2f81f7; } .bar .i { background: #f0883e; }
.legend { display: flex; justify-content: space-between; font-size: .72rem; }
.state { padding: 18px; border-radius: var(--omakase-card-radius, 10px); background: var(--omakase-state-bg, #f6f8fa); color: var(--omakase-muted, #59636e); margin: 0; }
.state.error { background: var(--omakase-error-bg, #fff1f0); color: var(--omakase-error-color, #a40e26); }
.skeleton { aspect-ratio: var(--omakase-image-ratio, 2 / 3); border-radius: var(--omakase-card-radius, 10px); background: linear-gradient(90deg, #eee 25%, #f6f6f6 50%, #eee 75%); background-size: 200% 100%; animation: shimmer 1.2s infinite; }
@keyframes shimmer { to { background-position: -200% 0; } }
@media (prefers-reduced-motion: reduce) { .skeleton { animation: none; } }
`;

// The share bar's widths in 5 % steps, as classes (w0 … w100): no style attribute is ever written.
const WIDTHS = Array.from({ length: 21 }, (_, i) => `.bar .w${i * 5} { width: ${i * 5}%; }`).join('\n');

/** The share bar's class for a percentage (0-100), in 5 % steps.
 *  @param {number} percent */
export function widthClass(percent) {
  return `w${Math.round(Math.min(100, Math.max(0, percent)) / 5) * 5}`;
}

/** @type {CSSStyleSheet | null} one sheet, shared by every element of the page */
let sheet = null;

/** The element's stylesheet (made once per page). */
export function styleSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS + WIDTHS);
  }
  return sheet;
}

/** The element's words in English; `OmakaseRecs.strings` (page-wide) and `element.strings` replace them.
 *  @type {Readonly<Strings>} */
export const STRINGS = Object.freeze({
  heading: 'Recommended for you',
  subheading: 'computed on this device',
  loading: 'Loading recommendations',
  listLabel: 'Recommended products',
  empty: 'Browse a few products and recommendations appear here. They are computed on this device.',
  emptyCatalogue: 'None of the products viewed here are in the catalogue yet.',
  error: 'Recommendations are unavailable right now.',
  noBundle: 'No bundle attribute: nothing to recommend from.',
  why: 'why?',
  because: 'Because you viewed {title} (similarity {similarity}).',
  shareLabel: '{text}% from the description, {image}% from the picture',
  shareText: 'text {text}%',
  shareImage: 'image {image}%',
  noShare: 'Similar overall (this catalogue has no separate text and image vectors).',
  cta: '',
  headingSimilar: 'Similar products',
  headingPopular: 'Popular right now',
  headingRecent: 'Recently viewed',
  fallbackNoHistory: 'Popular right now: browse a few products and picks of your own appear here.',
  fallbackUnknownProduct: 'Popular right now: this product is too new for similar picks.',
  reasonPopular: 'Popular',
  reasonRecent: 'Viewed',
  reasonPinned: 'Featured',
  becauseSimilar: 'Like {title} (similarity {similarity}).',
  noMatch: 'No product fits this list right now.',
});

/**
 * `template` with each `{name}` replaced by `values[name]` (unknown names left as they are).
 * @param {string} template
 * @param {Record<string, string | number>} values
 */
export function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
