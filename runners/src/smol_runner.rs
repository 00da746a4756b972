//! smol runners: see issue 3.
