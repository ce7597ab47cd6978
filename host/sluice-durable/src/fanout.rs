//! Data parallelism inside one batch.
//!
//! A batch holds the state locks from its first state access to its commit, so a second
//! executor thread mostly waits for the first (a profile of the order workflow found the two
//! executors taking turns, together using one core of two). The work of a batch that needs no
//! session — advancing each execution's machine, encoding its snapshot and history rows — is
//! independent per execution: it is split over the machine's cores here, and only the Tasks
//! and the writes stay on the executor's thread.

use std::sync::OnceLock;

/// Fewer items per thread than this are not worth a thread.
const MIN_PER_THREAD: usize = 8;

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// `f` of every item, in order, the items split over the cores in contiguous chunks (the
/// first on the calling thread). A panic in `f` is resumed on the calling thread, as if `f`
/// had run there.
pub(crate) fn map_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter_mut().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut chunks = items.chunks_mut(chunk);
        let first = chunks.next().expect("at least one chunk");
        let others: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter_mut().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.iter_mut().map(f).collect();
        for h in others {
            match h.join() {
                Ok(rs) => out.extend(rs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_every_item_is_seen_once() {
        for n in [0, 1, 7, 8, 15, 16, 17, 100, 1001] {
            let mut items: Vec<u64> = (0..n).collect();
            let out = map_mut(&mut items, |x| {
                *x += 1;
                *x * 2
            });
            assert_eq!(out, (1..=n).map(|x| x * 2).collect::<Vec<_>>(), "n = {n}");
            assert_eq!(items, (1..=n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let mut items: Vec<u64> = (0..64).collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map_mut(&mut items, |x| assert!(*x != 63, "the last item"))
        }));
        assert!(r.is_err());
    }
}
