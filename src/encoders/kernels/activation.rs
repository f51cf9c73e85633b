//! Branch-free `exp`, `erf` and the exact (erf) GELU, written so that loops over slices vectorise.
//!
//! Hand-written because Rust's `f32::exp` and the `libm` erf behind candle's `gelu_erf` are scalar calls,
//! one element at a time: in MiniLM the GELU and the attention softmax spent as long in them as the
//! matrix products of their layers. The approximations are the ones PyTorch's own vectorised CPU kernels
//! use (Cephes `expf`; Abramowitz & Stegun 7.1.26 for erf), accurate to about 1e-7.

use super::multiversion;

/// e^x to within 2 ulp for x in [−87.3, 88.3]; 0 below (where e^x is a subnormal), +∞-free above
/// (clamped). Cephes `expf`: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-6 polynomial.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer (to nearest, in the float unit itself, so it vectorises).
    const ROUND: f32 = 12_582_912.0;
    const LOWEST: f32 = -87.336_55;
    let clamped = x.clamp(LOWEST, 88.376_26);
    let shifted = clamped * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e_r = p * r * r + r + 1.0;
    // 2^n from the integer in the low mantissa bits of `shifted`.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < LOWEST {
        0.0
    } else {
        e_r * two_n
    }
}

/// erf(x) to within 6e-7 (Abramowitz & Stegun 7.1.26, as PyTorch's vectorised `erf`; the formula is
/// good to 1.5e-7, f32 rounding near x = 0 adds the rest).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    // The published coefficients, as PyTorch writes them (f32 rounds the last digits).
    #[allow(clippy::excessive_precision)]
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

multiversion! {
    /// The exact GELU in place: x · ½ · (1 + erf(x / √2)) (BERT's `hidden_act: "gelu"`).
    pub(crate) fn gelu_erf_in_place(values: &mut [f32]) {
        for v in values.iter_mut() {
            let x = *v;
            *v = x * 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evenly spaced points of [lo, hi].
    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_a_few_ulp_and_zero_far_below() {
        let mut worst = 0f64;
        for x in grid(-87.0, 88.0, 200_000) {
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - exact) / exact).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert!(exp(100.0).is_finite());
    }

    #[test]
    fn erf_is_within_6e7_of_the_f64_erf() {
        // erf(x) by its Maclaurin series in f64 (converges fast on this range; |x| ≥ 4 rounds to ±1).
        let reference = |x: f64| {
            if x.abs() >= 4.0 {
                return x.signum();
            }
            let (mut term, mut sum, mut k) = (x, x, 0.0);
            while term.abs() > 1e-17 {
                k += 1.0;
                term *= -x * x / k;
                sum += term / (2.0 * k + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        let worst = grid(-6.0, 6.0, 100_000).map(|x| (erf(x) as f64 - reference(x as f64)).abs()).fold(0.0, f64::max);
        // 1.5e-7 for the formula itself, plus f32 rounding of `1 − poly·e^(−x²)` where both are near 1.
        assert!(worst < 6e-7, "worst absolute error {worst:e}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-3.0), -erf(3.0));
    }

    #[test]
    fn dispatched_gelu_equals_the_forced_scalar_path_bit_for_bit() {
        for n in [1, 7, 8, 33, 1000] {
            let x: Vec<f32> = grid(-8.0, 8.0, n).collect();
            let (mut got, mut want) = (x.clone(), x);
            gelu_erf_in_place(&mut got);
            gelu_erf_in_place::scalar(&mut want);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn gelu_matches_its_definition() {
        let mut values: Vec<f32> = grid(-8.0, 8.0, 1000).collect();
        let inputs = values.clone();
        gelu_erf_in_place(&mut values);
        for (x, y) in inputs.iter().zip(&values) {
            let want = x * 0.5 * (1.0 + erf(x / 2f32.sqrt()));
            assert!((y - want).abs() <= 1e-6 * want.abs().max(1.0), "gelu({x}) = {y}, want {want}");
        }
        assert_eq!(values[500], 0.0);
        // Φ(±1) from tables: gelu(1) = Φ(1) = 0.8413447, gelu(−1) = −(1 − Φ(1)).
        let mut ones = [1.0f32, -1.0];
        gelu_erf_in_place(&mut ones);
        assert!((ones[0] - 0.841_344_7).abs() < 1e-6 && (ones[1] + 0.158_655_3).abs() < 1e-6, "{ones:?}");
    }
}
