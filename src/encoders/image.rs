//! EfficientNet-Lite0 image encoder (in progress).
