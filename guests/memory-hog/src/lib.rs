//! `memory-hog` (adversarial): `handle` allocates 1 MiB chunks forever, writes to every page of
//! each so it is really committed, and keeps all of them alive. It ends only when the host's
//! memory limit refuses `memory.grow` (the allocation failure aborts, which traps).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use std::hint::black_box;

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageResult};

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

struct Stage;

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        black_box(event);
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            for (i, page) in chunk.chunks_mut(PAGE).enumerate() {
                page[0] = black_box(i as u8 | 1);
            }
            chunks.push(black_box(chunk));
            black_box(&mut chunks);
        }
    }
}

export!(Stage);
