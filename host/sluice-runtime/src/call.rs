//! Driving guest calls under a deadline that covers host calls too.
//!
//! Epoch interruption stops a guest only where Cranelift put a check: function entries and
//! loop headers. A guest blocked in a host call (`wasi:io/poll`, a clock subscription, a
//! stream read; `std::thread::sleep` is all of these) never reaches one, so with synchronous
//! calls it held its worker thread for as long as it liked. Guest calls therefore run on
//! wasmtime's fibers (`call_async`), with WASI linked in its async form: a host call that
//! would block returns `Pending` instead, and the whole call is raced against its deadline.
//! When the deadline wins, the call's future is dropped, which unwinds the guest's fiber;
//! the instance is then recycled like after any trap. Pure computation is still stopped by
//! the epoch, so both ways a call ends within a tick or two of its deadline.
//!
//! Each worker drives its calls on a current-thread tokio runtime of its own, on the worker's
//! thread: no hand-off to another thread per call, and the runtime's timer and I/O drivers
//! run only while a call is in progress.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::engine::Ticker;

/// A guest call was still blocked in a host call when its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the invocation was blocked in a host call when its deadline of {0:?} passed")]
pub(crate) struct BlockedPastDeadline(pub(crate) Duration);

/// Runs guest calls to completion on the current thread, which must not be driving an async
/// runtime itself (workers run on threads of their own).
#[derive(Default)]
pub(crate) struct Driver {
    /// Built on the first call, on the thread that makes it: a worker may be created (and
    /// dropped) on an async thread, where building is fine but blocking is not.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Never blocks, so a worker may be dropped anywhere, async threads included.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Driver {
    /// Run `call` until it finishes or `due` (the instant `deadline` after its start, read once
    /// by the caller, who also bounds the call's lock waits by it) passes, keeping the epoch
    /// ticking meanwhile.
    ///
    /// Called from a thread that drives an async runtime (a worker used straight from async
    /// code), the call runs on a scoped thread instead, since blocking that thread would
    /// stall its tasks (and tokio refuses it); workers on threads of their own never pay this.
    pub(crate) fn run<T: Send>(
        &mut self,
        ticker: &Ticker,
        deadline: Duration,
        due: Instant,
        call: impl Future<Output = wasmtime::Result<T>> + Send,
    ) -> wasmtime::Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.block_on(ticker, deadline, due, call))
                    .join()
                    .unwrap_or_else(|_| Err(wasmtime::Error::msg("a guest call's thread panicked")))
            });
        }
        self.block_on(ticker, deadline, due, call)
    }

    fn block_on<T>(
        &mut self,
        ticker: &Ticker,
        deadline: Duration,
        due: Instant,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        let rt = self.rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a current-thread tokio runtime")
        });
        let _ticking = ticker.enter();
        let mut call = std::pin::pin!(call);
        // The fast path, taken by every call that does not block in a host call: poll once
        // inside the runtime's context (so WASI's host functions find it) but outside
        // `block_on`, and without a timer. Entering `block_on` and registering a timer for
        // each call cost ~0.5 µs, a third of the whole platform's share of a call.
        {
            let _entered = rt.enter();
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(result) = call.as_mut().poll(&mut cx) {
                return result;
            }
        }
        // The guest is blocked in a host call: wait for it, or for the deadline. Polling
        // again with `block_on`'s waker replaces the no-op one everywhere the call waits.
        rt.block_on(async {
            let mut expired = std::pin::pin!(tokio::time::sleep_until(due.into()));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = call.as_mut().poll(cx) {
                    return Poll::Ready(result);
                }
                if expired.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(wasmtime::Error::new(BlockedPastDeadline(deadline))));
                }
                Poll::Pending
            })
            .await
        })
    }
}
