//! The rules benchmark's workload (issue 16, point 1: "top-10 over 100k items with a filter that
//! keeps 10% plus a boost costs ≤ 1.5× the unfiltered scan"), one definition for both builds:
//! `benches/rules.rs` (native) and `tests/wasm_kernels` (wasm32 + simd128, under node) include this
//! file with `#[path]`. Pseudo-random int8 rows as a bundle's shard holds them, a `category` column
//! of 10 values spread uniformly (the filter `category=c3` keeps 10%), a bool `sale` on 1 item in
//! 20 (the boost `+0.1 sale`, about one standard deviation of a random cosine at d = 64), and a
//! session of 20 excluded rows. The two timed passes are the runtime's own: `ItemStore::scan` into
//! a plain top-K, and `CompiledRules::scan` into `TopK::ruled` (what `Runtime::answer` runs; a
//! caller compiles the rules once per rule text, the browser facade caches them).

use omakase_runtime::kernels::TopK;
use omakase_runtime::manifest::EmbeddingDtype;
use omakase_runtime::rules::columns::{Cell, ColumnFile, ColumnKind};
use omakase_runtime::rules::{Columns, ColumnsFile, CompiledRules, RuleText, Rules};
use omakase_runtime::store::ItemStore;

pub const FILTER: &str = "category=c3";
pub const BOOST: &str = "+0.1 sale";
pub const K: usize = 10;

pub struct Workload {
    pub n: usize,
    /// The items as a bundle's int8 shard stores them.
    pub store: ItemStore,
    /// Unit length, as the runtime scans with it.
    pub query: Vec<f32>,
    pub session: Vec<usize>,
    pub columns: Columns,
    pub rules: Rules,
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` rows of `dim`.
pub fn workload(n: usize, dim: usize) -> Workload {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut store = ItemStore::new(EmbeddingDtype::Int8, dim);
    let mut row = vec![0f32; dim];
    for _ in 0..n {
        row.iter_mut().for_each(|v| *v = (rng.next() % 2001) as f32 / 1000.0 - 1.0);
        store.push(&row);
    }
    let query: Vec<f32> = (0..dim).map(|_| (rng.next() % 2001) as f32 / 1000.0 - 1.0).collect();
    let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
    let query = query.iter().map(|v| v / norm).collect();
    let category = ColumnFile {
        name: "category".into(),
        kind: ColumnKind::Category,
        values: (0..10).map(|c| format!("c{c}")).collect(),
        rows: (0..n).map(|_| Some(Cell::Number((rng.next() % 10) as f64))).collect(),
    };
    let sale = ColumnFile {
        name: "sale".into(),
        kind: ColumnKind::Bool,
        values: Vec::new(),
        rows: (0..n).map(|_| Some(Cell::Bool(rng.next() % 20 == 0))).collect(),
    };
    let file = ColumnsFile { item_count: n, columns: vec![category, sale] };
    let columns = Columns::from_file(file, "columns.json", n).expect("valid columns");
    let rules = Rules::parse(&RuleText { filter: Some(FILTER), boost: Some(BOOST), ..Default::default() })
        .expect("valid rules");
    Workload { n, store, query, session: (0..20).map(|i| i * n / 20).collect(), columns, rules }
}

impl Workload {
    /// The rules compiled against the columns (what the browser facade caches per rule text).
    pub fn compile(&self) -> CompiledRules {
        CompiledRules::compile(&self.rules, &self.columns, None, self.n, &|_| None).expect("compiles")
    }

    /// The unfiltered top-10: its hits.
    pub fn plain(&self) -> Vec<usize> {
        let mut top = TopK::with_excluded(K, &self.session);
        self.store.scan(&self.query, &mut top);
        top.into_sorted().into_iter().map(|h| h.index).collect()
    }

    /// The top-10 under `rules` (filter + boost inside the scan): its hits.
    pub fn ruled(&self, rules: &CompiledRules) -> Vec<usize> {
        let admission = rules.admission().expect("the workload has a filter");
        let mut top = TopK::ruled(K, &self.session, admission);
        rules.scan(&self.store, &self.query, &mut top);
        top.into_sorted().into_iter().map(|h| h.index).collect()
    }

    /// Fraction of rows the filter keeps.
    pub fn kept(&self, rules: &CompiledRules) -> f64 {
        (0..self.n as u32).filter(|&r| rules.allows(r)).count() as f64 / self.n as f64
    }
}
