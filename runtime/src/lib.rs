//! Ports and adapters of the Threds runtime (filled in by the `threds dev` work).
