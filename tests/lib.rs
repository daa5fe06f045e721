//! End-to-end tests live in `tests/e2e/`; this empty library only gives the package a target.
