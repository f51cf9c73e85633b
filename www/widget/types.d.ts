// The public types of <omakase-recs>: its attributes, properties, events and strings. The element
// (www/widget/omakase-recs.js) takes its types from here, so tsc checks the implementation against
// what a shop's TypeScript sees (scripts/typecheck-js.sh; the npm package ships this file).

import type { BackendChoice, Recommendations } from '../../pkg/omakase.js';
import type { ProductFields } from '../../pkg/encoders/omakase_encoders.js';

export type Backend = 'auto' | 'webgpu' | 'wasm';

/** Which list the element shows (docs/rules.md § Scenarios). */
export type Scenario = 'for-you' | 'similar' | 'popular' | 'recently-viewed';

/** Which list a visitor sees: Omakase's recommendations, or the shop's control list (an experiment). */
export type Variant = 'omakase' | 'control';

/** The element's configuration, read from its attributes (www/widget/attributes.js). */
export interface Config {
  /** `bundle`: URL of the bundle's manifest.json (required). */
  bundle: string | null;
  /** `k`: how many recommendations (default 10, at most 50). */
  k: number;
  /** `product`: the product on this page: counted as a view on this device, never recommended here. */
  product: string | null;
  /** `backend`: "auto" (default), "webgpu" or "wasm". */
  backend: Backend;
  /** `base`: the folder holding widget/, runtime/ and pkg/ (default: the folder above this script's widget/). */
  base: string | null;
  /** `worker`: the worker script, on the page's origin (default: `base` + widget/worker.js). */
  worker: string | null;
  /** `link-template`: card link for items without a link in the bundle, "{id}" replaced. */
  linkTemplate: string | null;
  /** `heading`: the heading's text (default: strings.heading; "" for none). */
  heading: string | null;
  /** `heading-level`: 1 to 6 (default 2). */
  headingLevel: number;
  /** `experiment`: a name; visitors are split into stable local buckets, shown on the events. */
  experiment: string | null;
  /** `control-share`: the fraction of visitors in the control bucket (default 0.5). */
  controlShare: number;
  /** `control-items`: the ids the control bucket shows (e.g. the shop's best sellers), spaces or commas. */
  controlItems: string[];
  /** `scenario`: "for-you" (default), "similar", "popular" or "recently-viewed"; another value is
   *  reported ("omakase-error", kind "Rule", attribute "scenario") and "for-you" shown. */
  scenario: string;
  /** `filter`: clauses that must all hold, e.g. "genres=Comedy|Drama; price=10..50; in_stock". */
  filter: string | null;
  /** `boost`: weighted clauses, e.g. "+0.1 on_sale; -0.05 genres=Horror". */
  boost: string | null;
  /** `exclude`: ids never listed (the basket, purchases), spaces or commas. */
  exclude: string | null;
  /** `pin`: "ID@POSITION" entries (positions from 1), spaces or commas. */
  pin: string | null;
  /** `diversity`: "FIELD:N", at most N items per value of FIELD. */
  diversity: string | null;
  /** `facts`: run-time facts replacing the bundle's values: a JSON object
   *  ({"in_stock": {"12": false}}) or the URL of a JSON file holding one. */
  facts: string | null;
  /** `embed-new`: embed this page's product on the visitor's device (data-* attributes) when the
   *  bundle and its delta shards do not hold it, downloading the encoders (~25 MB). Off by default:
   *  a shop publishes new products as a delta shard (`omakase delta`). */
  embedNew: boolean;
}

/** The attributes as written in markup (for frameworks' typed templates). */
export interface OmakaseRecsAttributes {
  bundle: string;
  k?: string | number;
  product?: string;
  backend?: Backend;
  base?: string;
  worker?: string;
  'link-template'?: string;
  heading?: string;
  'heading-level'?: string | number;
  experiment?: string;
  'control-share'?: string | number;
  'control-items'?: string;
  scenario?: Scenario;
  filter?: string;
  boost?: string;
  exclude?: string;
  pin?: string;
  diversity?: string;
  facts?: string;
  'embed-new'?: '' | 'true' | 'false' | boolean;
  'data-title'?: string;
  'data-description'?: string;
  'data-image'?: string;
  'data-metadata'?: string;
}

/** The element's words, every one replaceable (`element.strings = { ... }`, or page-wide
 *  `OmakaseRecs.strings`). `{name}` marks a value filled in. */
export interface Strings {
  heading: string;
  subheading: string;
  loading: string;
  listLabel: string;
  empty: string;
  emptyCatalogue: string;
  error: string;
  noBundle: string;
  why: string;
  /** "{title}": the viewed product (rendered in bold), "{similarity}": 0.00 to 1.00. */
  because: string;
  /** "{text}" and "{image}": percentages. */
  shareLabel: string;
  shareText: string;
  shareImage: string;
  noShare: string;
  /** A call to action inside each card (e.g. "View"); "" for none. */
  cta: string;
  /** The default heading of each scenario (the `heading` attribute replaces them). */
  headingSimilar: string;
  headingPopular: string;
  headingRecent: string;
  /** Said above a popular list shown instead of `for-you` (no history yet) or `similar` (a product
   *  the bundle does not hold). */
  fallbackNoHistory: string;
  fallbackUnknownProduct: string;
  /** A card's reason in a popular list, and in recently-viewed. */
  reasonPopular: string;
  reasonRecent: string;
  /** A card placed by a pin. */
  reasonPinned: string;
  /** "Because {title}" for `similar`: "{title}" the page's product, "{similarity}" 0.00 to 1.00. */
  becauseSimilar: string;
  /** A list the rules leave empty. */
  noMatch: string;
}

/** What the element knows of a recommended item when it asks the shop for details. */
export interface CardItem {
  id: string;
  title: string;
  /** The card's link (absolute), or null. */
  link: string | null;
  /** The picture's URL (absolute), or null. */
  image: string | null;
  /** 1-based position in the list. */
  position: number;
}

/** The shop's own fields of an item (price, a call to action...), shown as text: in the default card
 *  `price` and `cta`; in a card template every `[data-field=NAME]`. */
export type ItemDetails = Record<string, string | number | null | undefined>;
export type ItemDetailsHook = (item: CardItem) => ItemDetails | null | undefined | Promise<ItemDetails | null | undefined>;

/** Shared by the measurement events: which list, in which experiment bucket. */
export interface ListDetail {
  /** Unique per rendered list. */
  listId: string;
  /** The list's scenario as asked ("for-you", "similar", "popular", "recently-viewed"). */
  scenario: string;
  variant: Variant;
  /** The `experiment` attribute, or null. */
  experiment: string | null;
}

/** "omakase-impression": a rendered list came into view (once per list). */
export interface ImpressionDetail extends ListDetail {
  items: { itemId: string; position: number }[];
  count: number;
}

/** "omakase-click": a card's link was followed. */
export interface ClickDetail extends ListDetail {
  itemId: string;
  /** 1-based. */
  position: number;
  href: string | null;
}

/** "omakase-update": after each render. Counts only: no event carries the visitor's views. */
export interface UpdateDetail extends ListDetail {
  backend: string;
  /** Session → top-k, milliseconds (NaN for a control list). */
  ms: number;
  count: number;
  /** How many views this device holds (the views themselves stay in localStorage). */
  sessionLength: number;
  downloaded: number;
  bundleBytes: number;
  loadMs: number;
  note: string;
  /** How the backend was chosen at load. */
  choice: BackendChoice;
  /** The scenario that made the list ("popular" when `fallback` is set), and why it replaced the
   *  one asked for ("no-history", "unknown-product", "no-product"; null otherwise). */
  source: string;
  fallback: string | null;
}

/** "omakase-new-product": a product the bundle does not hold was embedded on this device. */
export interface NewProductDetail {
  id: string;
  tokens: number;
  hasImage: boolean;
  timings: { encoderLoadMs: number; textMs: number; imageMs: number | null; towerMs: number; totalMs: number };
  encoderStats: Record<string, unknown>;
}

/** "omakase-error": `kind` e.g. "Network", "Cors", "MissingFile", "Checksum", "Format", "WorkerOrigin",
 *  "Worker", "Module"; `product`: the page's product that could not be embedded; `file`: the bundle
 *  file at fault (a delta shard left out, or a streamed catalogue's partition, metadata or directory
 *  file refused by its sha256; the list still shown without it). */
export interface ErrorDetail {
  kind: string;
  message: string;
  /** Kind "Rule": the attribute at fault (scenario, filter, boost, exclude, pin, diversity, facts);
   *  the list is shown without it. */
  attribute?: string;
  product?: string;
  file?: string;
}

export interface OmakaseRecsEventMap {
  'omakase-impression': CustomEvent<ImpressionDetail>;
  'omakase-click': CustomEvent<ClickDetail>;
  'omakase-update': CustomEvent<UpdateDetail>;
  'omakase-new-product': CustomEvent<NewProductDetail>;
  'omakase-error': CustomEvent<ErrorDetail>;
}

/** A product the bundle does not hold, for `addProduct`. */
export type NewProduct = ProductFields & { id: string; image?: string; link?: string };

/** The element's public surface (besides its attributes). */
export interface OmakaseRecsElement extends HTMLElement {
  /** Replaces some of the element's words; the rest keep their defaults. */
  strings: Partial<Strings>;
  /** The shop's fields per item (price, call to action), or null. */
  itemDetails: ItemDetailsHook | null;
  /** The id of the list on show, or null. */
  readonly listId: string | null;
  /** This visitor's bucket. */
  readonly variant: Variant;
  refresh(): Promise<void>;
  addProduct(fields: NewProduct, picture?: ArrayBuffer | null): Promise<unknown>;
  recommendFor(session: string[], k?: number): Promise<Recommendations>;
  addEventListener<K extends keyof OmakaseRecsEventMap>(type: K, listener: (this: OmakaseRecsElement, ev: OmakaseRecsEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'omakase-recs': OmakaseRecsElement;
  }
  // The events bubble, so a listener on document (or any ancestor) receives them too.
  interface HTMLElementEventMap extends OmakaseRecsEventMap {}
  interface DocumentEventMap extends OmakaseRecsEventMap {}
}
