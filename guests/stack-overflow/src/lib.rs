//! `stack-overflow` (adversarial): `handle` recurses without bound; every frame holds a 1 KiB
//! array that escapes through `black_box` and is read after the recursive call, so the
//! recursion can be neither turned into a loop nor have its frames shrunk. It ends only when
//! the host's stack limit traps it.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

struct Stage;

#[inline(never)]
fn descend(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[(depth % 1024) as usize] = depth as u8;
    black_box(&mut frame);
    // Never true at run time, but opaque to the compiler: keeps the function from being
    // flagged (and treated) as unconditionally recursive.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = descend(black_box(depth + 1));
    below.wrapping_add(u64::from(frame[black_box(0)]))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        black_box(event);
        let depth = descend(0);
        Ok(depth.to_string().into_bytes())
    }
}

export!(Stage);
