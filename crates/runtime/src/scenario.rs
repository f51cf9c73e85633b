//! Scenarios: which list an element shows (docs/rules.md § Scenarios), each under the same rules.
//!
//! - `for-you`: the visitor's views → sequence tower → user vector → the ruled scan (today's list);
//!   without a known view it is the `popular` list, and says so ([`Fallback::NoHistory`]).
//! - `similar`: the page's product → its vector as the query → its neighbours, no history needed;
//!   each explained by the text / image similarity of the pair. An unknown product gives `popular`.
//! - `popular`: the bundle's popularity (`popularity.json`, time-decayed at export) → the ruled top-K.
//! - `recently-viewed`: the visitor's views, latest first, minus the page's product; filters and
//!   exclusions apply (boosts, pins and diversity do not: the order is the visitor's own).
//!
//! Every list excludes the page's product; `for-you` also every viewed item. Rules
//! ([`CompiledRules`]) act inside the selection: filters and exclusions keep rows out before the
//! top-K, boosts change the score it ranks by, diversity caps a group, and pins put an id at a
//! position, the scan filling the other places (a pinned id the list would exclude — viewed, the
//! page's product, filtered out — or the catalogue does not hold is dropped and reported).

use serde::{Deserialize, Serialize};

use crate::engine::{Explanation, Runtime};
use crate::error::RuntimeError;
use crate::kernels::TopK;
use crate::rules::{CompiledRules, Facts, Rules};

/// The list an element shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    ForYou,
    Similar,
    Popular,
    RecentlyViewed,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [Scenario::ForYou, Scenario::Similar, Scenario::Popular, Scenario::RecentlyViewed];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::ForYou => "for-you",
            Scenario::Similar => "similar",
            Scenario::Popular => "popular",
            Scenario::RecentlyViewed => "recently-viewed",
        }
    }

    /// A scenario by name; an unknown name is a [`RuntimeError::Rule`] on attribute `scenario`.
    pub fn parse(name: &str) -> Result<Scenario, RuntimeError> {
        Scenario::ALL.into_iter().find(|s| s.as_str() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.as_str()).collect();
            RuntimeError::rule("scenario", format!("{name:?} is not one of {}", names.join(", ")))
        })
    }
}

/// Why a list is another scenario's than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// `for-you` without a viewed item the bundle knows: the popular list.
    NoHistory,
    /// `similar` for a product the bundle does not hold: the popular list.
    UnknownProduct,
    /// `similar` without a product: the popular list.
    NoProduct,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NoHistory => "no-history",
            Fallback::UnknownProduct => "unknown-product",
            Fallback::NoProduct => "no-product",
        }
    }
}

/// One list request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub scenario: Scenario,
    /// The visitor's views, oldest first (ids; unknown ones are reported, not fatal).
    pub session: &'a [String],
    /// The page's product, if the page shows one.
    pub product: Option<&'a str>,
    pub k: usize,
    pub rules: &'a CompiledRules,
}

/// One item of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListItem {
    pub row: u32,
    pub id: String,
    /// What the list ranks by: cosine (+ boosts) for `for-you` and `similar`, popularity in [0, 1]
    /// (+ boosts) for `popular`, 0 for `recently-viewed`.
    pub score: f32,
    /// Put at its place by a pin.
    pub pinned: bool,
    /// Why (`for-you`: the closest viewed item; `similar`: the page's product); `None` for
    /// `popular` and `recently-viewed`.
    pub explanation: Option<Explanation>,
}

/// A pin the list could not show, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedPin {
    pub id: String,
    pub reason: String,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    /// The scenario asked for.
    pub scenario: Scenario,
    /// The scenario that made the list (`popular` when `fallback` is set).
    pub source: Scenario,
    pub fallback: Option<Fallback>,
    pub items: Vec<ListItem>,
    /// Viewed ids the bundle does not know (ignored).
    pub unknown: Vec<String>,
    /// Rows the list was computed from: the views the sequence tower read, or the page's product.
    pub used: Vec<u32>,
    pub dropped_pins: Vec<DroppedPin>,
    /// Set when a list is empty for a reason other than the rules (e.g. a bundle without popularity).
    pub note: Option<String>,
}

impl Runtime {
    /// Parses nothing: compiles parsed `rules` (and `facts`) against this catalogue's columns.
    pub fn compile_rules(&self, rules: &Rules, facts: Option<&Facts>) -> Result<CompiledRules, RuntimeError> {
        CompiledRules::compile(rules, self.columns(), facts, self.item_count(), &|id| self.row_of(id))
    }

    /// The list `request` asks for (module docs). An empty history or an unknown product is an
    /// ordinary answer, never an error; errors are bad arguments (`k = 0`) only.
    pub fn answer(&self, request: &Request<'_>) -> Result<List, RuntimeError> {
        self.answer_scanning(request, &mut |unit, top| request.rules.scan(self.items(), unit, top))
    }

    /// [`Runtime::answer`] with `scan` finding the candidates of `for-you` and `similar`: it pushes
    /// rows scored for the unit-length query into the selection it is given, which carries the
    /// exclusions and the rules. [`Runtime::answer`] scans every row; an indexed bundle's search
    /// (`crate::index::recommend::answer`) scans the probed partitions, under the same rules.
    pub(crate) fn answer_scanning(
        &self,
        request: &Request<'_>,
        scan: &mut dyn FnMut(&[f32], &mut TopK<'_>),
    ) -> Result<List, RuntimeError> {
        if request.k == 0 {
            return Err(RuntimeError::argument("k", "must be at least 1"));
        }
        let (session, unknown) = self.resolve(request.session);
        let product = request.product.and_then(|p| self.row_of(p));
        let mut list = match request.scenario {
            Scenario::ForYou if session.is_empty() => self.popular(request, product, Some(Fallback::NoHistory)),
            Scenario::ForYou => {
                let user = self.user_vector(&session)?;
                let mut exclude = session.clone();
                exclude.extend(product);
                let used = session[session.len().saturating_sub(self.config().max_len)..].to_vec();
                self.nearest(request, &user, &exclude, &session, used, scan)?
            }
            Scenario::Similar => match product {
                Some(p) => {
                    let query = self.item_vector(p).expect("a resolved row");
                    self.nearest(request, &query, &[p], &[p], vec![p], scan)?
                }
                None => {
                    let why = if request.product.is_some() { Fallback::UnknownProduct } else { Fallback::NoProduct };
                    self.popular(request, None, Some(why))
                }
            },
            Scenario::Popular => self.popular(request, product, None),
            Scenario::RecentlyViewed => self.recently_viewed(request, &session, product),
        };
        list.scenario = request.scenario;
        list.unknown = unknown;
        Ok(list)
    }

    /// The ruled top-K by cosine with `query` (`[d]`, any length), never a row of `exclude`, each
    /// explained against `anchors`; `scan` fills the selection (see [`Runtime::answer_scanning`]).
    fn nearest(
        &self,
        request: &Request<'_>,
        query: &[f32],
        exclude: &[u32],
        anchors: &[u32],
        used: Vec<u32>,
        scan: &mut dyn FnMut(&[f32], &mut TopK<'_>),
    ) -> Result<List, RuntimeError> {
        let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
        if query.len() != self.dim() || !norm.is_finite() {
            return Err(RuntimeError::argument("query", format!("need {} finite values", self.dim())));
        }
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let unit: Vec<f32> = query.iter().map(|v| v * inv).collect();
        let cosine = |row: u32| {
            let v = self.items().unit_vector(row as usize);
            v.iter().zip(&unit).map(|(a, b)| a * b).sum::<f32>()
        };
        let (hits, dropped_pins) = self.select(request, exclude, &mut |top| scan(&unit, top), &cosine);
        let items = hits
            .into_iter()
            .map(|(row, score, pinned)| {
                let explanation = Some(self.explain(row, anchors)?);
                Ok(ListItem { row, id: self.id_of(row), score, pinned, explanation })
            })
            .collect::<Result<_, RuntimeError>>()?;
        Ok(List { source: request.scenario, used, items, dropped_pins, ..List::empty(request.scenario) })
    }

    /// The ruled top-K by popularity, never `product`.
    fn popular(&self, request: &Request<'_>, product: Option<u32>, fallback: Option<Fallback>) -> List {
        let mut list = List { fallback, ..List::empty(Scenario::Popular) };
        let Some(popularity) = self.popularity() else {
            list.note = Some("this bundle has no popularity.json (export it again with this omakase)".into());
            return list;
        };
        let exclude: Vec<u32> = product.into_iter().collect();
        let n = self.item_count();
        let (hits, dropped) = self.select(
            request,
            &exclude,
            &mut |top| {
                for r in 0..n {
                    let s = popularity.score(r);
                    if s >= top.threshold() {
                        top.push(r, s);
                    }
                }
            },
            &|row| popularity.score(row as usize),
        );
        list.items = hits
            .into_iter()
            .map(|(row, score, pinned)| ListItem { row, id: self.id_of(row), score, pinned, explanation: None })
            .collect();
        list.dropped_pins = dropped;
        list
    }

    /// The views, latest first, each once, minus `product` and what the rules keep out.
    fn recently_viewed(&self, request: &Request<'_>, session: &[u32], product: Option<u32>) -> List {
        let mut items: Vec<ListItem> = Vec::new();
        for &row in session.iter().rev() {
            if items.len() == request.k {
                break;
            }
            if Some(row) == product || !request.rules.allows(row) || items.iter().any(|i| i.row == row) {
                continue;
            }
            items.push(ListItem { row, id: self.id_of(row), score: 0.0, pinned: false, explanation: None });
        }
        List { items, ..List::empty(Scenario::RecentlyViewed) }
    }

    /// Pins resolved, the scan (`fill`) into a top-K of the places left, then the pins inserted at
    /// their positions: `(row, score, pinned)`, and the pins dropped. `score_of` scores a pinned row.
    fn select(
        &self,
        request: &Request<'_>,
        exclude: &[u32],
        fill: &mut dyn FnMut(&mut TopK<'_>),
        score_of: &dyn Fn(u32) -> f32,
    ) -> (Vec<(u32, f32, bool)>, Vec<DroppedPin>) {
        let row_of = |id: &str| self.row_of(id);
        let id_of = |row: u32| self.id_of(row);
        ruled_selection(request.rules, request.k, exclude, &row_of, &id_of, fill, score_of)
    }

    fn id_of(&self, row: u32) -> String {
        self.item(row).map(|m| m.id.clone()).unwrap_or_default()
    }
}

/// The ruled selection of a list, shared by a loaded [`Runtime`] and a streamed catalogue
/// (`index::stream`), so that both answer a request identically: pins resolved by `row_of` (those
/// not in the catalogue, excluded, filtered out, pinned twice or beyond `k` are dropped, named by
/// `id_of`), the scan (`fill`) into a top-K of the places left, then, position by position, a pin
/// whose position has come, else the next scanned hit; pins beyond the scanned hits end the list in
/// position order. `(row, score, pinned)` in list order, and the pins dropped. `score_of` scores a
/// pinned row.
pub(crate) fn ruled_selection(
    rules: &CompiledRules,
    k: usize,
    exclude: &[u32],
    row_of: &dyn Fn(&str) -> Option<u32>,
    id_of: &dyn Fn(u32) -> String,
    fill: &mut dyn FnMut(&mut TopK<'_>),
    score_of: &dyn Fn(u32) -> f32,
) -> (Vec<(u32, f32, bool)>, Vec<DroppedPin>) {
    let mut pinned: Vec<(u32, usize)> = Vec::new();
    let mut dropped = Vec::new();
    for (id, position) in rules.pins() {
        let reason = match row_of(id) {
            None => Some("not in the catalogue"),
            Some(r) if exclude.contains(&r) => Some("excluded from this list (viewed, or this page's product)"),
            Some(r) if !rules.allows(r) => Some("kept out by the filter or exclude"),
            Some(r) if pinned.iter().any(|p| p.0 == r) => Some("pinned twice"),
            Some(r) => {
                pinned.push((r, *position));
                None
            }
        };
        if let Some(reason) = reason {
            dropped.push(DroppedPin { id: id.clone(), reason: reason.into() });
        }
    }
    pinned.sort_by_key(|p| p.1); // stable: equal positions keep their order
    for (r, _) in pinned.drain(k.min(pinned.len())..) {
        dropped.push(DroppedPin { id: id_of(r), reason: format!("more pins than the list's {k} places") });
    }
    let mut excluded: Vec<usize> = exclude.iter().chain(rules.excluded()).map(|&r| r as usize).collect();
    excluded.extend(pinned.iter().map(|p| p.0 as usize));
    let scan_k = k - pinned.len();
    let mut top = match rules.admission() {
        Some(admission) => TopK::ruled(scan_k, &excluded, admission),
        None => TopK::with_excluded(scan_k, &excluded),
    };
    fill(&mut top);
    let mut pins = pinned.into_iter().peekable();
    let mut scanned = top.into_sorted().into_iter();
    let mut out: Vec<(u32, f32, bool)> = Vec::with_capacity(k);
    let pin_entry = |row: u32| (row, rules.boosted(row as usize, score_of(row)), true);
    while out.len() < k {
        let position = out.len() + 1;
        let due = matches!(pins.peek(), Some(&(_, p)) if p <= position);
        let next = if due {
            pins.next().map(|(row, _)| pin_entry(row))
        } else {
            scanned
                .next()
                .map(|hit| (hit.index as u32, hit.score, false))
                .or_else(|| pins.next().map(|(row, _)| pin_entry(row)))
        };
        match next {
            Some(entry) => out.push(entry),
            None => break,
        }
    }
    (out, dropped)
}

impl List {
    /// A list of `source` with nothing in it (also the streamed catalogue's, `index::stream`).
    pub(crate) fn empty(source: Scenario) -> List {
        List {
            scenario: source,
            source,
            fallback: None,
            items: Vec::new(),
            unknown: Vec::new(),
            used: Vec::new(),
            dropped_pins: Vec::new(),
            note: None,
        }
    }
}
