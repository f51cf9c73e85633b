//! A streamed catalogue's lists: the scenarios of `crate::scenario` over what has arrived, and the
//! files a request still needs ([`StreamedCatalogue::needs`]). With every file a request needs here
//! a list is `index::recommend::answer`'s on the whole bundle (same rows, scores, order, pins and
//! explanations; text / image similarities absent, as without explain shards); a `partial` answer
//! is built from what is here, skipping what is not, and says which probed partitions were missing.
//!
//! The stages, each needing the one before: (1) the directory buckets of every id the request
//! names (session, product, pins, exclusions, facts) and `columns.json` when a rule reads a column;
//! (2) the partitions holding the rows whose vectors it reads (session, product, pins); (3) the
//! `nprobe` partitions nearest to the query (their rows), then, only if the rules left the list
//! short, the next-nearest one at a time; (4) the metadata of the partitions the list's rows are in.
//! A partial answer scans only partitions whose metadata is here too (it must name its hits).

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::{StreamFile, StreamedCatalogue};
use crate::engine::{Explanation, ItemMeta};
use crate::error::RuntimeError;
use crate::index::directory::bucket_of;
use crate::index::ivf::{PartitionRows, Probe};
use crate::kernels::TopK;
use crate::rules::{Columns, CompiledRules, Facts, Rules};
use crate::scenario::{ruled_selection, DroppedPin, Fallback, List, ListItem, Scenario};

/// One list request to a streamed catalogue (as `crate::scenario::Request`, with the rules not yet
/// compiled: their ids resolve through the directory).
#[derive(Debug, Clone, Copy)]
pub struct StreamRequest<'a> {
    pub scenario: Scenario,
    /// The visitor's views, oldest first.
    pub session: &'a [String],
    pub product: Option<&'a str>,
    pub k: usize,
    pub rules: &'a Rules,
    pub facts: Option<&'a Facts>,
}

/// What the search of a `for-you` or `similar` list scanned.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSearch {
    pub nprobe: usize,
    /// Partitions probed, nearest first.
    pub probed: Vec<usize>,
    /// Probed partitions that were not here (a partial answer); fetching them improves it.
    pub missing: Vec<usize>,
    /// Rows scored.
    pub rows_scanned: usize,
}

/// A streamed list.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAnswer {
    pub list: List,
    /// The card of `list.items[i]` (id only, empty title, when a partial answer lacks its metadata).
    pub cards: Vec<ItemMeta>,
    /// `None` when the list scanned no rows (popular, recently-viewed, a fallback).
    pub search: Option<StreamSearch>,
    /// Ids whose directory bucket was not here (a partial answer ignores them).
    pub pending: Vec<String>,
}

/// What a request still lacks, by stage (module docs).
#[derive(Debug, Default)]
struct Needs {
    buckets: BTreeSet<usize>,
    columns: bool,
    vectors: BTreeSet<usize>,
    /// Missing partitions among the first `nprobe` probed.
    probed: Vec<usize>,
    /// Missing partitions the rules' widening probed beyond them.
    further: Vec<usize>,
    cards: BTreeSet<usize>,
}

/// An id through the directory.
enum Lookup {
    Row(u32),
    Unknown,
    /// Its bucket is not here.
    Pending(usize),
}

/// The partitions a search scans: those whose rows are here, and, for a partial answer (which
/// fetches nothing, so must name every hit from what is here), whose metadata is here too. A whole
/// answer scans rows alone and then fetches the metadata of the partitions its hits are in: a few
/// files instead of one per probed partition (at a million items the metadata is larger than the
/// rows).
struct Ready<'a> {
    cat: &'a StreamedCatalogue,
    cards_here: bool,
}

impl PartitionRows for Ready<'_> {
    fn row_count(&self) -> usize {
        self.cat.manifest.item_count
    }

    fn scan_rows(&self, range: Range<usize>, query: &[f32], top: &mut TopK) -> bool {
        if range.is_empty() {
            return true;
        }
        match self.cat.ivf.partition_of(range.start) {
            Some(p) if !self.cards_here || self.cat.has(StreamFile::Metadata(p)) => {
                self.cat.rows.scan_rows(range, query, top)
            }
            _ => false,
        }
    }
}

/// One computation over what is here.
struct Computed {
    answer: StreamAnswer,
    needs: Needs,
    /// Partitions this request reads.
    touched: BTreeSet<usize>,
}

impl StreamedCatalogue {
    /// The files `request` needs next, probing `nprobe` partitions (empty: [`StreamedCatalogue::answer`]
    /// can answer it whole). Fetch them, [`StreamedCatalogue::insert`] each, and ask again: each
    /// stage's files depend on the previous stage's (module docs). Marks the request's partitions
    /// as in use (never evicted until the next request).
    pub fn needs(&mut self, request: &StreamRequest<'_>, nprobe: usize) -> Result<Vec<String>, RuntimeError> {
        let computed = self.compute(request, nprobe, false)?;
        self.use_partitions(&computed.touched);
        Ok(self.files_needed(&computed.needs))
    }

    /// The list `request` asks for, probing `nprobe` partitions (1..=`partitions`). Without
    /// `partial` every file it needs must be here ([`StreamedCatalogue::needs`] is empty), else it
    /// is refused naming the first one missing; the list is then the whole bundle's
    /// (`index::recommend::answer`). With `partial` it answers from what is here.
    pub fn answer(
        &mut self,
        request: &StreamRequest<'_>,
        nprobe: usize,
        partial: bool,
    ) -> Result<StreamAnswer, RuntimeError> {
        let computed = self.compute(request, nprobe, partial)?;
        self.use_partitions(&computed.touched);
        if !partial {
            if let Some(first) = self.files_needed(&computed.needs).into_iter().next() {
                return Err(RuntimeError::MissingFile { file: first });
            }
        }
        Ok(computed.answer)
    }

    /// The next stage's missing files (module docs), as manifest paths.
    fn files_needed(&self, needs: &Needs) -> Vec<String> {
        let files: Vec<StreamFile> = if !needs.buckets.is_empty() || needs.columns {
            let columns = needs.columns.then_some(StreamFile::Columns);
            needs.buckets.iter().map(|&b| StreamFile::Bucket(b)).chain(columns).collect()
        } else if !needs.vectors.is_empty() {
            needs.vectors.iter().map(|&p| StreamFile::Rows(p)).collect()
        } else if !needs.probed.is_empty() {
            needs.probed.iter().map(|&p| StreamFile::Rows(p)).collect()
        } else if let Some(&p) = needs.further.first() {
            vec![StreamFile::Rows(p)]
        } else {
            needs.cards.iter().map(|&p| StreamFile::Metadata(p)).collect()
        };
        files.into_iter().filter(|f| !self.has(*f)).filter_map(|f| self.entry(f).map(|e| e.path.clone())).collect()
    }

    fn use_partitions(&mut self, touched: &BTreeSet<usize>) {
        self.current = touched.iter().copied().collect();
        for &p in touched {
            self.touch(p);
        }
    }

    /// The row of `id` when its directory bucket is here (`None`: unknown, or not known yet).
    pub fn row_of(&self, id: &str) -> Option<u32> {
        match self.lookup(id) {
            Lookup::Row(r) => Some(r),
            _ => None,
        }
    }

    /// The stored vector of `row` when its partition's rows are here.
    pub fn vector(&self, row: u32) -> Option<Vec<f32>> {
        self.rows.vector(row as usize)
    }

    fn lookup(&self, id: &str) -> Lookup {
        let b = bucket_of(id, self.buckets.len());
        match &self.buckets[b] {
            Some(bucket) => bucket.row_of(id).map_or(Lookup::Unknown, Lookup::Row),
            None => Lookup::Pending(b),
        }
    }

    fn partition(&self, row: u32) -> usize {
        self.ivf.partition_of(row as usize).expect("a directory row is below item_count")
    }

    /// The card of `row` when it is here (its partition's metadata, or popular.json).
    pub fn card(&self, row: u32) -> Option<&ItemMeta> {
        let p = self.ivf.partition_of(row as usize)?;
        if let Some(meta) = &self.metadata[p] {
            return meta.get(row as usize - self.ivf.partitions()[p].start);
        }
        let popular = self.popular.as_ref()?;
        popular.rows.iter().position(|&(r, _)| r == row).map(|i| &popular.items[i])
    }

    /// The request over what is here; `partial`: scan only partitions whose cards are here too.
    fn compute(&self, request: &StreamRequest<'_>, nprobe: usize, partial: bool) -> Result<Computed, RuntimeError> {
        if request.k == 0 {
            return Err(RuntimeError::argument("k", "must be at least 1"));
        }
        let partitions = self.ivf.partitions().len();
        if nprobe == 0 || nprobe > partitions {
            return Err(RuntimeError::argument("nprobe", format!("{nprobe} is not in 1..={partitions}")));
        }
        let mut needs = Needs::default();
        let mut pending = Vec::new();
        // Ids this request resolved, so a row's id is known without its metadata.
        let mut names: HashMap<u32, String> = HashMap::new();
        let mut resolve = |id: &str, needs: &mut Needs, pending: &mut Vec<String>| match self.lookup(id) {
            Lookup::Row(r) => {
                names.insert(r, id.to_string());
                Some(Some(r))
            }
            Lookup::Unknown => Some(None),
            Lookup::Pending(b) => {
                needs.buckets.insert(b);
                pending.push(id.to_string());
                None
            }
        };
        let mut session = Vec::new();
        let mut unknown = Vec::new();
        for id in request.session {
            match resolve(id, &mut needs, &mut pending) {
                Some(Some(r)) => session.push(r),
                Some(None) => unknown.push(id.clone()),
                None => {}
            }
        }
        // `None`: no product; `Some(None)`: unknown or pending.
        let product: Option<Option<u32>> = request.product.map(|p| resolve(p, &mut needs, &mut pending).flatten());
        let rules = request.rules;
        let fact_ids: Vec<&String> =
            request.facts.iter().flat_map(|f| f.fields()).flat_map(|(_, f)| f.values.keys()).collect();
        for id in rules.exclude.iter().chain(rules.pins.iter().map(|(id, _)| id)).chain(fact_ids) {
            resolve(id, &mut needs, &mut pending);
        }
        let reads_columns = !rules.filter.is_empty() || !rules.boosts.is_empty() || rules.diversity.is_some();
        needs.columns = reads_columns && self.manifest.columns.is_some() && self.columns.is_none();
        if needs.columns {
            // A rule on a column cannot be compiled without it (partial or not).
            return Ok(self.unanswered(request, needs, pending, unknown));
        }
        let empty = Columns::default();
        let columns = self.columns.as_ref().unwrap_or(&empty);
        let row_of = |id: &str| match self.lookup(id) {
            Lookup::Row(r) => Some(r),
            _ => None,
        };
        let compiled = CompiledRules::compile(rules, columns, request.facts, self.manifest.item_count, &row_of)?;
        let mut ctx = Ctx { cat: self, request, rules: &compiled, needs, touched: BTreeSet::new(), names, partial };
        let product_row = product.flatten();
        let mut search = None;
        let mut list = match request.scenario {
            Scenario::ForYou => {
                let here: Vec<u32> = session.iter().copied().filter(|&r| ctx.vector_here(r)).collect();
                if here.is_empty() {
                    ctx.popular(product_row, Some(Fallback::NoHistory))
                } else {
                    let window = &here[here.len().saturating_sub(self.sequence.max_len())..];
                    let vectors: Vec<f32> =
                        window.iter().flat_map(|&r| self.rows.vector(r as usize).unwrap()).collect();
                    let user = self.sequence.user_vector(&vectors);
                    let mut exclude = session.clone();
                    exclude.extend(product_row);
                    let (list, s) = ctx.nearest(&user, &exclude, &here, window.to_vec(), nprobe)?;
                    search = Some(s);
                    list
                }
            }
            Scenario::Similar => match (product, product_row) {
                (Some(_), Some(p)) if ctx.vector_here(p) => {
                    let query = self.rows.vector(p as usize).unwrap();
                    let (list, s) = ctx.nearest(&query, &[p], &[p], vec![p], nprobe)?;
                    search = Some(s);
                    list
                }
                (Some(_), Some(_)) => ctx.popular(None, Some(Fallback::UnknownProduct)),
                (Some(_), None) => ctx.popular(None, Some(Fallback::UnknownProduct)),
                (None, _) => ctx.popular(None, Some(Fallback::NoProduct)),
            },
            Scenario::Popular => ctx.popular(product_row, None),
            Scenario::RecentlyViewed => ctx.recently_viewed(&session, product_row),
        };
        list.scenario = request.scenario;
        list.unknown = unknown;
        let cards: Vec<ItemMeta> = list
            .items
            .iter()
            .map(|item| match self.card(item.row) {
                Some(card) => card.clone(),
                None => {
                    ctx.needs.cards.insert(self.partition(item.row));
                    ItemMeta { id: item.id.clone(), title: String::new(), image: None, link: None }
                }
            })
            .collect();
        for item in &list.items {
            ctx.touched.insert(self.partition(item.row));
        }
        let Ctx { needs, touched, .. } = ctx;
        Ok(Computed { answer: StreamAnswer { list, cards, search, pending }, needs, touched })
    }

    /// An empty answer while stage-1 files are missing.
    fn unanswered(
        &self,
        request: &StreamRequest<'_>,
        needs: Needs,
        pending: Vec<String>,
        unknown: Vec<String>,
    ) -> Computed {
        let list = List { unknown, ..List::empty(request.scenario) };
        Computed {
            answer: StreamAnswer { list, cards: Vec::new(), search: None, pending },
            needs,
            touched: BTreeSet::new(),
        }
    }
}

/// One request's computation (what `Runtime`'s scenarios do, over the rows here).
struct Ctx<'a> {
    cat: &'a StreamedCatalogue,
    request: &'a StreamRequest<'a>,
    rules: &'a CompiledRules,
    needs: Needs,
    touched: BTreeSet<usize>,
    names: HashMap<u32, String>,
    /// Scan only partitions whose cards are here ([`Ready`]).
    partial: bool,
}

impl Ctx<'_> {
    /// Whether `row`'s vector is here; if not, its partition is needed (stage 2).
    fn vector_here(&mut self, row: u32) -> bool {
        let p = self.cat.partition(row);
        self.touched.insert(p);
        if self.cat.rows.has(p) {
            true
        } else {
            self.needs.vectors.insert(p);
            false
        }
    }

    fn unit(&mut self, row: u32) -> Option<Vec<f32>> {
        if self.vector_here(row) {
            self.cat.rows.unit_vector(row as usize)
        } else {
            None
        }
    }

    fn id_of(&self, row: u32) -> String {
        match self.names.get(&row) {
            Some(id) => id.clone(),
            None => self.cat.card(row).map(|m| m.id.clone()).unwrap_or_default(),
        }
    }

    /// `Runtime::nearest` through the index: the ruled top-K by cosine with `query`.
    fn nearest(
        &mut self,
        query: &[f32],
        exclude: &[u32],
        anchors: &[u32],
        used: Vec<u32>,
        nprobe: usize,
    ) -> Result<(List, StreamSearch), RuntimeError> {
        let dim = self.cat.manifest.dim;
        let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
        if query.len() != dim || !norm.is_finite() {
            return Err(RuntimeError::argument("query", format!("need {dim} finite values")));
        }
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let unit: Vec<f32> = query.iter().map(|v| v * inv).collect();
        // Pinned rows are scored and explained from their own vectors (stage 2).
        let pin_rows: Vec<u32> = self.rules.pins().iter().filter_map(|(id, _)| self.names_row(id)).collect();
        let pin_units: HashMap<u32, Option<Vec<f32>>> = pin_rows.iter().map(|&r| (r, self.unit(r))).collect();
        let cosine = |row: u32| match pin_units.get(&row) {
            Some(Some(v)) => v.iter().zip(&unit).map(|(a, b)| a * b).sum::<f32>(),
            _ => 0.0,
        };
        let (cat, cards_here) = (self.cat, self.partial);
        let mut probe = Probe::default();
        let (hits, dropped_pins) = self.select(
            exclude,
            &mut |top| probe = cat.ivf.scan_filling(&Ready { cat, cards_here }, &unit, nprobe, top),
            &cosine,
        );
        let first: Vec<usize> = probe.probed.iter().take(nprobe).copied().collect();
        for &p in &probe.missing {
            if first.contains(&p) {
                self.needs.probed.push(p);
            } else {
                self.needs.further.push(p);
            }
        }
        self.touched.extend(probe.probed.iter().copied());
        let rows_scanned = probe
            .probed
            .iter()
            .filter(|p| !probe.missing.contains(p))
            .map(|&p| self.cat.ivf.partitions()[p].len())
            .sum();
        let anchor_units: Vec<(u32, Vec<f32>)> = anchors.iter().filter_map(|&a| self.unit(a).map(|v| (a, v))).collect();
        let mut items = Vec::with_capacity(hits.len());
        for (row, score, pinned) in hits {
            let explanation = match self.unit(row) {
                Some(target) if !anchor_units.is_empty() => Some(self.explain(&target, &anchor_units)),
                _ => None,
            };
            items.push(ListItem { row, id: self.id_of(row), score, pinned, explanation });
        }
        let list =
            List { source: self.request.scenario, used, items, dropped_pins, ..List::empty(self.request.scenario) };
        let search = StreamSearch { nprobe, probed: probe.probed, missing: probe.missing, rows_scanned };
        Ok((list, search))
    }

    fn names_row(&self, id: &str) -> Option<u32> {
        match self.cat.lookup(id) {
            Lookup::Row(r) => Some(r),
            _ => None,
        }
    }

    /// `Runtime::explain` without explain shards: the most similar anchor (the first on ties).
    fn explain(&self, target: &[f32], anchors: &[(u32, Vec<f32>)]) -> Explanation {
        let dot = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
        let (anchor, similarity) = anchors
            .iter()
            .map(|(s, v)| (*s, dot(target, v)))
            .fold((anchors[0].0, f32::NEG_INFINITY), |best, cur| if cur.1 > best.1 { cur } else { best });
        Explanation {
            session_row: anchor,
            session_id: self.id_of(anchor),
            similarity,
            text_similarity: None,
            image_similarity: None,
            text_share: None,
        }
    }

    /// `Runtime::popular` over popular.json's rows.
    fn popular(&mut self, product: Option<u32>, fallback: Option<Fallback>) -> List {
        let mut list = List { fallback, ..List::empty(Scenario::Popular) };
        let Some(popular) = &self.cat.popular else {
            list.note = Some(if self.cat.manifest.index.as_ref().is_some_and(|i| i.popular.is_some()) {
                "popular.json has not arrived yet".into()
            } else {
                "this bundle has no popularity.json (export it again with this omakase)".into()
            });
            return list;
        };
        let exclude: Vec<u32> = product.into_iter().collect();
        let score_of = |row: u32| popular.rows.iter().find(|&&(r, _)| r == row).map_or(0.0, |&(_, s)| s);
        let (hits, dropped) = self.select(
            &exclude,
            &mut |top| {
                for &(r, s) in &popular.rows {
                    if s >= top.threshold() {
                        top.push(r as usize, s);
                    }
                }
            },
            &score_of,
        );
        list.items = hits
            .into_iter()
            .map(|(row, score, pinned)| ListItem { row, id: self.id_of(row), score, pinned, explanation: None })
            .collect();
        list.dropped_pins = dropped;
        list
    }

    /// `Runtime::recently_viewed`.
    fn recently_viewed(&mut self, session: &[u32], product: Option<u32>) -> List {
        let mut items: Vec<ListItem> = Vec::new();
        for &row in session.iter().rev() {
            if items.len() == self.request.k {
                break;
            }
            if Some(row) == product || !self.rules.allows(row) || items.iter().any(|i| i.row == row) {
                continue;
            }
            items.push(ListItem { row, id: self.id_of(row), score: 0.0, pinned: false, explanation: None });
        }
        List { items, ..List::empty(Scenario::RecentlyViewed) }
    }

    /// `Runtime::select` (`scenario::ruled_selection`), pins resolved through the directory.
    fn select(
        &mut self,
        exclude: &[u32],
        fill: &mut dyn FnMut(&mut TopK<'_>),
        score_of: &dyn Fn(u32) -> f32,
    ) -> (Vec<(u32, f32, bool)>, Vec<DroppedPin>) {
        let this = &*self;
        let row_of = |id: &str| this.names_row(id);
        let id_of = |row: u32| this.id_of(row);
        ruled_selection(this.rules, this.request.k, exclude, &row_of, &id_of, fill, score_of)
    }
}
