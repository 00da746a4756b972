//! tokio runners: see issue 3.
