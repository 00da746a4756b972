//! Workspace-level integration tests of autoawait live in `tests/tests/`.
