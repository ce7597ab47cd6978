//! The Amazon States Language (ASL) engine, as AWS Step Functions runs it.
//!
//! This crate knows nothing of wasmtime, redb, NATS or axum: a Task reaches a stage through
//! [`env::TaskRunner`], time through [`env::Clock`], randomness through [`env::Random`]. The
//! pieces, bottom up:
//! - [`jsonpath`]: a Jayway-compatible JSONPath evaluator (AWS's JSONPath dialect), with
//!   AWS's error texts and the write-back `ResultPath` needs;
//! - [`intrinsics`]: the `States.*` intrinsic functions;
//! - [`jsonata`]: the JSONata query language on `jsonata-core`, with AWS's added functions;

pub mod env;
pub mod error;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
