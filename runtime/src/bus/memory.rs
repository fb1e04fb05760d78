//! The embedded bus: an in-process partitioned log with consumer groups (stub, to be written).
