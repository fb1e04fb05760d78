//! Tests specific to the embedded bus (the contract suite covers the port).
