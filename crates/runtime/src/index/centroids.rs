//! The centroids file of an IVF index: `p × dim` little-endian f32, row-major, one unit-length
//! centroid per partition (docs/bundle.md § Index), and the probe that ranks partitions by it.

use crate::error::RuntimeError;
use crate::kernels::TopK;

/// `p` centroids of width `dim`, `[p, dim]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    dim: usize,
    values: Vec<f32>,
}

impl Centroids {
    /// Parses a centroids file whose length and sha256 were checked against the manifest
    /// (`verify_file`); the length is checked again here and every value must be finite.
    pub fn parse(bytes: &[u8], file: &str, partitions: usize, dim: usize) -> Result<Centroids, RuntimeError> {
        let expected = partitions.checked_mul(dim).and_then(|v| v.checked_mul(4));
        if expected != Some(bytes.len()) || dim == 0 {
            let reason = format!("{} bytes are not {partitions} centroids of dim {dim} (f32)", bytes.len());
            return Err(RuntimeError::format(file, reason));
        }
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(RuntimeError::format(file, format!("centroid {}: a value is not finite", at / dim)));
        }
        Ok(Centroids { dim, values })
    }

    /// Centroids from values `[p, dim]` (the exporter's k-means, tests). Refuses a ragged or
    /// non-finite matrix.
    pub fn from_values(values: Vec<f32>, dim: usize) -> Result<Centroids, RuntimeError> {
        if dim == 0 || values.is_empty() || values.len() % dim != 0 || values.iter().any(|v| !v.is_finite()) {
            let reason = format!("{} values are not whole finite rows of {dim}", values.len());
            return Err(RuntimeError::argument("centroids", reason));
        }
        Ok(Centroids { dim, values })
    }

    /// The file's bytes (what [`Centroids::parse`] reads).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of centroids `p`.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Centroid `i` `[dim]`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// The `nprobe` centroids with the highest inner product with `query` (`[dim]`), best first,
    /// ties to the lower index: the partitions a search scans. `nprobe` is clamped to `1..=p`.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Vec<usize> {
        assert_eq!(query.len(), self.dim, "probe: query length");
        let mut top = TopK::new(nprobe.clamp(1, self.len()));
        for (i, centroid) in self.values.chunks_exact(self.dim).enumerate() {
            top.push(i, centroid.iter().zip(query).map(|(c, q)| c * q).sum());
        }
        top.into_sorted().into_iter().map(|hit| hit.index).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_probes_best_first() {
        let c = Centroids::from_values(vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.6, 0.8], 2).unwrap();
        let parsed = Centroids::parse(&c.to_bytes(), "index-centroids.bin", 4, 2).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(c.probe(&[0.8, 0.6], 2), vec![3, 0]);
        assert_eq!(c.probe(&[0.0, 1.0], 9), vec![1, 3, 0, 2]);
        // Ties go to the lower partition.
        let tied = Centroids::from_values(vec![0.0, 1.0, 0.0, 1.0], 2).unwrap();
        assert_eq!(tied.probe(&[0.0, 1.0], 1), vec![0]);
    }

    #[test]
    fn a_short_or_non_finite_file_is_refused_by_name() {
        let c = Centroids::from_values(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
        let bytes = c.to_bytes();
        let short = Centroids::parse(&bytes[..12], "index-centroids.bin", 2, 2).unwrap_err();
        assert!(short.to_string().starts_with("index-centroids.bin: 12 bytes are not 2 centroids"), "{short}");
        let mut nan = bytes.clone();
        nan[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
        let err = Centroids::parse(&nan, "index-centroids.bin", 2, 2).unwrap_err();
        assert_eq!(err.to_string(), "index-centroids.bin: centroid 1: a value is not finite");
    }
}
