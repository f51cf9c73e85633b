//! Pretrained encoder weights: where they live on disk and how legacy formats are converted.
