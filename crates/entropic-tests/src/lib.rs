//! Holder package for the workspace-level tests in the top-level `tests/`
//! folder (Cargo needs a package to own them). It exports nothing.
