//! The embedded thred store (stub, to be written).
