//! JSONPath payload templates: Parameters, ResultSelector, ItemSelector and JSONPath-mode
//! Assign. A key ending in `.$` takes its value from a path (into the input, the context
//! object `$$` or a variable) or from an intrinsic call; every other value is copied as is.

use serde_json::{Map, Value};

use super::Invalid;
use crate::env::Random;
use crate::error::{StatesError, names};
use crate::intrinsics::{self, Call};
use crate::jsonpath::{Path, Scope};

/// A compiled template node.
#[derive(Debug, Clone)]
pub enum Node {
    /// Copied as is.
    Literal(Value),
    /// The value a path selects.
    Path(Path),
    /// The value an intrinsic call returns.
    Call(Call),
    /// An object: (output key, node), in order.
    Object(Vec<(String, Field)>),
    /// An array.
    Array(Vec<Node>),
}

/// One key of an object template.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key as written (`name.$` for a dynamic one), for error texts.
    pub written: String,
    /// Its value.
    pub node: Node,
}

/// A compiled payload template.
#[derive(Debug, Clone)]
pub struct Payload(pub Node);

/// A `.$` value: a path or an intrinsic call; `pointer` names the field for errors.
pub(crate) fn dynamic(text: &str, pointer: &str, errs: &mut Vec<Invalid>) -> Option<Node> {
    if intrinsics::is_call(text) {
        match intrinsics::parse(text) {
            Ok(call) => {
                for p in call.paths() {
                    if let Err(e) = Path::parse(p) {
                        errs.push(super::parse::schema(
                            format!("The value for the field '{}' must be a valid JSONPath or a valid intrinsic function call ({e})", last(pointer)),
                            pointer,
                        ));
                    }
                }
                Some(Node::Call(call))
            }
            Err(e) => {
                errs.push(super::parse::schema(
                    format!(
                        "The value for the field '{}' must be a valid JSONPath or a valid intrinsic function call ({e})",
                        last(pointer)
                    ),
                    pointer,
                ));
                None
            }
        }
    } else {
        match Path::parse(text) {
            Ok(p) => Some(Node::Path(p)),
            Err(_) => {
                errs.push(super::parse::schema(
                    format!(
                        "The value for the field '{}' must be a valid JSONPath or a valid intrinsic function call",
                        last(pointer)
                    ),
                    pointer,
                ));
                None
            }
        }
    }
}

fn last(pointer: &str) -> String {
    pointer
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

/// JSON pointer escaping of one reference token.
pub(crate) fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Compile `v` (found at `pointer`).
pub fn compile(v: &Value, pointer: &str, errs: &mut Vec<Invalid>) -> Payload {
    Payload(node(v, pointer, errs))
}

fn node(v: &Value, pointer: &str, errs: &mut Vec<Invalid>) -> Node {
    match v {
        Value::Object(m) => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, v) in m {
                let at = format!("{pointer}/{}", token(k));
                if let Some(name) = k.strip_suffix(".$") {
                    let Some(text) = v.as_str() else {
                        errs.push(super::parse::schema(
                            format!("The value for the field '{k}' must be a STRING that contains a JSONPath or an intrinsic function call"),
                            &at,
                        ));
                        continue;
                    };
                    if let Some(n) = dynamic(text, &at, errs) {
                        fields.push((
                            name.to_owned(),
                            Field {
                                written: k.clone(),
                                node: n,
                            },
                        ));
                    }
                } else {
                    fields.push((
                        k.clone(),
                        Field {
                            written: k.clone(),
                            node: node(v, &at, errs),
                        },
                    ));
                }
            }
            if fields
                .iter()
                .all(|(_, f)| matches!(f.node, Node::Literal(_)))
                && !m.keys().any(|k| k.ends_with(".$"))
            {
                return Node::Literal(v.clone());
            }
            Node::Object(fields)
        }
        Value::Array(items) => {
            let nodes: Vec<Node> = items
                .iter()
                .enumerate()
                .map(|(i, v)| node(v, &format!("{pointer}/{i}"), errs))
                .collect();
            if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                return Node::Literal(v.clone());
            }
            Node::Array(nodes)
        }
        other => Node::Literal(other.clone()),
    }
}

/// What a template is evaluated against.
pub struct Env<'a> {
    /// Paths' roots.
    pub scope: Scope<'a>,
    /// For intrinsics.
    pub random: &'a dyn Random,
}

impl Payload {
    /// Evaluate the template.
    pub fn eval(&self, env: &Env<'_>) -> Result<Value, StatesError> {
        eval_node(&self.0, None, env)
    }
}

impl Node {
    /// Evaluate one node; `field` is the written key it came from, for error texts.
    pub fn eval(&self, field: Option<&str>, env: &Env<'_>) -> Result<Value, StatesError> {
        eval_node(self, field, env)
    }
}

/// The error of a path in a payload that selects nothing, as AWS words it.
pub(crate) fn path_not_found(path: &str, field: &str, input: &Value) -> StatesError {
    StatesError::new(
        names::RUNTIME,
        format!(
            "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{}'",
            serde_json::to_string(input).unwrap_or_default()
        ),
    )
}

fn eval_node(n: &Node, field: Option<&str>, env: &Env<'_>) -> Result<Value, StatesError> {
    match n {
        Node::Literal(v) => Ok(v.clone()),
        Node::Path(p) => env
            .scope
            .resolve(p)
            .map_err(|_| path_not_found(p.text(), field.unwrap_or(""), env.scope.input)),
        Node::Call(c) => {
            let resolve = |text: &str| -> Result<Value, StatesError> {
                let p = Path::parse(text)
                    .map_err(|e| StatesError::new(names::INTRINSIC_FAILURE, e.to_string()))?;
                env.scope
                    .resolve(&p)
                    .map_err(|_| path_not_found(text, field.unwrap_or(""), env.scope.input))
            };
            c.eval(&resolve, env.random)
        }
        Node::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (k, f) in fields {
                out.insert(k.clone(), eval_node(&f.node, Some(&f.written), env)?);
            }
            Ok(Value::Object(out))
        }
        Node::Array(items) => items
            .iter()
            .map(|n| eval_node(n, field, env))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}
