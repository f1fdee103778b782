//! Telemetry (pending).
