//! MiniLM text encoder (in progress).
