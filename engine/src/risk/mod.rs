//! Risk (pending).
