//! A fixed-length set of rows, one bit each: what a filter or a boost clause selects.

/// Rows `0..len` as bits; rows at or beyond `len` are never members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// No row of `len`.
    pub fn empty(len: usize) -> Bits {
        Bits { words: vec![0; len.div_ceil(64)], len }
    }

    /// Every row of `len`.
    pub fn full(len: usize) -> Bits {
        let mut bits = Bits { words: vec![u64::MAX; len.div_ceil(64)], len };
        bits.clear_tail();
        bits
    }

    /// The rows of `rows` (rows at or beyond `len` ignored).
    pub fn of_rows(len: usize, rows: impl IntoIterator<Item = u32>) -> Bits {
        let mut bits = Bits::empty(len);
        rows.into_iter().for_each(|r| bits.set(r as usize, true));
        bits
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn get(&self, row: usize) -> bool {
        row < self.len && (self.words[row >> 6] >> (row & 63)) & 1 == 1
    }

    #[inline]
    pub fn set(&mut self, row: usize, value: bool) {
        if row < self.len {
            let mask = 1u64 << (row & 63);
            if value {
                self.words[row >> 6] |= mask;
            } else {
                self.words[row >> 6] &= !mask;
            }
        }
    }

    /// `self ∩= other` (same length).
    pub fn and_with(&mut self, other: &Bits) {
        debug_assert_eq!(self.len, other.len);
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a &= b);
    }

    /// `self ∪= other` (same length).
    pub fn or_with(&mut self, other: &Bits) {
        debug_assert_eq!(self.len, other.len);
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a |= b);
    }

    /// Every row of `len` not in `self`.
    pub fn complement(&self) -> Bits {
        let mut bits = Bits { words: self.words.iter().map(|w| !w).collect(), len: self.len };
        bits.clear_tail();
        bits
    }

    /// The members, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let at = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + at
                })
            })
        })
    }

    /// How many rows are members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn clear_tail(&mut self) {
        if self.len % 64 != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn set_get_complement_count() {
        let mut b = Bits::of_rows(70, [0, 63, 64, 69, 70, 1000]);
        assert_eq!(b.count(), 4);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 63, 64, 69]);
        assert!(b.get(69) && !b.get(70) && !b.get(5000));
        let c = b.complement();
        assert_eq!(c.count(), 66);
        assert!(!c.get(64) && c.get(65));
        b.or_with(&c);
        assert_eq!(b, Bits::full(70));
        b.and_with(&Bits::empty(70));
        assert_eq!(b.count(), 0);
    }
}
