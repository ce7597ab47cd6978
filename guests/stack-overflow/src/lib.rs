//! `stack-overflow` (adversarial): `handle` recurses without bound. Every frame holds a stack
//! array of 32 opaque (`black_box`) values that stay live across the recursive call and are
//! folded into the result after it, so the recursion can be neither turned into a loop nor have
//! its frames shrunk. The array is scalar-replaced into WebAssembly locals, so the frames grow
//! the engine's native call stack (not the shadow stack in linear memory): the host sees a
//! genuine stack-exhaustion trap rather than an out-of-bounds access.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

const FRAME_WORDS: usize = 32;

struct Stage;

#[inline(never)]
fn descend(depth: u64) -> u64 {
    let mut frame = [0u64; FRAME_WORDS];
    for (i, slot) in frame.iter_mut().enumerate() {
        *slot = black_box(depth.wrapping_mul(i as u64 + 1));
    }
    // Never true at run time, but opaque to the compiler: keeps the function from being
    // flagged (and treated) as unconditionally recursive.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = descend(black_box(depth + 1));
    frame.iter().fold(below, |acc, v| acc.rotate_left(1) ^ v)
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        black_box(event);
        let depth = descend(0);
        Ok(depth.to_string().into_bytes())
    }
}

export!(Stage);
