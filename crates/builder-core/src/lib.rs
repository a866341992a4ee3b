//! strata's build engine.
