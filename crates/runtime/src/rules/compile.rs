//! Rules meet a catalogue: each clause becomes the set of rows it selects ([`Bits`]), from the
//! bundle's columns and their indexes plus the run-time facts that replace some of their values;
//! boosts become (set, weight) pairs, diversity a group per row. The result, [`CompiledRules`], is
//! what the scan's top-K consults ([`Admission`]) for the few candidates that reach its threshold.
//!
//! Compiling costs a few microseconds per clause for category and bool fields (unions of the
//! precomputed row sets), a binary search plus the matching rows for numeric ranges, and a pass
//! over the rows for diversity; callers that answer many requests under the same rules keep the
//! compiled rules (the browser facade caches them by their text).

use super::bits::Bits;
use super::columns::{Column, ColumnData, ColumnKind, Columns};
use super::facts::{Fact, FactField, Facts};
use super::parse::{parse_range, Clause, Cmp, Rules, Test};
use crate::error::RuntimeError;
use crate::kernels::{Admission, TopK};
use crate::store::ItemStore;

/// A filter keeping at most one row in this many is scanned row by row (only the rows it keeps);
/// a wider one scans every row, the blocks' coarse bounds skipping most (measured: `cargo bench
/// --bench rules`, docs/rules.md § Cost).
pub const SPARSE_SCAN_DIVISOR: usize = 5;

/// Rules ready for a scan over `len` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRules {
    len: usize,
    /// Rows every filter clause keeps and `exclude` does not name; `None`: every row.
    allowed: Option<Bits>,
    /// How many rows `allowed` holds (`len` without a filter).
    kept: usize,
    boosts: Vec<(Bits, f32)>,
    max_gain: f32,
    /// A group per row (`u32::MAX`: none) and the cap.
    groups: Option<(Vec<u32>, usize)>,
    /// Rows of the excluded ids (kept here too when there is no filter).
    excluded: Vec<u32>,
    /// Pins as written: `(id, position from 1)`.
    pins: Vec<(String, usize)>,
}

impl Default for CompiledRules {
    fn default() -> Self {
        CompiledRules::none()
    }
}

/// A field as the rules see it: the bundle's column (if any), the facts that replace its values
/// (resolved to rows), and its type.
struct Field<'a> {
    column: Option<&'a Column>,
    facts: Vec<(u32, &'a Fact)>,
    kind: ColumnKind,
}

impl CompiledRules {
    /// No rules: every row, scores unchanged.
    pub fn none() -> CompiledRules {
        CompiledRules {
            len: 0,
            allowed: None,
            kept: 0,
            boosts: Vec::new(),
            max_gain: 0.0,
            groups: None,
            excluded: Vec::new(),
            pins: Vec::new(),
        }
    }

    /// Compiles `rules` for a catalogue of `len` rows with `columns`, `facts` on top, ids resolved
    /// by `row_of`. A field neither the bundle nor the facts hold, or a clause that does not fit its
    /// field's type, is a [`RuntimeError::Rule`] naming the attribute.
    pub fn compile(
        rules: &Rules,
        columns: &Columns,
        facts: Option<&Facts>,
        len: usize,
        row_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<CompiledRules, RuntimeError> {
        if let Some(facts) = facts {
            for (name, field) in facts.fields() {
                if let (Some(column), Some(kind)) = (columns.get(name), field.kind) {
                    if column.kind() != kind {
                        return Err(RuntimeError::rule(
                            "facts",
                            format!(
                                "field {name:?} holds {} values, the bundle's column is {}",
                                kind.as_str(),
                                column.kind().as_str()
                            ),
                        ));
                    }
                }
            }
        }
        let field = |attribute: &str, name: &str| -> Result<Field<'_>, RuntimeError> {
            resolve_field(attribute, name, columns, facts, row_of)
        };
        let mut allowed: Option<Bits> = None;
        for clause in &rules.filter {
            let rows = clause_rows("filter", clause, &field("filter", &clause.field)?, len)?;
            match &mut allowed {
                Some(a) => a.and_with(&rows),
                None => allowed = Some(rows),
            }
        }
        let mut excluded: Vec<u32> = rules.exclude.iter().filter_map(|id| row_of(id)).collect();
        excluded.sort_unstable();
        excluded.dedup();
        if let Some(a) = &mut allowed {
            excluded.iter().for_each(|&r| a.set(r as usize, false));
        }
        let mut boosts = Vec::with_capacity(rules.boosts.len());
        for (weight, clause) in &rules.boosts {
            boosts.push((clause_rows("boost", clause, &field("boost", &clause.field)?, len)?, *weight));
        }
        let max_gain = boosts.iter().map(|(_, w)| w.max(0.0)).sum();
        let groups = match &rules.diversity {
            Some((name, cap)) => Some((group_rows(&field("diversity", name)?, name, len)?, *cap)),
            None => None,
        };
        let kept = allowed.as_ref().map_or(len, Bits::count);
        Ok(CompiledRules { len, allowed, kept, boosts, max_gain, groups, excluded, pins: rules.pins.clone() })
    }

    /// Rows the compiled rules were made for.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the filter keeps `row` and `exclude` does not name it.
    pub fn allows(&self, row: u32) -> bool {
        match &self.allowed {
            Some(a) => a.get(row as usize),
            None => self.excluded.binary_search(&row).is_err(),
        }
    }

    /// Rows the filter keeps (every row without one).
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Scans `store` for the unit-length `query` into `top` (made with [`CompiledRules::admission`]):
    /// only the rows the filter keeps when it keeps few (row by row), else every row; the same
    /// scores either way. Rows added to `store` after compiling are never kept by a filter.
    pub fn scan(&self, store: &ItemStore, query: &[f32], top: &mut TopK<'_>) {
        match &self.allowed {
            Some(allowed) if self.kept.saturating_mul(SPARSE_SCAN_DIVISOR) <= store.len() => {
                store.scan_rows(query, &mut allowed.iter_ones().filter(|&r| r < store.len()), top)
            }
            _ => store.scan(query, top),
        }
    }

    /// Rows of the excluded ids, ascending.
    pub fn excluded(&self) -> &[u32] {
        &self.excluded
    }

    pub fn pins(&self) -> &[(String, usize)] {
        &self.pins
    }

    /// The boosted score of `row` (`score` plus the weights of the boosts it matches).
    pub fn boosted(&self, row: usize, score: f32) -> f32 {
        self.boosts.iter().filter(|(bits, _)| bits.get(row)).fold(score, |s, (_, w)| s + w)
    }

    /// What the top-K consults, or `None` when nothing but exclusions applies (the plain top-K
    /// then runs, bit for bit as without rules).
    pub fn admission(&self) -> Option<&dyn Admission> {
        (self.allowed.is_some() || !self.boosts.is_empty() || self.groups.is_some()).then_some(self as &dyn Admission)
    }
}

impl Admission for CompiledRules {
    #[inline]
    fn admit(&self, index: usize, score: f32) -> Option<f32> {
        if let Some(a) = &self.allowed {
            if !a.get(index) {
                return None;
            }
        }
        Some(self.boosted(index, score))
    }

    fn max_gain(&self) -> f32 {
        self.max_gain
    }

    fn group(&self, index: usize) -> Option<u32> {
        let (groups, _) = self.groups.as_ref()?;
        groups.get(index).copied().filter(|&g| g != u32::MAX)
    }

    fn group_cap(&self) -> usize {
        self.groups.as_ref().map_or(usize::MAX, |(_, cap)| *cap)
    }
}

fn resolve_field<'a>(
    attribute: &str,
    name: &str,
    columns: &'a Columns,
    facts: Option<&'a Facts>,
    row_of: &dyn Fn(&str) -> Option<u32>,
) -> Result<Field<'a>, RuntimeError> {
    let column = columns.get(name);
    let fact_field: Option<&FactField> = facts.and_then(|f| f.field(name));
    let kind = column.map(Column::kind).or(fact_field.and_then(|f| f.kind)).ok_or_else(|| {
        RuntimeError::rule(
            attribute,
            format!("the bundle has no field {name:?} (its fields: {}), and no fact gives it", columns.describe()),
        )
    })?;
    let facts = fact_field
        .map(|f| f.values.iter().filter_map(|(id, fact)| row_of(id).map(|r| (r, fact))).collect())
        .unwrap_or_default();
    Ok(Field { column, facts, kind })
}

/// The rows `clause` selects among `len`.
fn clause_rows(attribute: &str, clause: &Clause, field: &Field<'_>, len: usize) -> Result<Bits, RuntimeError> {
    let wrong = |why: String| RuntimeError::rule(attribute, format!("`{}`: {why}", clause.text));
    let name = &clause.field;
    let (positive, negate) = match (&clause.test, field.kind) {
        (Test::Eq(v), kind) => (Positive::of(kind, v, name).map_err(wrong)?, false),
        (Test::Ne(v), kind) => (Positive::of(kind, v, name).map_err(wrong)?, true),
        (Test::Is(b), ColumnKind::Bool) => (Positive::Bool(Some(*b), None), false),
        (Test::Is(_), kind) => {
            return Err(wrong(format!("{name:?} is a {} field; a bare field tests a bool one", kind.as_str())));
        }
        (Test::Cmp(cmp, x), ColumnKind::Number) => (Positive::Ranges(vec![Interval::of(*cmp, *x)]), false),
        (Test::Cmp(..), kind) => {
            return Err(wrong(format!("{name:?} is a {} field; <, <=, >, >= compare numbers", kind.as_str())));
        }
    };
    let mut rows = match field.column {
        Some(column) => positive.column_rows(column, len),
        None => Bits::empty(len),
    };
    for &(row, fact) in &field.facts {
        rows.set(row as usize, positive.holds(fact));
    }
    Ok(if negate { rows.complement() } else { rows })
}

/// An inclusive or exclusive numeric interval.
#[derive(Debug, Clone, Copy)]
struct Interval {
    lo: f64,
    lo_open: bool,
    hi: f64,
    hi_open: bool,
}

impl Interval {
    fn of(cmp: Cmp, x: f64) -> Interval {
        let (inf, ninf) = (f64::INFINITY, f64::NEG_INFINITY);
        match cmp {
            Cmp::Lt => Interval { lo: ninf, lo_open: false, hi: x, hi_open: true },
            Cmp::Le => Interval { lo: ninf, lo_open: false, hi: x, hi_open: false },
            Cmp::Gt => Interval { lo: x, lo_open: true, hi: inf, hi_open: false },
            Cmp::Ge => Interval { lo: x, lo_open: false, hi: inf, hi_open: false },
        }
    }

    fn contains(&self, v: f64) -> bool {
        (if self.lo_open { v > self.lo } else { v >= self.lo })
            && (if self.hi_open { v < self.hi } else { v <= self.hi })
    }
}

/// The values a clause accepts (its rows are those holding one; `!=` is the complement).
enum Positive {
    /// Category values by name.
    Categories(Vec<String>),
    Ranges(Vec<Interval>),
    /// Accepted bool values (at most two).
    Bool(Option<bool>, Option<bool>),
}

impl Positive {
    fn of(kind: ColumnKind, values: &[String], name: &str) -> Result<Positive, String> {
        Ok(match kind {
            ColumnKind::Category => Positive::Categories(values.to_vec()),
            ColumnKind::Number => Positive::Ranges(
                values
                    .iter()
                    .map(|v| {
                        parse_range(v)
                            .map(|(lo, hi)| Interval { lo, lo_open: false, hi, hi_open: false })
                            .ok_or_else(|| format!("{name:?} is a number field; {v:?} is not a number or a range a..b"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ColumnKind::Bool => {
                let mut accepted = (None, None);
                for v in values {
                    let b = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("{name:?} is a bool field; {v:?} is not true or false")),
                    };
                    if accepted.0.is_none() {
                        accepted.0 = Some(b);
                    } else {
                        accepted.1 = Some(b);
                    }
                }
                Positive::Bool(accepted.0, accepted.1)
            }
        })
    }

    fn holds(&self, fact: &Fact) -> bool {
        match (self, fact) {
            (Positive::Categories(want), Fact::Categories(have)) => have.iter().any(|h| want.contains(h)),
            (Positive::Ranges(ranges), Fact::Number(x)) => ranges.iter().any(|r| r.contains(*x)),
            (Positive::Bool(a, b), Fact::Bool(x)) => *a == Some(*x) || *b == Some(*x),
            _ => false,
        }
    }

    /// The rows of `column` holding an accepted value, among `len` (rows beyond the column, added
    /// at run time, hold none).
    fn column_rows(&self, column: &Column, len: usize) -> Bits {
        let mut rows = Bits::empty(len);
        match (self, &column.data) {
            (Positive::Categories(want), ColumnData::Category { values, postings, .. }) => {
                for (code, value) in values.iter().enumerate() {
                    if want.contains(value) {
                        postings[code].iter().for_each(|&r| rows.set(r as usize, true));
                    }
                }
            }
            (Positive::Ranges(ranges), ColumnData::Number { values, order }) => {
                for r in ranges {
                    let start = order.partition_point(|&i| {
                        let v = values[i as usize];
                        if r.lo_open {
                            v <= r.lo
                        } else {
                            v < r.lo
                        }
                    });
                    let end = order.partition_point(|&i| {
                        let v = values[i as usize];
                        if r.hi_open {
                            v < r.hi
                        } else {
                            v <= r.hi
                        }
                    });
                    order[start..end.max(start)].iter().for_each(|&i| rows.set(i as usize, true));
                }
            }
            (Positive::Bool(a, b), ColumnData::Bool { trues, falses, .. }) if trues.len() == len => {
                for (accepted, bits) in [(Some(true), trues), (Some(false), falses)] {
                    if *a == accepted || *b == accepted {
                        rows.or_with(bits);
                    }
                }
            }
            (Positive::Bool(a, b), ColumnData::Bool { values, .. }) => {
                for (r, v) in values.iter().enumerate() {
                    if v.is_some() && (*a == *v || *b == *v) {
                        rows.set(r, true);
                    }
                }
            }
            _ => {} // kinds were matched by the caller
        }
        rows
    }
}

/// A diversity group per row: a category field's first value, or a bool field's value.
fn group_rows(field: &Field<'_>, name: &str, len: usize) -> Result<Vec<u32>, RuntimeError> {
    let mut groups = vec![u32::MAX; len];
    let mut extra: Vec<String> = Vec::new();
    let category_values: &[String] = match field.column.map(|c| &c.data) {
        Some(ColumnData::Category { values, .. }) => values,
        _ => &[],
    };
    match field.kind {
        ColumnKind::Number => {
            return Err(RuntimeError::rule(
                "diversity",
                format!("{name:?} is a number field; diversity groups by a category or bool field"),
            ));
        }
        ColumnKind::Category => {
            if let Some(column) = field.column {
                for (r, g) in groups.iter_mut().enumerate().take(column.len()) {
                    if let Some(&first) = column.codes(r).first() {
                        *g = first;
                    }
                }
            }
        }
        ColumnKind::Bool => {
            if let Some(Column { data: ColumnData::Bool { values, .. }, .. }) = field.column {
                for (g, v) in groups.iter_mut().zip(values) {
                    if let Some(b) = v {
                        *g = *b as u32;
                    }
                }
            }
        }
    }
    for &(row, fact) in &field.facts {
        let group = match fact {
            Fact::Bool(b) => *b as u32,
            Fact::Categories(c) if !c.is_empty() => match category_values.iter().position(|v| *v == c[0]) {
                Some(code) => code as u32,
                None => {
                    let at = extra.iter().position(|v| *v == c[0]).unwrap_or_else(|| {
                        extra.push(c[0].clone());
                        extra.len() - 1
                    });
                    (category_values.len() + at) as u32
                }
            },
            _ => u32::MAX,
        };
        if let Some(g) = groups.get_mut(row as usize) {
            *g = group;
        }
    }
    Ok(groups)
}
