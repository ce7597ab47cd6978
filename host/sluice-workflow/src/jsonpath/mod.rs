//! Jayway-compatible JSONPath (AWS's dialect): parsing, selection, and write-back.
//!
//! Step Functions evaluates its JSONPath fields (`InputPath`, `Parameters` `.$` keys,
//! `ResultPath`, Choice `Variable`, ...) with Jayway JsonPath, and puts Jayway's exception
//! texts into its error causes. This module reproduces both the results and those texts.
//!
//! The rules that matter, as Jayway (and AWS above it) has them:
//! - a path is *definite* when it has no wildcard, deep scan (`..`), filter, slice or index
//!   union (`[0,1]`); a leaf property union (`['a','b']`) is definite too: Jayway merges the
//!   named properties into one object;
//! - a definite path gives the value itself, or fails with Jayway's text (`No results for
//!   path: $['x']`, `Missing property in path $['a']`, ...);
//! - an indefinite path gives a JSON array of every match and never fails: Jayway would
//!   throw on a missing property before the first indefinite token, but AWS answers `[]`
//!   there (the corpus: `$.items[*]` on `{}` is `[]`), so selection suppresses every error;
//! - the roots: `$` is the state's input, `$$` the context object, `$name` a JSONPath-mode
//!   variable. The caller picks the document for the root (see [`Scope`]); the path after the
//!   root is evaluated against it as Jayway evaluates `$...`.
//!
//! Submodules: `parse` (text to segments), `filter` (`[?(...)]` expressions), `select`
//! (evaluation), `write` (`ResultPath` write-back), `java` (Java's renderings that leak into
//! Jayway's messages).

mod filter;
mod java;
mod parse;
mod select;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_filter;

use serde_json::Value;

pub(crate) use java::{java_cmp, num_cmp};

/// What a path's leading `$` names: where the document it selects from comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's (effective) input.
    Input,
    /// `$$`: the context object (`$$.Execution.Input`, `$$.Map.Item.Value`, ...).
    Context,
    /// `$name`: a workflow variable (JSONPath query language), e.g. `$guess` or `$obj.field`.
    Variable(String),
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    root: Root,
    segments: Vec<Segment>,
}

/// One step of a path after its root.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    /// `.name`, `['name']`, or a property union `['a','b']`.
    Child(Vec<String>),
    /// `[0]`, `[-1]`, or an index union `[0,2]`.
    Index(Vec<i64>),
    /// `[from:to]`, either end optional; no step (Jayway has none).
    Slice(Option<i64>, Option<i64>),
    /// `.*` or `[*]`: every element of an array or every value of an object.
    Wildcard,
    /// `..`: the following segment applies at every depth.
    Scan,
    /// `[?(expr)]`.
    Filter(Box<filter::Expr>),
    /// A trailing function call such as `.length()`.
    Function(Function),
}

/// The no-argument path functions of Jayway that we support (always the last segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Length,
    Min,
    Max,
    Avg,
    Stddev,
    Sum,
    First,
    Last,
    Keys,
}

/// A path that does not parse; the message names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

/// A path that selected nothing where a value is needed, or a write-back that could not be
/// applied. `message` is Jayway's text as AWS shows it; `Display` gives AWS's whole phrase,
/// `Invalid path '$.x' : No results for path: $['x']`, which callers put after
/// `An error occurred while executing the state ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid path '{path}' : {message}")]
pub struct Missing {
    /// The path as written in the definition.
    pub path: String,
    /// Jayway's message, e.g. `Missing property in path $['no']`.
    pub message: String,
}

impl Path {
    /// Parses `text` (Jayway syntax after an AWS root: `$`, `$$` or `$name`).
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let (root, segments) = parse::parse(text)?;
        Ok(Path {
            text: text.to_owned(),
            root,
            segments,
        })
    }

    /// The root the path starts from.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The path as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Jayway's normalized rendering (`$['a'][0]`), the form its messages use.
    pub fn normalized(&self) -> String {
        select::normalized(&self.segments)
    }

    /// Whether the path selects (at most) one value, as Jayway decides it: no wildcard,
    /// deep scan, filter, slice or index union. `$..x.length()` is definite too (Jayway
    /// applies a function after a leading scan to the whole list of matches).
    pub fn is_definite(&self) -> bool {
        select::is_definite(&self.segments)
    }

    /// Whether this is an ASL *Reference Path*: only single names and single indexes, so it
    /// names one node and can be written to (`ResultPath`, Choice `Variable`, `...Path`).
    pub fn is_reference(&self) -> bool {
        self.segments.iter().all(|s| match s {
            Segment::Child(names) => names.len() == 1,
            Segment::Index(indexes) => indexes.len() == 1,
            _ => false,
        })
    }

    /// Selects from `doc`, the value of the root (chosen by the caller, see [`Scope`]).
    /// A definite path gives the value itself, an indefinite one a JSON array of all its
    /// matches (possibly empty). Errors carry Jayway's text as AWS shows it.
    pub fn select(&self, doc: &Value) -> Result<Value, Missing> {
        select::select(&self.segments, doc).map_err(|message| self.missing(message))
    }

    /// `ResultPath`-style write-back of `value` into `target`: `$` replaces the whole value;
    /// `$.a.b` sets the field, creating missing intermediate objects; an index must name an
    /// existing element. Fails (leaving `target` as it was) when the path is not a reference
    /// path or an intermediate value is not an object (or array, for an index).
    pub fn write(&self, target: &mut Value, value: Value) -> Result<(), Missing> {
        write::write(&self.segments, &self.text, target, value).map_err(|m| self.missing(m))
    }

    fn missing(&self, message: String) -> Missing {
        Missing {
            path: self.text.clone(),
            message,
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

/// The documents a path can be rooted at while a state runs.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// What `$` selects from: the state's effective input.
    pub input: &'a Value,
    /// What `$$` selects from: the context object.
    pub context: &'a Value,
    /// The workflow variables visible to the state (`$name`).
    pub variables: &'a serde_json::Map<String, Value>,
}

impl Scope<'_> {
    /// Resolves `path` against the document its root names. A variable that is not defined
    /// is an error like a missing property: `The variable 'x' is not defined` (AWS's own text
    /// for this is not in the corpus; definitions that reference unassigned variables are
    /// normally refused at validation).
    pub fn resolve(&self, path: &Path) -> Result<Value, Missing> {
        match path.root() {
            Root::Input => path.select(self.input),
            Root::Context => path.select(self.context),
            Root::Variable(name) => match self.variables.get(name) {
                Some(doc) => path.select(doc),
                None => Err(path.missing(format!("The variable '{name}' is not defined"))),
            },
        }
    }
}
