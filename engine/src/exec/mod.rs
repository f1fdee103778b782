//! Paper execution (pending).
