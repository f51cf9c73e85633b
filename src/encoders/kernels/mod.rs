//! CPU kernels shared by the two encoders: matrix products on strided slices (the `gemm` crate, which
//! candle itself uses), row-wise LayerNorm and softmax, and vectorisable `exp`/`erf`/GELU.
//!
//! Why the encoders run on slices rather than chains of candle ops: each candle CPU op allocates a fresh
//! tensor, makes one pass over memory and, for large ones, wakes its thread pool; the MiniLM and
//! EfficientNet forwards are long chains of such small ops (attention alone is a dozen per layer),
//! and that overhead, the transposes to and from head-major layout and the page faults of the fresh
//! buffers took most of the time (profiles and measured gains: `bench/README.md`). Here each layer is
//! one product into a buffer that is reused, plus one fused pass.
//!
//! Every loop is written so that the compiler vectorises it without reassociating floating-point sums
//! (fixed 8-lane accumulators), and [`multiversion!`] compiles the hot ones a second time for AVX2+FMA,
//! picked at run time: the crate is built for baseline x86-64 (SSE2), which would leave 3/4 of the
//! vector width unused. Both versions perform the same operations in the same order (no FMA
//! contraction), so results do not depend on the CPU.

pub(crate) mod activation;
pub(crate) mod matmul;
pub(crate) mod rows;

/// Whether this x86-64 CPU has AVX2 and FMA (cached by std after the first call).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Defines a function whose body is compiled twice on x86-64 — once with AVX2+FMA enabled, chosen at
/// run time when the CPU has them, and once for the baseline — and once elsewhere (wasm32, aarch64).
/// A hand-written macro rather than the `multiversion` crate: that crate needs a newer Rust than the
/// crate's MSRV, and this is all of it that we use. No generics in the signature.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if $crate::encoders::kernels::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;
