//! The embedded documents store (stub, to be written).
