//! Helpers shared by the engine's integration tests (each test binary includes this module).

#![allow(dead_code)]

pub mod alloc;
pub mod corpus;
