//! Event sink (pending).
