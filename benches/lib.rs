//! Shared fixtures for strata benchmarks.
