//! `sluice:platform/batch`: a batch handler announces which event it is working on, so its
//! state calls land in that event's write set.

use crate::bindings::batch::Host;
use crate::host::{ContractViolation, HostState};

impl Host for HostState {
    fn begin_event(&mut self, index: u32) -> wasmtime::Result<()> {
        let Some(cursor) = self.batch.as_mut() else {
            return Err(ContractViolation("begin-event called outside handle-batch".into()).into());
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        if index >= cursor.ids.len() || index < cursor.current {
            return Err(ContractViolation(format!(
                "begin-event({index}) out of order: batch of {} at event {}",
                cursor.ids.len(),
                cursor.current
            ))
            .into());
        }
        if index == cursor.current {
            return Ok(());
        }
        // Keep the previous event's writes tentatively: whether it succeeded is only known when
        // handle-batch returns, and if any event failed the worker rolls the whole batch back
        // and re-runs it event by event.
        let emitted = self.session.finish_event(true);
        cursor.emitted[cursor.current] = emitted;
        cursor.current = index;
        let id = cursor.ids[index].clone();
        self.session.begin_event(&id);
        // The previous event's bytes stay held (tentatively kept), and a store failure it met
        // still makes the call the platform's fault.
        let held = self.budget.batch_before + self.budget.held();
        let fault = self.store_fault.take();
        self.start_event(&id, held);
        self.store_fault = fault;
        Ok(())
    }
}
