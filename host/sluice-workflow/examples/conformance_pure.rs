//! Development aid: run the pure (Task-free) cases of a corpus directory with no stages.
//! The real command is `sluice workflow conformance DIR`.

use sluice_workflow::conformance::{Verdict, check, load, substitute};
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
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for c in &cases {
        let def = match substitute(c, &|_| Some("identity".to_owned())) {
            Ok(d) => d,
            Err(e) => {
                skip += 1;
                println!("SKIP {}: {e}", c.name);
                continue;
            }
        };
        match check(c, &def, &Identity) {
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
    println!("{pass} passed, {fail} failed, {skip} skipped");
}
