//! The Amazon States Language (ASL) engine, as AWS Step Functions runs it.
//!
//! This crate knows nothing of wasmtime, redb, NATS or axum: a Task reaches a stage through
//! [`env::TaskRunner`], time through [`env::Clock`], randomness through [`env::Random`]. The
//! pieces, bottom up:
//! - [`jsonpath`]: a Jayway-compatible JSONPath evaluator (AWS's JSONPath dialect), with
//!   AWS's error texts and the write-back `ResultPath` needs;
//! - [`intrinsics`]: the `States.*` intrinsic functions;
//! - [`jsonata`]: the JSONata query language on `jsonata-core`, with AWS's added functions;
//! - [`choice`]: Choice rules of the JSONPath query language;
//! - [`definition`]: parsing and validating a definition into a typed [`definition::Machine`];
//! - [`machine`]: the interpreter, a deterministic machine stepping over a serializable
//!   [`machine::Execution`];
//! - [`run`]: an in-memory driver that runs an execution to its end;
//! - [`resource`] and [`token`]: what a Task's Resource names, and the task tokens of the
//!   `.waitForTaskToken` pattern.

pub mod choice;
pub mod conformance;
pub mod definition;
pub mod env;
pub mod error;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod machine;
pub mod resource;
pub mod run;
pub mod time;
pub mod token;
