//! Development aid: run the pure (Task-free) cases of a corpus directory with no stages.
//! The real command is `sluice workflow conformance DIR`.

use sluice_workflow::conformance::{CorpusObjects, Verdict, check_full, load, substitute};
use sluice_workflow::env::{TaskRequest, TaskRunner};
use sluice_workflow::error::StatesError;

struct Identity;
impl TaskRunner for Identity {
    fn run(&self, req: &TaskRequest) -> Result<serde_json::Value, StatesError> {
        Ok(req.input.clone())
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("a corpus directory");
    let cases = load(std::path::Path::new(&dir)).expect("reading the cases");
    let objects = CorpusObjects::parse(include_str!(
        "../../../workflows/conformance/item-reader-objects.json"
    ))
    .expect("the ItemReader fixtures parse");
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    let (mut hist_ok, mut hist_all) = (0, 0);
    for c in &cases {
        let def = match substitute(c, &|_| Some("identity".to_owned())) {
            Ok(d) => d,
            Err(e) => {
                skip += 1;
                println!("SKIP {}: {e}", c.name);
                continue;
            }
        };
        let checked = check_full(c, &def, &Identity, &objects.for_case(c));
        if checked.verdict == Verdict::Passed
            && let Some(h) = checked.history
        {
            hist_all += 1;
            if h {
                hist_ok += 1;
            } else if std::env::var_os("SHOW_HISTORY").is_some() {
                println!("HISTORY {}", c.name);
                println!("   AWS {:?}", c.history_event_types);
                let m = sluice_workflow::definition::parse(&def).expect("parsed before");
                let clock = sluice_workflow::run::ManualClock::new(0);
                let e = sluice_workflow::run::run(
                    &m,
                    "w",
                    "e",
                    c.input.clone(),
                    &Identity,
                    &clock,
                    &sluice_workflow::env::SplitMix::new(1),
                );
                println!(
                    "  ours {:?}",
                    e.history
                        .iter()
                        .map(|h| h.kind.as_str())
                        .collect::<Vec<_>>()
                );
            }
        }
        match checked.verdict {
            Verdict::Passed => pass += 1,
            Verdict::Failed(d) => {
                fail += 1;
                println!("FAIL {}: {d}", c.name);
            }
            Verdict::Skipped(r) => {
                skip += 1;
                println!("SKIP {}: {r}", c.name);
            }
        }
    }
    println!("history event types as AWS's in {hist_ok} of {hist_all} passing cases");
    println!("{pass} passed, {fail} failed, {skip} skipped");
}
