//! From a definition's JSON to a [`Machine`], reporting every problem with its pointer.

use serde_json::Value;

use super::fields::Obj;
use super::kinds::{choice_state, fail, map_state, task, wait};
use super::payload::{self, Payload, token};
use super::{
    Assign, Catcher, Dynamic, Invalid, InvalidDefinition, Kind, Lang, Machine, NullablePath,
    Retrier, State, Transition,
};
use crate::jsonata::{self, Template};
use crate::jsonpath::Path;

/// A schema problem at `pointer`.
pub(crate) fn schema(message: impl Into<String>, pointer: &str) -> Invalid {
    Invalid {
        code: "SCHEMA_VALIDATION_FAILED",
        message: message.into(),
        pointer: pointer.to_owned(),
    }
}

/// Parse and validate a whole definition.
pub fn parse(def: &Value) -> Result<Machine, InvalidDefinition> {
    let mut errs = Vec::new();
    let m = machine(def, "", Lang::JsonPath, true, &mut errs);
    match m {
        Some(m) if errs.is_empty() => Ok(m),
        _ => {
            if errs.is_empty() {
                errs.push(schema("The definition is not a state machine", "/"));
            }
            Err(InvalidDefinition(errs))
        }
    }
}

const STATE_TYPES: &[&str] = &[
    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

fn lang_of(obj: &Obj<'_>, inherited: Lang, errs: &mut Vec<Invalid>) -> Lang {
    match obj.str("QueryLanguage", errs) {
        None => inherited,
        Some("JSONPath") => {
            if inherited == Lang::Jsonata {
                errs.push(schema(
                    "A state cannot use JSONPath when its state machine uses JSONata",
                    &obj.at("QueryLanguage"),
                ));
            }
            Lang::JsonPath
        }
        Some("JSONata") => Lang::Jsonata,
        Some(other) => {
            errs.push(schema(
                format!("The value for the field 'QueryLanguage' must be one of [JSONPath, JSONata], not \"{other}\""),
                &obj.at("QueryLanguage"),
            ));
            inherited
        }
    }
}

/// A machine (the top level, a branch or an item processor) at `pointer`.
pub(super) fn machine(
    v: &Value,
    pointer: &str,
    inherited: Lang,
    top: bool,
    errs: &mut Vec<Invalid>,
) -> Option<Machine> {
    let obj = Obj::new(
        v,
        if pointer.is_empty() { "/" } else { pointer },
        "A state machine",
        errs,
    )?;
    let obj = Obj {
        map: obj.map,
        pointer: pointer.to_owned(),
    };
    let mut allowed = vec!["StartAt", "States", "Comment", "QueryLanguage"];
    if top {
        allowed.extend(["TimeoutSeconds", "Version"]);
    } else {
        allowed.push("ProcessorConfig");
    }
    obj.only(&allowed, errs);
    let lang = lang_of(&obj, inherited, errs);
    obj.str("Comment", errs);
    let start_at = obj
        .required("StartAt", errs)
        .and_then(|_| obj.str("StartAt", errs));
    let timeout_seconds = obj.uint("TimeoutSeconds", errs);
    let states_v = obj.required("States", errs)?;
    let states_obj = Obj::new(states_v, &obj.at("States"), "States", errs)?;
    let mut states = Vec::with_capacity(states_obj.map.len());
    for (name, sv) in states_obj.map {
        let at = states_obj.at(name);
        if name.is_empty() || name.chars().count() > 80 {
            errs.push(schema("A state name must be 1 to 80 characters long", &at));
        }
        if let Some(s) = state(name, sv, &at, lang, errs) {
            states.push(s);
        }
    }
    let start_at = start_at?.to_owned();
    if states_obj.map.is_empty() {
        errs.push(schema("States must not be empty", &obj.at("States")));
    }
    if !states_obj.map.contains_key(&start_at) {
        errs.push(Invalid {
            code: "MISSING_TRANSITION_TARGET",
            message: format!("Missing 'Next' target: {start_at}"),
            pointer: obj.at("StartAt"),
        });
    }
    let index = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    let m = Machine {
        start_at,
        states,
        lang,
        timeout_seconds,
        index,
    };
    check_graph(&m.start_at, states_obj.map, &obj.at("States"), errs);
    Some(m)
}

/// Every target exists and every state is reachable from StartAt. Read from the raw
/// `States` object, so a state that failed to parse still counts as existing and still
/// leads where it says (no second, misleading problem about its neighbours).
fn check_graph(
    start_at: &str,
    states: &serde_json::Map<String, Value>,
    pointer: &str,
    errs: &mut Vec<Invalid>,
) {
    let targets = |name: &str, v: &Value| -> Vec<(String, String)> {
        let at = format!("{pointer}/{}", token(name));
        let mut out = Vec::new();
        let mut push = |t: Option<&Value>, ptr: String| {
            if let Some(t) = t.and_then(Value::as_str) {
                out.push((t.to_owned(), ptr));
            }
        };
        push(v.get("Next"), format!("{at}/Next"));
        push(v.get("Default"), format!("{at}/Default"));
        for (field, list) in [("Choices", v.get("Choices")), ("Catch", v.get("Catch"))] {
            for (i, c) in list
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                push(c.get("Next"), format!("{at}/{field}/{i}/Next"));
            }
        }
        out
    };
    for (name, v) in states {
        for (t, at) in targets(name, v) {
            if !states.contains_key(&t) {
                errs.push(Invalid {
                    code: "MISSING_TRANSITION_TARGET",
                    message: format!("Missing 'Next' target: {t}"),
                    pointer: at,
                });
            }
        }
    }
    let mut seen = std::collections::HashSet::from([start_at.to_owned()]);
    let mut todo = vec![start_at.to_owned()];
    while let Some(n) = todo.pop() {
        if let Some(v) = states.get(&n) {
            for (t, _) in targets(&n, v) {
                if seen.insert(t.clone()) {
                    todo.push(t);
                }
            }
        }
    }
    for name in states.keys() {
        if !seen.contains(name) {
            errs.push(Invalid {
                code: "UNREACHABLE_STATE",
                message: format!("State \"{name}\" is not reachable"),
                pointer: format!("{pointer}/{}", token(name)),
            });
        }
    }
}

/// Fields every state type may have, in either language, beyond its own.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "Iterator",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pass" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultPath",
            "Result",
            "Assign",
            "Output",
            "Next",
            "End",
        ],
        "Task" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Resource",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Arguments",
            "Output",
            "Assign",
            "Credentials",
            "Next",
            "End",
        ],
        "Choice" => &[
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
            "Assign",
            "Output",
        ],
        "Wait" => &[
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Assign",
            "Output",
            "Next",
            "End",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Branches",
            "Retry",
            "Catch",
            "Assign",
            "Arguments",
            "Output",
            "Next",
            "End",
        ],
        "Map" => &[
            "InputPath",
            "OutputPath",
            "Parameters",
            "ItemSelector",
            "ResultSelector",
            "ResultPath",
            "ItemsPath",
            "Items",
            "ItemProcessor",
            "Iterator",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Retry",
            "Catch",
            "Assign",
            "Output",
            "Next",
            "End",
        ],
        _ => &[],
    }
}

pub(super) fn path(obj: &Obj<'_>, field: &str, errs: &mut Vec<Invalid>) -> Option<Path> {
    let text = obj.str(field, errs)?;
    match Path::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            errs.push(schema(
                format!("The value for the field '{field}' must be a valid JSONPath: {e}"),
                &obj.at(field),
            ));
            None
        }
    }
}

/// A path that must be definite and rooted at `$` (ResultPath is written into the input).
pub(super) fn nullable_path(
    obj: &Obj<'_>,
    field: &str,
    errs: &mut Vec<Invalid>,
) -> Option<NullablePath> {
    match obj.get(field)? {
        Value::Null => Some(NullablePath::Null),
        _ => path(obj, field, errs).map(NullablePath::Path),
    }
}

pub(super) fn template(v: &Value, pointer: &str, errs: &mut Vec<Invalid>) -> Option<Template> {
    match Template::compile(v) {
        Ok(t) => Some(t),
        Err((at, e)) => {
            // The engine names the place as AWS does (`/key`, `[i]`): as a JSON pointer.
            let at = format!("{pointer}{}", at.replace('[', "/").replace(']', ""));
            errs.push(schema(
                format!("The JSONata expression is invalid: {e}"),
                &at,
            ));
            None
        }
    }
}

/// A field given literally, by `<field>Path` (JSONPath) or as `{% %}` (JSONata).
pub(super) fn dynamic_uint(
    obj: &Obj<'_>,
    field: &str,
    lang: Lang,
    errs: &mut Vec<Invalid>,
) -> Option<Dynamic<u64>> {
    let path_field = format!("{field}Path");
    if obj.has(field) && obj.has(&path_field) {
        errs.push(schema(
            format!("Only one of {field} and {path_field} may be given"),
            &obj.pointer,
        ));
    }
    if let Some(v) = obj.get(field) {
        if let (Lang::Jsonata, Some(s)) = (lang, v.as_str())
            && jsonata::is_template(s)
        {
            return template(v, &obj.at(field), errs).map(Dynamic::Expr);
        }
        return obj.uint(field, errs).map(Dynamic::Literal);
    }
    if obj.has(&path_field) {
        return path(obj, &path_field, errs).map(Dynamic::Path);
    }
    None
}

pub(super) fn assign(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Option<Assign> {
    let v = obj.get("Assign")?;
    let at = obj.at("Assign");
    if !v.is_object() {
        errs.push(schema(
            "The value for the field 'Assign' must be an OBJECT",
            &at,
        ));
        return None;
    }
    for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
        let name = k.strip_suffix(".$").unwrap_or(k);
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            errs.push(schema(
                format!("The variable name \"{name}\" is invalid"),
                &format!("{at}/{}", token(k)),
            ));
        }
    }
    Some(match lang {
        Lang::JsonPath => Assign::JsonPath(payload::compile(v, &at, errs)),
        Lang::Jsonata => Assign::Jsonata(template(v, &at, errs)?),
    })
}

fn retriers(obj: &Obj<'_>, errs: &mut Vec<Invalid>) -> Vec<Retrier> {
    let Some(list) = obj.array("Retry", errs) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let Some(r) = Obj::new(v, &format!("{}/{i}", obj.at("Retry")), "A retrier", errs) else {
            continue;
        };
        r.only(
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            errs,
        );
        let error_equals = r
            .required("ErrorEquals", errs)
            .and_then(|_| r.strings("ErrorEquals", errs))
            .unwrap_or_default();
        check_error_equals(&error_equals, &r.at("ErrorEquals"), errs);
        let interval_seconds = r.uint("IntervalSeconds", errs).unwrap_or(1);
        if r.has("IntervalSeconds") && interval_seconds == 0 {
            errs.push(schema(
                "IntervalSeconds must be at least 1",
                &r.at("IntervalSeconds"),
            ));
        }
        let backoff_rate = r.number("BackoffRate", errs).unwrap_or(2.0);
        if backoff_rate < 1.0 {
            errs.push(schema(
                "BackoffRate must be at least 1.0",
                &r.at("BackoffRate"),
            ));
        }
        let full_jitter = match r.str("JitterStrategy", errs) {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(other) => {
                errs.push(schema(
                    format!("JitterStrategy must be FULL or NONE, not \"{other}\""),
                    &r.at("JitterStrategy"),
                ));
                false
            }
        };
        out.push(Retrier {
            error_equals,
            interval_seconds,
            max_attempts: r.uint("MaxAttempts", errs).unwrap_or(3),
            backoff_rate,
            max_delay_seconds: r.uint("MaxDelaySeconds", errs),
            full_jitter,
        });
    }
    out
}

/// A rule naming States.ALL must be the last of its list (AWS's rule), at `pointer`.
fn all_last(lists: &[Vec<String>], field: &str, pointer: &str, errs: &mut Vec<Invalid>) {
    let n = lists.len();
    for (i, l) in lists.iter().enumerate() {
        if i + 1 < n && l.iter().any(|e| e == crate::error::names::ALL) {
            errs.push(schema(
                format!("A {field} rule with States.ALL must be the last one"),
                &format!("{pointer}/{i}"),
            ));
        }
    }
}

fn check_error_equals(names: &[String], pointer: &str, errs: &mut Vec<Invalid>) {
    if names.is_empty() {
        errs.push(schema("ErrorEquals must name at least one error", pointer));
    }
    if names.len() > 1 && names.iter().any(|n| n == crate::error::names::ALL) {
        errs.push(schema(
            "States.ALL must appear alone in ErrorEquals",
            pointer,
        ));
    }
}

fn catchers(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Vec<Catcher> {
    let Some(list) = obj.array("Catch", errs) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let Some(c) = Obj::new(v, &format!("{}/{i}", obj.at("Catch")), "A catcher", errs) else {
            continue;
        };
        c.only(
            &[
                "ErrorEquals",
                "Next",
                "ResultPath",
                "Output",
                "Assign",
                "Comment",
            ],
            errs,
        );
        match lang {
            Lang::JsonPath => c.not_in(&["Output"], "JSONPath", errs),
            Lang::Jsonata => c.not_in(&["ResultPath"], "JSONata", errs),
        }
        let error_equals = c
            .required("ErrorEquals", errs)
            .and_then(|_| c.strings("ErrorEquals", errs))
            .unwrap_or_default();
        check_error_equals(&error_equals, &c.at("ErrorEquals"), errs);
        let next = c
            .required("Next", errs)
            .and_then(|_| c.str("Next", errs))
            .unwrap_or_default()
            .to_owned();
        out.push(Catcher {
            error_equals,
            next,
            result_path: nullable_path(&c, "ResultPath", errs),
            output: c
                .get("Output")
                .and_then(|v| template(v, &c.at("Output"), errs)),
            assign: assign(&c, lang, errs),
        });
    }
    out
}

/// One state at `pointer`.
fn state(
    name: &str,
    v: &Value,
    pointer: &str,
    machine_lang: Lang,
    errs: &mut Vec<Invalid>,
) -> Option<State> {
    let obj = Obj::new(v, pointer, "A state", errs)?;
    let kind_name = obj
        .required("Type", errs)
        .and_then(|_| obj.str("Type", errs))?;
    if !STATE_TYPES.contains(&kind_name) {
        errs.push(schema(
            format!(
                "The value for the field 'Type' must be one of [{}], not \"{kind_name}\"",
                STATE_TYPES.join(", ")
            ),
            &obj.at("Type"),
        ));
        return None;
    }
    let mut allowed = vec!["Type", "Comment", "QueryLanguage"];
    allowed.extend_from_slice(allowed_fields(kind_name));
    obj.only(&allowed, errs);
    let lang = lang_of(&obj, machine_lang, errs);
    match lang {
        Lang::JsonPath => obj.not_in(JSONATA_ONLY, "JSONPath", errs),
        Lang::Jsonata => obj.not_in(JSONPATH_ONLY, "JSONata", errs),
    }
    obj.str("Comment", errs);
    let terminal = matches!(kind_name, "Choice" | "Succeed" | "Fail");
    let transition = if terminal {
        None
    } else {
        let next = obj.str("Next", errs);
        let end = obj.bool("End", errs);
        match (next, end) {
            (Some(_), Some(true)) => {
                errs.push(schema("Only one of Next and End may be given", pointer));
                None
            }
            (Some(n), _) => Some(Transition::Next(n.to_owned())),
            (None, Some(true)) => Some(Transition::End),
            (None, _) => {
                errs.push(schema("These fields are required: [Next or End]", pointer));
                None
            }
        }
    };
    let compile_payload = |field: &str, errs: &mut Vec<Invalid>| -> Option<Payload> {
        let v = obj.get(field)?;
        if !v.is_object() && lang == Lang::JsonPath && field != "Parameters" {
            errs.push(schema(
                format!("The value for the field '{field}' must be an OBJECT"),
                &obj.at(field),
            ));
        }
        Some(payload::compile(v, &obj.at(field), errs))
    };
    let kind = match kind_name {
        "Pass" => Kind::Pass {
            result: obj.get("Result").cloned(),
        },
        "Task" => task(&obj, lang, errs)?,
        "Choice" => choice_state(&obj, lang, errs)?,
        "Wait" => wait(&obj, lang, errs)?,
        "Succeed" => Kind::Succeed,
        "Fail" => fail(&obj, lang, errs),
        "Parallel" => {
            let list = obj
                .required("Branches", errs)
                .and_then(|_| obj.array("Branches", errs))?;
            if list.is_empty() {
                errs.push(schema("Branches must not be empty", &obj.at("Branches")));
            }
            let branches = list
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    machine(b, &format!("{}/{i}", obj.at("Branches")), lang, false, errs)
                })
                .collect();
            Kind::Parallel { branches }
        }
        "Map" => Kind::Map(Box::new(map_state(&obj, lang, errs)?)),
        _ => return None,
    };
    Some(State {
        name: name.to_owned(),
        lang,
        transition,
        input_path: nullable_path(&obj, "InputPath", errs),
        output_path: nullable_path(&obj, "OutputPath", errs),
        parameters: if kind_name == "Map" {
            None
        } else {
            compile_payload("Parameters", errs)
        },
        result_selector: compile_payload("ResultSelector", errs),
        result_path: nullable_path(&obj, "ResultPath", errs),
        arguments: obj
            .get("Arguments")
            .and_then(|v| template(v, &obj.at("Arguments"), errs)),
        output: obj
            .get("Output")
            .and_then(|v| template(v, &obj.at("Output"), errs)),
        assign: assign(&obj, lang, errs),
        retry: {
            let r = retriers(&obj, errs);
            let lists: Vec<Vec<String>> = r.iter().map(|r| r.error_equals.clone()).collect();
            all_last(&lists, "Retry", &obj.at("Retry"), errs);
            r
        },
        catch: {
            let c = catchers(&obj, lang, errs);
            let lists: Vec<Vec<String>> = c.iter().map(|c| c.error_equals.clone()).collect();
            all_last(&lists, "Catch", &obj.at("Catch"), errs);
            c
        },
        kind,
        context_use: super::ContextUse::of(v),
    })
}
