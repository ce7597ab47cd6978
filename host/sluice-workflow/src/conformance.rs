//! Running recorded Step Functions cases (the format of LocalStack-derived corpora: a
//! definition, an input, and what AWS produced) and comparing results as the corpus's
//! README prescribes: JSON-equal outputs (number types included), exact error names and
//! causes, redaction tokens as wildcards.

use std::path::Path as FsPath;

use serde_json::Value;

use crate::definition;
use crate::env::{MemoryObjects, Objects, SplitMix, TaskRunner};
use crate::machine::{Execution, OBJECT_READ_FAILED, Status};
use crate::run::{ManualClock, World, run_with};

/// One case file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Case {
    /// Unique id.
    pub name: String,
    /// The definition as sent to AWS.
    pub definition: Value,
    /// The execution input.
    pub input: Value,
    /// What AWS produced.
    pub expected: Expected,
    /// Whether the recorded result holds redacted or random values.
    #[serde(default)]
    pub nondeterministic: bool,
    /// Redaction tokens found in `expected`.
    #[serde(default)]
    pub placeholders: Vec<String>,
    /// Where the test inserted run-time values (Lambda ARNs).
    #[serde(default)]
    pub runtime_substitutions: Vec<Substitution>,
    /// For Task cases: what the Lambda functions did.
    #[serde(default)]
    pub task_behaviour: Option<TaskBehaviour>,
    /// The recorded history's event types, in order.
    #[serde(default)]
    pub history_event_types: Vec<String>,
}

/// What AWS produced.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Expected {
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The output (succeeded).
    pub output: Option<Value>,
    /// The error name (failed).
    pub error: Option<String>,
    /// The cause (failed).
    pub cause: Option<String>,
    /// The cause, when it was a JSON object.
    pub cause_json: Option<Value>,
}

/// A run-time value the test put into the definition.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Substitution {
    /// Keys (and indexes) down to the value.
    pub path: Vec<Value>,
    /// The `${...}` text now there.
    pub placeholder: String,
}

/// The Lambda functions a Task case used.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TaskBehaviour {
    /// Repository paths of their handlers, in creation order.
    #[serde(default)]
    pub lambda_sources: Vec<String>,
}

/// What became of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As AWS.
    Passed,
    /// Different: the first difference.
    Failed(String),
    /// Not run, with the reason.
    Skipped(String),
}

/// Read every `*.json` case in `dir`, sorted by file name.
pub fn load(dir: &FsPath) -> std::io::Result<Vec<Case>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut cases = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p)?;
        let case: Case = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", p.display()),
            )
        })?;
        cases.push(case);
    }
    Ok(cases)
}

/// The stage a Lambda handler source behaves like, if the caller has one: `stage_for` maps
/// a handler's repository path to a stage name.
pub fn substitute(
    case: &Case,
    stage_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    let mut def = case.definition.clone();
    let sources = case
        .task_behaviour
        .as_ref()
        .map(|t| t.lambda_sources.clone())
        .unwrap_or_default();
    for s in &case.runtime_substitutions {
        // One function per case in the corpus's Task cases: the first source.
        let source = sources
            .first()
            .ok_or("a substitution without a Lambda source")?;
        let stage = stage_for(source).ok_or_else(|| format!("no stage behaves like {source}"))?;
        let mut at = &mut def;
        for k in &s.path {
            at = match k {
                Value::String(k) => at.get_mut(k.as_str()),
                Value::Number(i) => i
                    .as_u64()
                    .and_then(|i| at.get_mut(usize::try_from(i).ok()?)),
                _ => None,
            }
            .ok_or("a substitution path that is not in the definition")?;
        }
        // The test put a Lambda ARN there: keep it one, so the Task runs the stage as a
        // Lambda function (Lambda history events and causes), as it ran on AWS.
        *at = Value::String(format!(
            "arn:aws:lambda:us-east-1:111111111111:function:{stage}"
        ));
    }
    // `lambda:invoke` cases name the function in their input or Parameters; leave those.
    Ok(def)
}

/// The objects the corpus's ItemReader cases read: their tests uploaded them before running,
/// and the corpus does not hold them. A fixture file gives them (in this repository
/// `workflows/conformance/item-reader-objects.json`): `{"bucket": B, "tests": {TEST: {KEY:
/// BODY}}}`, TEST being a case's name without its `[parameter]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CorpusObjects {
    /// The bucket every case's input names.
    bucket: String,
    /// Test → key → body.
    tests: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl CorpusObjects {
    /// Read a fixture file's text.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The objects `case`'s test uploaded (none if the fixtures do not know it).
    pub fn for_case(&self, case: &Case) -> MemoryObjects {
        let test = case
            .name
            .split_once('[')
            .map_or(case.name.as_str(), |(t, _)| t);
        let mut objects = MemoryObjects::new();
        for (key, body) in self.tests.get(test).into_iter().flatten() {
            objects.put(&self.bucket, key, body.as_bytes());
        }
        objects
    }

    /// How many tests the fixtures hold objects for.
    pub fn len(&self) -> usize {
        self.tests.len()
    }

    /// Whether they hold none.
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }
}

/// Run one case with `tasks` and compare.
pub fn check(case: &Case, def: &Value, tasks: &dyn TaskRunner, objects: &dyn Objects) -> Verdict {
    check_full(case, def, tasks, objects).verdict
}

/// A case's verdict, and whether its history matched AWS's event types (the stricter check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The verdict on status, output, error and cause.
    pub verdict: Verdict,
    /// See [`history_matches`]; `None` when not compared.
    pub history: Option<bool>,
}

/// Run one case with `tasks`, compare, and compare the history's event types too.
pub fn check_full(
    case: &Case,
    def: &Value,
    tasks: &dyn TaskRunner,
    objects: &dyn Objects,
) -> Checked {
    let machine = match definition::parse(def) {
        Ok(m) => m,
        Err(e) => {
            return Checked {
                verdict: Verdict::Failed(format!("refused: {e}")),
                history: None,
            };
        }
    };
    let clock = ManualClock::new(1_700_000_000_000);
    let random = SplitMix::new(42);
    let exec = run_with(
        &machine,
        "conformance",
        // Its own name per case: Task ids (event ids) then differ between cases.
        &case.name,
        case.input.clone(),
        &World {
            tasks,
            clock: &clock,
            random: &random,
            objects,
        },
    );
    let verdict = compare(case, &exec);
    if let (Verdict::Failed(_), Some(e)) = (&verdict, &exec.error) {
        // Not a difference from AWS: the case needs what this run lacks.
        let skip = if let Some(what) = e
            .cause
            .strip_prefix(crate::machine::ITEM_READER_UNSUPPORTED)
        {
            Some(format!(
                "its Map reads items with an ItemReader Sluice does not serve ({what})"
            ))
        } else {
            e.cause.strip_prefix(OBJECT_READ_FAILED).map(|why| {
                format!(
                    "its Map reads an object its test uploaded, which neither the corpus nor the fixtures hold ({why})"
                )
            })
        };
        if let Some(reason) = skip {
            return Checked {
                verdict: Verdict::Skipped(reason),
                history: None,
            };
        }
    }
    Checked {
        verdict,
        history: history_matches(case, &exec),
    }
}

/// Whether `exec`'s history has the event types AWS recorded: in order, or (where branches
/// or iterations interleave) as the same multiset. `None` when the case recorded none.
pub fn history_matches(case: &Case, exec: &Execution) -> Option<bool> {
    if case.history_event_types.is_empty() {
        return None;
    }
    let mut got: Vec<&str> = exec.history.iter().map(|e| e.kind.as_str()).collect();
    let mut want: Vec<&str> = case
        .history_event_types
        .iter()
        .map(String::as_str)
        .collect();
    if got == want {
        return Some(true);
    }
    let text = case.definition.to_string();
    if text.contains("\"Parallel\"") || text.contains("\"Map\"") {
        got.sort_unstable();
        want.sort_unstable();
        return Some(got == want);
    }
    Some(false)
}

/// Compare an ended execution with the case's expectation.
pub fn compare(case: &Case, exec: &Execution) -> Verdict {
    let e = &case.expected;
    let tokens = &case.placeholders;
    match (e.status.as_str(), exec.status) {
        ("SUCCEEDED", Status::Succeeded) => {
            let got = exec.output.clone().unwrap_or(Value::Null);
            let want = e.output.clone().unwrap_or(Value::Null);
            match diff(&want, &got, tokens, "$") {
                None => Verdict::Passed,
                Some(d) => Verdict::Failed(d),
            }
        }
        ("FAILED", Status::Failed | Status::TimedOut) => {
            let err = exec
                .error
                .clone()
                .unwrap_or_else(|| crate::error::StatesError::new("", ""));
            let got_error = (!err.error.is_empty()).then_some(err.error.as_str());
            if got_error != e.error.as_deref() {
                return Verdict::Failed(format!(
                    "error {got_error:?}, AWS {:?} (cause {:?})",
                    e.error, err.cause
                ));
            }
            let got_cause = (!err.cause.is_empty()).then_some(err.cause.as_str());
            if let Some(want) = &e.cause_json {
                return match got_cause.and_then(|c| serde_json::from_str::<Value>(c).ok()) {
                    Some(got) => match diff(want, &got, tokens, "cause") {
                        None => Verdict::Passed,
                        Some(d) => Verdict::Failed(d),
                    },
                    None => {
                        Verdict::Failed(format!("cause {got_cause:?} is not the JSON AWS gave"))
                    }
                };
            }
            match (e.cause.as_deref(), got_cause) {
                (None, None) => Verdict::Passed,
                (Some(w), Some(g)) if text_matches(w, g, tokens) => Verdict::Passed,
                (w, g) => Verdict::Failed(format!("cause {g:?}, AWS {w:?}")),
            }
        }
        (want, got) => Verdict::Failed(format!(
            "status {got:?}, AWS {want}; error {:?}; output {}",
            exec.error,
            exec.output
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
        )),
    }
}

/// The first difference between `want` (with wildcards) and `got`.
fn diff(want: &Value, got: &Value, tokens: &[String], at: &str) -> Option<String> {
    match (want, got) {
        (Value::String(w), Value::String(g)) if text_matches(w, g, tokens) => None,
        (Value::String(w), g) if is_token(w, tokens) => {
            let _ = g;
            None
        }
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    None => return Some(format!("{at}.{k}: missing, AWS {wv}")),
                    Some(gv) => {
                        if let Some(d) = diff(wv, gv, tokens, &format!("{at}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys()
                .find(|k| !w.contains_key(*k))
                .map(|k| format!("{at}.{k}: not in AWS's output"))
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Some(format!("{at}: {} items, AWS {}", g.len(), w.len()));
            }
            w.iter()
                .zip(g)
                .enumerate()
                .find_map(|(i, (wv, gv))| diff(wv, gv, tokens, &format!("{at}[{i}]")))
        }
        (w, g) if w == g => None,
        (w, g) => Some(format!("{at}: {g}, AWS {w}")),
    }
}

fn is_token(s: &str, tokens: &[String]) -> bool {
    tokens.iter().any(|t| t == s)
        || (s.starts_with('<') && s.ends_with('>') && !s[1..].contains('<'))
}

/// Whether `got` matches `want`, where each redaction token in `want` stands for any text.
fn text_matches(want: &str, got: &str, tokens: &[String]) -> bool {
    if want == got {
        return true;
    }
    // Split `want` at every token (the listed ones and any `<...>`), then match the literal
    // pieces in order with anything between.
    let mut pieces: Vec<&str> = Vec::new();
    let mut rest = want;
    let mut wild = false;
    'outer: while !rest.is_empty() {
        let mut best: Option<(usize, usize)> = None;
        for t in tokens
            .iter()
            .filter(|t| !t.starts_with("nondeterministic-function:"))
        {
            if let Some(i) = rest.find(t.as_str())
                && best.is_none_or(|(b, _)| i < b)
            {
                best = Some((i, t.len()));
            }
        }
        if let Some(i) = rest.find('<')
            && let Some(j) = rest[i..].find('>')
            && best.is_none_or(|(b, _)| i < b)
        {
            best = Some((i, j + 1));
        }
        match best {
            Some((i, n)) => {
                pieces.push(&rest[..i]);
                wild = true;
                rest = &rest[i + n..];
            }
            None => {
                pieces.push(rest);
                break 'outer;
            }
        }
    }
    if !wild {
        return false;
    }
    if want.ends_with('>') || tokens.iter().any(|t| want.ends_with(t.as_str())) {
        pieces.push("");
    }
    glob(&pieces, got)
}

/// `pieces[0] * pieces[1] * ... pieces[n]`, where `*` is any text.
fn glob(pieces: &[&str], got: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return got.is_empty();
    };
    let Some(mut s) = got.strip_prefix(first) else {
        return false;
    };
    for (i, p) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        if last {
            return s.ends_with(p);
        }
        match s.find(p) {
            Some(at) => s = &s[at + p.len()..],
            None => return false,
        }
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_any_text_in_their_place() {
        let t = vec!["<json-input:1>".to_owned(), "date".to_owned()];
        assert!(text_matches(
            "in the input '<json-input:1>'",
            "in the input '{\"a\":1}'",
            &t
        ));
        assert!(!text_matches(
            "in the input '<json-input:1>'",
            "in the output '{}'",
            &t
        ));
        assert!(text_matches(
            "<uuid:1>",
            "0b8e7c1e-0000-4000-8000-000000000000",
            &t
        ));
        assert!(!text_matches("exact", "other", &t));
    }
}
