//! CPU feature detection for every SIMD kernel in the workspace: the runtime's scoring kernels
//! (`kernels`) and the training crate's encoder kernels (`omakase::encoders::kernels`) both take their
//! path from here, so there is one detection and one name for each path.
//!
//! The convention (see also the `kernels` module docs):
//! - **Detect once.** [`features`] asks the CPU on the first call and caches the answer; a family of
//!   kernels turns it into its [`SimdPath`] once (its own `simd_path()`, cached in a `OnceLock`).
//! - **Select by matching.** A family's dispatcher matches on its `simd_path()`: the AVX2 variant when
//!   it is [`SimdPath::Avx2`], the simd128 one when [`SimdPath::Simd128`] (a compile-time choice:
//!   wasm32 has no run-time detection), the scalar reference otherwise.
//! - **The scalar path is always compiled,** and tests force it by calling it directly (the runtime:
//!   `kernels::scalar::f`; the encoders: `f::scalar`), then compare it with the dispatched `f`.

use std::sync::OnceLock;

/// A SIMD path a kernel can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdPath {
    /// Portable code only (what the compiler vectorises for the build's baseline target).
    Scalar,
    /// x86-64 AVX2 (plus whatever else the family needs: F16C for scoring, FMA for the encoders),
    /// detected at run time.
    Avx2,
    /// wasm32 `simd128`, compiled in with `+simd128`.
    Simd128,
}

impl SimdPath {
    /// The path's name in logs and backend names: `"scalar"`, `"avx2"` or `"simd128"`.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            SimdPath::Avx2 => "avx2",
            SimdPath::Simd128 => "simd128",
        }
    }

    /// The best path for a family whose AVX2 variant can run when `avx2_usable` (its features, from
    /// [`features`]): simd128 when compiled in, else AVX2 when usable, else scalar.
    pub fn best(avx2_usable: bool) -> SimdPath {
        if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            SimdPath::Simd128
        } else if cfg!(target_arch = "x86_64") && avx2_usable {
            SimdPath::Avx2
        } else {
            SimdPath::Scalar
        }
    }
}

/// The x86-64 features the kernels use (all false elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    pub avx2: bool,
    pub f16c: bool,
    pub fma: bool,
}

/// This CPU's features, detected on the first call and cached.
pub fn features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CpuFeatures {
    CpuFeatures {
        avx2: std::is_x86_feature_detected!("avx2"),
        f16c: std::is_x86_feature_detected!("f16c"),
        fma: std::is_x86_feature_detected!("fma"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CpuFeatures {
    CpuFeatures::default()
}
