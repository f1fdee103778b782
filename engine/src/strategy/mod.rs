//! Strategies (pending).
