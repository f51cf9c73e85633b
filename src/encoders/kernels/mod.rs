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
//!
//! # Dispatch
//! The runtime's convention (`omakase::runtime::kernels`, detection in
//! [`omakase::runtime::kernels::cpu`](crate::runtime::kernels::cpu)), followed here:
//! - the CPU is asked once (`cpu::features`) and this family's path is fixed once: [`simd_path`],
//!   cached (AVX2 when the CPU has AVX2 and FMA; on wasm32 with `+simd128` the portable body is the
//!   simd128 build, as the compiler vectorises it);
//! - a `multiversion!` function `f` matches on [`simd_path`] and calls `f::avx2` or `f::scalar`;
//! - the scalar body is always compiled, and tests force it by calling `f::scalar` directly and compare
//!   it with the dispatched `f` bit for bit.

pub(crate) mod activation;
pub(crate) mod matmul;
pub(crate) mod rows;

use crate::runtime::kernels::cpu::{self, SimdPath};

/// The path the encoders' kernels take on this CPU / build, chosen once: AVX2 when the CPU has AVX2
/// and FMA, simd128 when compiled in, scalar otherwise. Read by the dispatch on x86-64 only: elsewhere
/// `multiversion!` has a single body to call.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn simd_path() -> SimdPath {
    static PATH: std::sync::OnceLock<SimdPath> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let cpu = cpu::features();
        SimdPath::best(cpu.avx2 && cpu.fma)
    })
}

/// Defines `fn f` that dispatches on [`simd_path`], and beside it a module `f` holding the body twice:
/// `f::scalar` (the body as written, for the build's baseline target) and, on x86-64, `f::avx2` (the
/// same body compiled with AVX2+FMA enabled). A function and a module may share a name (different
/// namespaces); the module sees the caller's items through `use super::*`. A hand-written macro rather
/// than the `multiversion` crate: that crate needs a newer Rust than the crate's MSRV, and this is all
/// of it that we use. No generics in the signature.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                if $crate::encoders::kernels::simd_path() == $crate::runtime::kernels::cpu::SimdPath::Avx2 {
                    // SAFETY: the path is Avx2 only when the CPU has AVX2 and FMA.
                    return unsafe { $name::avx2($($arg),*) };
                }
            }
            $name::scalar($($arg),*)
        }

        #[allow(dead_code)]
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The body as written, for the build's baseline target (the scalar path).
            #[inline(always)]
            pub(super) fn scalar($($arg: $ty),*) $(-> $ret)? $body

            /// The body compiled with AVX2 and FMA enabled (same operations, same order).
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                scalar($($arg),*)
            }
        }
    };
}
pub(crate) use multiversion;
