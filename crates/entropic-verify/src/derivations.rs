//! Derivations as data, and the generator of `docs/derivations/`. Under construction.
