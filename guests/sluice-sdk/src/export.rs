//! [`export_stage!`](crate::export_stage) and what its expansion refers to. Not a public API:
//! the items here are `pub` only because the macro expands in the stage's crate.

use crate::Stage;
use crate::bindings::exports::sluice::platform::{batch_handler, handler};
use crate::bindings::sluice::platform::types::{Event, StageResult};

/// Implements the generated `Guest` traits for the export glue, forwarding to stage `S`.
#[doc(hidden)]
pub struct Exported<S>(std::marker::PhantomData<S>);

impl<S: Stage> handler::Guest for Exported<S> {
    fn handle(event: Event) -> StageResult {
        crate::stage::handle::<S>(event)
    }
}

impl<S: Stage> batch_handler::Guest for Exported<S> {
    fn handle_batch(events: Vec<Event>) -> Vec<StageResult> {
        crate::stage::handle_batch::<S>(events)
    }
}

/// Length of [`STAGE_WORLD`].
#[doc(hidden)]
pub const STAGE_WORLD_LEN: usize =
    include_bytes!(concat!(env!("OUT_DIR"), "/stage-world.wasm")).len();

/// The `stage` world (its imports and the `handler` export) encoded by the build script, for the
/// `component-type` section of a stage exported without `batch`.
#[doc(hidden)]
pub const STAGE_WORLD: [u8; STAGE_WORLD_LEN] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/stage-world.wasm"));

/// Exports a [`Stage`](crate::Stage) as the stage's component.
///
/// `export_stage!(MyStage)` exports `handler.handle` (the `stage` world): the host runs each
/// event in a call of its own. `export_stage!(MyStage, batch)` also exports
/// `batch-handler.handle-batch` (the `batch-stage` world), through
/// [`Stage::handle_batch`](crate::Stage::handle_batch), and the host hands it whole batches.
///
/// Invoke it once, in the crate that builds the component (a `cdylib`), outside any function.
///
/// ```no_run
/// use sluice_sdk::{Bytes, Context, Error, Stage, export_stage};
///
/// struct Echo;
///
/// impl Stage for Echo {
///     type Input = Bytes;
///     type Output = Bytes;
///
///     fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
///         Ok(data)
///     }
/// }
///
/// export_stage!(Echo, batch);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_stage {
    ($stage:ty) => {
        const _: () = {
            // wit-bindgen's export macros take an identifier, not a type.
            type __SluiceExported = $crate::export::Exported<$stage>;
            $crate::bindings::exports::sluice::platform::handler::__export_sluice_platform_handler_0_1_0_cabi!(
                __SluiceExported with_types_in $crate::bindings::exports::sluice::platform::handler
            );
            // Declares the `stage` world for wit-component, which builds the component from
            // the `component-type` sections linked into the module and strips them. As in
            // wit-bindgen's own macro, no `#[used]`: with it the bytes also land in the data
            // segment (2 KB of linear memory per instance).
            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "component-type:sluice-sdk:sluice:platform@0.1.0:stage:imports and exports")]
            #[doc(hidden)]
            pub static __SLUICE_STAGE_WORLD: [u8; $crate::export::STAGE_WORLD_LEN] =
                $crate::export::STAGE_WORLD;
        };
    };
    ($stage:ty, batch) => {
        const _: () = {
            type __SluiceExported = $crate::export::Exported<$stage>;
            // wit-bindgen's own export macro for the `batch-stage` world: both exports and the
            // world's section.
            $crate::bindings::export!(__SluiceExported with_types_in $crate::bindings);
        };
    };
}
