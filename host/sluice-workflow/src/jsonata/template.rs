//! A field's value in a JSONata state (`Output`, `Arguments`, `Assign` values, `Items`,
//! `ItemSelector`, ...): JSON whose strings may be `{% %}` expressions at any depth.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Bindings, Expr, Session, SyntaxError, compile, is_template, undefined};
use crate::error::StatesError;

/// A compiled template; cheap to clone (the expressions are shared).
#[derive(Clone, Debug)]
pub struct Template {
    root: Node,
    /// The union of the expressions' `$name` tokens: what a [`Session`] binds.
    tokens: Arc<[String]>,
    /// The union of the expressions' referenced variables.
    variables: Arc<[String]>,
    needs_random: bool,
}

#[derive(Clone, Debug)]
enum Node {
    /// A subtree with no expression in it, returned as written (so `1.0` stays `1.0`).
    Literal(Value),
    Expr(Expr),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Template {
    /// Compiles `v`. On a syntax error, the `Err` carries where, relative to the field and in
    /// AWS's notation (`/key` per object key, `[i]` per array index; `""` for the field
    /// itself), so `format!("{field}{path}")` gives `Output/result` or `Arguments/items[0]`.
    pub fn compile(v: &Value) -> Result<Template, (String, SyntaxError)> {
        let mut exprs = Vec::new();
        let root = build(v, &mut String::new(), &mut exprs)?;
        let mut tokens: Vec<String> = Vec::new();
        let mut variables: Vec<String> = Vec::new();
        for e in &exprs {
            for t in e.tokens.iter() {
                if !tokens.contains(t) {
                    tokens.push(t.clone());
                }
            }
            for t in e.variables.iter() {
                if !variables.contains(t) {
                    variables.push(t.clone());
                }
            }
        }
        Ok(Template {
            root,
            tokens: tokens.into(),
            variables: variables.into(),
            needs_random: exprs.iter().any(|e| e.needs_random),
        })
    }

    /// Whether the template holds no expression (its value is fixed).
    pub fn is_literal(&self) -> bool {
        matches!(self.root, Node::Literal(_))
    }

    /// Evaluates; `field` names the field in causes (`Output`, `Arguments`, `Assign/x`, ...).
    /// An expression returning undefined fails the whole template with
    /// `States.QueryEvaluationError` naming its path, e.g. `The JSONata expression
    /// '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined).`
    /// Expressions are evaluated in document order; the first failure ends the evaluation.
    pub fn eval(&self, field: &str, b: &Bindings<'_>) -> Result<Value, StatesError> {
        if let Node::Literal(v) = &self.root {
            return Ok(v.clone());
        }
        let mut session = Session::new(b, self.tokens.iter(), self.needs_random);
        let mut path = field.to_owned();
        eval_node(&self.root, &mut path, &mut session)
    }

    /// Variable names (without `$`) the template's expressions read, best effort, for the
    /// validator's rules on what may reference what: `$states`, names bound inside an
    /// expression (`$x := ...`, lambda parameters) and called names (`$f(...)`) are left out.
    pub fn referenced_variables(&self) -> Vec<String> {
        self.variables.to_vec()
    }
}

fn build(
    v: &Value,
    path: &mut String,
    exprs: &mut Vec<Expr>,
) -> Result<Node, (String, SyntaxError)> {
    Ok(match v {
        Value::String(s) if is_template(s) => {
            let e = compile(&s[2..s.len() - 2]).map_err(|e| (path.clone(), e))?;
            exprs.push(e.clone());
            Node::Expr(e)
        }
        Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                nodes.push(build(item, path, exprs)?);
                path.truncate(len);
            }
            if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                Node::Literal(v.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(map) => {
            let mut nodes = Vec::with_capacity(map.len());
            for (k, item) in map {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                nodes.push((k.clone(), build(item, path, exprs)?));
                path.truncate(len);
            }
            if nodes.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
                Node::Literal(v.clone())
            } else {
                Node::Object(nodes)
            }
        }
        other => Node::Literal(other.clone()),
    })
}

fn eval_node(node: &Node, path: &mut String, s: &mut Session<'_>) -> Result<Value, StatesError> {
    Ok(match node {
        Node::Literal(v) => v.clone(),
        Node::Expr(e) => s.eval(e, Some(path))?.ok_or_else(|| undefined(e, path))?,
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(eval_node(item, path, s)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        Node::Object(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, item) in entries {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                out.insert(k.clone(), eval_node(item, path, s)?);
                path.truncate(len);
            }
            Value::Object(out)
        }
    })
}
