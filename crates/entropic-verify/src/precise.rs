//! High-precision reference arithmetic. Under construction.
