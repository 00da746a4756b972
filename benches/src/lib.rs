//! Criterion benches of autoawait; see `benches/` and the report binary.
