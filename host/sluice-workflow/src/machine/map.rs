//! Map and Parallel: evaluating a Map's items (ItemsPath/Items, ItemSelector, ItemBatcher,
//! its limits), and driving the children of both under MaxConcurrency and the tolerated
//! failures.

use serde_json::{Map, Value, json};

use super::io::{self, Ctx};
use super::states::{eval_uint, now_of};
use super::{Children, Env, Execution, Phase, reader};
use crate::definition::{Dynamic, Items, Kind, Lang, Machine, MapState, State};
use crate::error::{StatesError, names};

impl Execution {
    /// A Map enters: its items, their inputs, its limits; then its children start.
    #[allow(
        clippy::too_many_arguments,
        reason = "the pieces of one state's evaluation"
    )]
    pub(super) fn start_map(
        &mut self,
        id: u64,
        state: &State,
        m: &MapState,
        effective: Value,
        states: &Value,
        ctx: &Ctx<'_>,
        context: &Value,
        def: &Machine,
        env: &Env<'_>,
    ) -> Result<(), StatesError> {
        let jp = state.lang == Lang::JsonPath;
        let from_reader = m.item_reader.is_some();
        let items = if let Some(reader) = &m.item_reader {
            // AWS starts the Map, then evaluates MaxItems (its errors are the state's,
            // prefixed by `enter`), then reads: a failed read fails the Map run unprefixed.
            self.push(Some(id), "MapStateStarted", json!({}), now_of(env));
            let limit = reader::max_items(reader, &effective, states, ctx)?;
            match reader::read(reader, limit, &effective, states, ctx, env.objects) {
                Ok(items) => Ok(items),
                Err(e) => {
                    for kind in ["MapRunStarted", "MapRunFailed"] {
                        self.push(Some(id), kind, json!({}), now_of(env));
                    }
                    // A failed read is the Map's own error: Retry and Catch see it.
                    self.fail(id, e, true, def, env);
                    return Ok(());
                }
            }
        } else {
            Self::items(m, jp, &effective, states, ctx)
        };
        // AWS fails a Map whose items cannot be read before it starts: EvaluationFailed
        // (JSONata), MapStateFailed, then the execution fails.
        let items = match items {
            Ok(items) => items,
            Err(e) => {
                let e = Self::prefixed(&self.runs[&id], e);
                if e.error == names::QUERY_EVALUATION_ERROR {
                    let name = state.name.clone();
                    self.push(
                        Some(id),
                        "EvaluationFailed",
                        json!({"error": e.error, "cause": e.cause, "state": name}),
                        now_of(env),
                    );
                }
                self.push(Some(id), "MapStateFailed", json!({}), now_of(env));
                self.runs.get_mut(&id).expect("run exists").phase = Phase::Done(Err(e));
                return Ok(());
            }
        };
        let uint = |d: &Option<Dynamic<u64>>, field: &str| {
            d.as_ref()
                .map(|d| eval_uint(d, field, "non-negative", &effective, states, ctx))
                .transpose()
        };
        let concurrency = uint(&m.max_concurrency, "MaxConcurrency")?;
        // AWS's order: MaxConcurrency is read before the Map starts, the tolerances after.
        if !from_reader {
            self.push(
                Some(id),
                "MapStateStarted",
                json!({"length": items.len()}),
                now_of(env),
            );
        }
        let tolerated_count = uint(&m.tolerated_count, "ToleratedFailureCount")?;
        let tolerated_percentage = match &m.tolerated_percentage {
            None => None,
            Some(Dynamic::Literal(p)) => Some(*p),
            Some(Dynamic::Path(p)) => {
                let v = io::select(p, &effective, ctx)?;
                let f = v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| {
                    let shown = match &v { Value::String(s) => s.clone(), o => o.to_string() };
                    StatesError::new(names::RUNTIME, format!("The ToleratedFailurePercentagePath field refers to value \"{shown}\" which is not a valid float: {}", p.text()))
                })?;
                Some(f)
            }
            Some(Dynamic::Expr(t)) => {
                io::template(t, "ToleratedFailurePercentage", states, ctx)?.as_f64()
            }
        };
        if tolerated_percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
            return Err(StatesError::new(
                names::RUNTIME,
                "ToleratedFailurePercentage must be between 0 and 100.",
            ));
        }
        if m.distributed {
            self.push(Some(id), "MapRunStarted", json!({}), now_of(env));
        }
        // The iterations' inputs: ItemSelector over each item (with `$$.Map.Item`), then
        // ItemBatcher's grouping.
        let run = self.runs[&id].clone();
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let v = if let Some(sel) = &m.item_selector {
                let c = self.context(&run, state, Some((i, item)));
                io::payload(
                    sel,
                    &effective,
                    &Ctx {
                        context: &c,
                        vars: ctx.vars,
                        random: ctx.random,
                    },
                )?
            } else if let Some(t) = &m.item_selector_template {
                let c = self.context(&run, state, Some((i, item)));
                let st = io::states(&run.input, None, None, &c);
                io::template(
                    t,
                    "ItemSelector",
                    &st,
                    &Ctx {
                        context: &c,
                        vars: ctx.vars,
                        random: ctx.random,
                    },
                )?
            } else {
                item.clone()
            };
            inputs.push(v);
        }
        if let Some(b) = &m.batcher {
            let max_items = uint(&b.max_items, "MaxItemsPerBatch")?
                .unwrap_or(u64::MAX)
                .max(1);
            let max_bytes = uint(&b.max_bytes, "MaxInputBytesPerBatch")?.unwrap_or(u64::MAX);
            let mut batches = Vec::new();
            let mut cur: Vec<Value> = Vec::new();
            let mut bytes = 0_u64;
            for v in inputs {
                let n = serde_json::to_vec(&v).map_or(0, |b| b.len() as u64);
                if !cur.is_empty() && (cur.len() as u64 >= max_items || bytes + n > max_bytes) {
                    batches.push(std::mem::take(&mut cur));
                    bytes = 0;
                }
                bytes += n;
                cur.push(v);
            }
            if !cur.is_empty() {
                batches.push(cur);
            }
            inputs = batches
                .into_iter()
                .map(|items| {
                    let mut o = Map::new();
                    if let Some(bi) = &b.batch_input {
                        o.insert("BatchInput".into(), bi.clone());
                    }
                    o.insert("Items".into(), Value::Array(items));
                    Value::Object(o)
                })
                .collect();
        }
        let _ = context;
        let n = inputs.len();
        self.runs.get_mut(&id).expect("run exists").phase = Phase::Children(Box::new(Children {
            map: true,
            effective,
            inputs: inputs.into_iter().map(Some).collect(),
            results: vec![None; n],
            running: 0,
            next: 0,
            concurrency: match concurrency {
                None | Some(0) => usize::MAX,
                Some(c) => usize::try_from(c).unwrap_or(usize::MAX),
            },
            tolerated_count,
            tolerated_percentage,
            failures: 0,
            finished: 0,
            distributed: m.distributed,
        }));
        Ok(())
    }

    /// A Map's items from its input: ItemsPath (JSONPath) or Items (JSONata).
    fn items(
        m: &MapState,
        jp: bool,
        effective: &Value,
        states: &Value,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Value>, StatesError> {
        let items_v = match &m.items {
            Items::Path(None) | Items::Template(None) => {
                if jp {
                    effective.clone()
                } else {
                    states["input"].clone()
                }
            }
            Items::Path(Some(p)) => io::select(p, effective, ctx)?,
            Items::Template(Some(t)) => io::template(t, "Items", states, ctx)?,
        };
        match items_v {
            Value::Array(items) => Ok(items),
            other => Err(StatesError::new(
                if jp {
                    names::RUNTIME
                } else {
                    names::QUERY_EVALUATION_ERROR
                },
                format!(
                    "Map state input must be an array but was: {}",
                    serde_json::to_string(&other).unwrap_or_default()
                ),
            )),
        }
    }

    /// Drive a Parallel's branches or a Map's iterations; `true` if anything moved.
    pub(super) fn children(
        &mut self,
        id: u64,
        mut c: Children,
        def: &Machine,
        env: &Env<'_>,
    ) -> bool {
        let now = now_of(env);
        let state: &State = Self::state_of(def, &self.runs[&id]);
        let mut progressed = false;
        // A failure: Parallel fails at once; Map once past its tolerance.
        // Counted as children finish (see `step`): scanning every slot on every step would
        // make a Map over n items cost O(n²).
        if c.failures > 0
            && let Some(first) = c
                .results
                .iter()
                .flatten()
                .find_map(|r| r.as_ref().err().cloned())
        {
            let first = &first;
            let total = c.results.len().max(1) as f64;
            let tolerated = c.map
                && (c.tolerated_count.is_some_and(|n| c.failures <= n)
                    || c.tolerated_percentage
                        .is_some_and(|p| (c.failures as f64) * 100.0 / total <= p));
            if !tolerated {
                self.cancel_children(id);
                let err =
                    if c.map && (c.tolerated_count.is_some() || c.tolerated_percentage.is_some()) {
                        StatesError::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        )
                    } else {
                        first.clone()
                    };
                if c.distributed {
                    self.push(Some(id), "MapRunFailed", json!({}), now);
                }
                self.fail(id, err, true, def, env);
                return true;
            }
        }
        // Start what the concurrency allows.
        while c.running < c.concurrency && c.next < c.inputs.len() {
            let slot = c.next;
            c.next += 1;
            c.running += 1;
            let input = c.inputs[slot].take().unwrap_or(Value::Null);
            let run = &self.runs[&id];
            let (addr_idx, start, label) = match &state.kind {
                Kind::Parallel { branches } => (
                    slot,
                    branches[slot].start_at.clone(),
                    format!("{}{}/{slot}/", run.label, state.name),
                ),
                Kind::Map(m) => (
                    0,
                    m.processor.start_at.clone(),
                    format!("{}{}/{slot}/", run.label, state.name),
                ),
                _ => unreachable!("children belong to Parallel and Map states"),
            };
            let mut addr = run.addr.clone();
            addr.push((state.name.clone(), addr_idx));
            let vars = run.vars.clone();
            let quiet = run.quiet || c.distributed;
            if c.map && !quiet {
                self.push(
                    Some(id),
                    "MapIterationStarted",
                    json!({"index": slot, "name": state.name}),
                    now,
                );
            }
            self.spawn(addr, Some((id, slot)), label, start, input, vars, quiet);
            progressed = true;
        }
        if c.finished == c.results.len() {
            let results: Vec<Value> = std::mem::take(&mut c.results)
                .into_iter()
                .map(|r| match r.expect("all present") {
                    Ok(v) => v,
                    Err(e) => json!({"Error": e.error, "Cause": e.cause}),
                })
                .collect();
            // AWS records no ParallelStateSucceeded: the Parallel state just exits.
            if c.map {
                if c.distributed {
                    self.push(Some(id), "MapRunSucceeded", json!({}), now);
                }
                self.push(Some(id), "MapStateSucceeded", json!({}), now);
            }
            let context = self.context(&self.runs[&id], state, None);
            let r = if state.lang == Lang::JsonPath {
                self.finish_jsonpath(id, state, Value::Array(results), env, &context)
            } else {
                self.finish_jsonata(id, state, Some(Value::Array(results)), env, &context)
            };
            if let Err(e) = r {
                self.processing_failed(id, e, def, env);
            }
            return true;
        }
        if let Some(run) = self.runs.get_mut(&id) {
            run.phase = Phase::Children(Box::new(c));
        }
        progressed
    }
}
