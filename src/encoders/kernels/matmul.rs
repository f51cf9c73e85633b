//! Matrix products on strided f32 slices through the `gemm` crate (the kernel behind candle's CPU
//! matmul), so that an operand can be a block of a larger buffer — one attention head's columns of the
//! fused q/k/v rows, one image's channels — read in place, and the destination can be accumulated into
//! (bias or residual written there first), with no copy and no intermediate tensor.

use std::marker::PhantomData;

use gemm::Parallelism;

/// A read-only `rows × cols` matrix inside `data`: element (i, j) at `i·row_stride + j·col_stride`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major, row `i` starting at `i·row_stride` (`row_stride ≥ cols`). Panics if `data` is too short.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        let m = MatRef { data, rows, cols, row_stride, col_stride: 1 };
        assert!(
            fits(data.len(), rows, cols, row_stride, 1),
            "matrix {rows}x{cols} (row stride {row_stride}) outside its {} values",
            data.len()
        );
        m
    }

    /// The transpose, as a view.
    pub(crate) fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}

/// A writable `rows × cols` row-major matrix (see [`MatRef::new`]). Held as a pointer so that threads can
/// fill disjoint blocks of one buffer at once ([`SharedRows::block`]): blocks of columns are not slices.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: *mut f32,
    rows: usize,
    cols: usize,
    row_stride: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

impl<'a> MatMut<'a> {
    /// Panics if `data` is too short.
    pub(crate) fn new(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, row_stride, 1),
            "matrix {rows}x{cols} (row stride {row_stride}) outside its {} values",
            data.len()
        );
        MatMut { data: data.as_mut_ptr(), rows, cols, row_stride, _borrow: PhantomData }
    }
}

/// A row-major buffer whose disjoint blocks several threads write at the same time.
#[derive(Debug)]
pub(crate) struct SharedRows<'a> {
    data: *mut f32,
    len: usize,
    row_stride: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: it only hands out blocks through the unsafe `block`, whose callers keep them disjoint.
unsafe impl Send for SharedRows<'_> {}
unsafe impl Sync for SharedRows<'_> {}

impl<'a> SharedRows<'a> {
    pub(crate) fn new(data: &'a mut [f32], row_stride: usize) -> Self {
        SharedRows { data: data.as_mut_ptr(), len: data.len(), row_stride, _borrow: PhantomData }
    }

    /// Rows `first_row..first_row + rows`, columns `first_col..first_col + cols`. Panics outside the buffer.
    ///
    /// # Safety
    /// Blocks alive at the same time must not overlap.
    pub(crate) unsafe fn block(&self, first_row: usize, first_col: usize, rows: usize, cols: usize) -> MatMut<'a> {
        let offset = first_row * self.row_stride + first_col;
        assert!(
            offset <= self.len && fits(self.len - offset, rows, cols, self.row_stride, 1),
            "block {rows}x{cols} at ({first_row}, {first_col}) outside its {} values",
            self.len
        );
        // SAFETY: `offset` is inside the buffer (checked above).
        let data = unsafe { self.data.add(offset) };
        MatMut { data, rows, cols, row_stride: self.row_stride, _borrow: PhantomData }
    }
}

/// Whether the last element of the matrix lies inside `len` values (an empty matrix always fits).
fn fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1).checked_mul(row_stride).zip((cols - 1).checked_mul(col_stride));
    last.and_then(|(a, b)| a.checked_add(b)).is_some_and(|last| last < len)
}

/// How many cores one product may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// The calling thread only (the caller already runs products side by side).
    One,
    /// As many as candle uses (`RAYON_NUM_THREADS`, else the physical cores).
    All,
}

/// `dst ← scale · lhs · rhs`, or `dst ← dst + scale · lhs · rhs` when `accumulate`.
/// Panics if the shapes do not chain (`lhs` m×k, `rhs` k×n, `dst` m×n).
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    scale: f32,
    threads: Threads,
) {
    assert!(
        lhs.rows == dst.rows && rhs.cols == dst.cols && lhs.cols == rhs.rows,
        "matmul of {}x{} by {}x{} into {}x{}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols,
        dst.rows,
        dst.cols
    );
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i, columns 0..n, lie inside the matrix (checked when it was made).
                unsafe { std::slice::from_raw_parts_mut(dst.data.add(i * dst.row_stride), n) }.fill(0.0);
            }
        }
        return;
    }
    let parallelism = match threads {
        Threads::All if candle_core::utils::get_num_threads() > 1 => {
            Parallelism::Rayon(candle_core::utils::get_num_threads())
        }
        _ => Parallelism::None,
    };
    // SAFETY: the constructors checked that every element of the three matrices lies inside its
    // buffer; `dst` is an exclusive borrow (or a block no other thread writes), so nothing else
    // reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data,
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive triple loop.
    fn reference(lhs: &MatRef, rhs: &MatRef) -> Vec<f32> {
        let at = |m: &MatRef, i: usize, j: usize| m.data[i * m.row_stride + j * m.col_stride];
        let mut out = vec![0.0; lhs.rows * rhs.cols];
        for i in 0..lhs.rows {
            for j in 0..rhs.cols {
                out[i * rhs.cols + j] = (0..lhs.cols).map(|p| at(lhs, i, p) * at(rhs, p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_transposed_and_accumulated_products() {
        let values: Vec<f32> = (0..200).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
        // lhs: 3×4 block with rows 10 apart; rhs: the transpose of a 5×4 block (rows 6 apart).
        let lhs = MatRef::new(&values[2..], 3, 4, 10);
        let rhs = MatRef::new(&values[50..], 5, 4, 6).t();
        let want = reference(&lhs, &rhs);
        for threads in [Threads::One, Threads::All] {
            let mut out = vec![1.0f32; 3 * 8];
            matmul(MatMut::new(&mut out, 3, 5, 8), lhs, rhs, true, 0.5, threads);
            for i in 0..3 {
                for j in 0..5 {
                    assert_eq!(out[i * 8 + j], 1.0 + 0.5 * want[i * 5 + j]);
                }
                assert_eq!(&out[i * 8 + 5..i * 8 + 8], &[1.0; 3], "columns past the matrix stay");
            }
            matmul(MatMut::new(&mut out, 3, 5, 8), lhs, rhs, false, 1.0, threads);
            assert_eq!(out[2 * 8 + 4], want[2 * 5 + 4]);
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_view_past_its_slice_is_refused() {
        MatRef::new(&[0.0; 11], 3, 4, 4);
    }
}
