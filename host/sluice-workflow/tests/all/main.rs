//! The engine's own integration tests: one binary, a module per language feature.

#![allow(
    clippy::needless_pass_by_value,
    clippy::redundant_clone,
    reason = "tests build JSON values inline and pass them by value for readability"
)]

mod callback;
mod choice;
mod context;
mod fail;
mod history_modes;
mod intrinsics;
mod item_reader;
mod jsonata;
mod map;
mod parallel;
mod pass;
mod paths;
mod props;
mod publish;
mod retry_catch;
mod scenarios;
mod support;
mod task;
mod validation;
mod variables;
mod wait;
