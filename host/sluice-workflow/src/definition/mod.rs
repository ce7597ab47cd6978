//! A state machine definition, parsed and validated: the typed form the interpreter steps
//! over. Parsing is validation: [`parse`] returns every problem it finds, each with the JSON
//! pointer of the field at fault, or a [`Machine`] the interpreter can run without meeting a
//! malformed field again.

mod fields;
mod kinds;
mod parse;
pub mod payload;

use serde_json::Value;

use crate::choice;
use crate::jsonata::Template;
use crate::jsonpath::Path;
pub use parse::parse;

use payload::Payload;

/// The two query languages; a state inherits the machine's unless it names its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// JSONPath, with InputPath/Parameters/ResultSelector/ResultPath/OutputPath.
    JsonPath,
    /// JSONata, with Arguments/Output and `{% %}` expressions.
    Jsonata,
}

/// One problem with a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// AWS's class of the problem, e.g. `SCHEMA_VALIDATION_FAILED`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// JSON pointer of the field at fault, e.g. `/States/Charge/Next`.
    pub pointer: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} at {}", self.code, self.message, self.pointer)
    }
}

/// Every problem [`parse`] found: the fields' problems in document order, then the
/// transitions' (missing targets, unreachable states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDefinition(pub Vec<Invalid>);

impl std::fmt::Display for InvalidDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // AWS's InvalidDefinition message lists every problem, joined by ", ".
        write!(f, "Invalid State Machine Definition: '")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{p}")?;
        }
        write!(f, "'")
    }
}

impl std::error::Error for InvalidDefinition {}

/// A state machine, or a Parallel branch, or a Map's item processor.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The first state.
    pub start_at: String,
    /// States by name, in definition order.
    pub states: Vec<State>,
    /// The machine's query language (a state may override it).
    pub lang: Lang,
    /// Top-level TimeoutSeconds.
    pub timeout_seconds: Option<u64>,
    /// State name → index in `states`: the interpreter looks a state up on every step.
    pub index: std::collections::HashMap<String, usize>,
}

impl Machine {
    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }

    /// Whether a Task of this machine (or of a branch or item processor inside it) waits for
    /// a task token (`.waitForTaskToken`).
    pub fn uses_task_tokens(&self) -> bool {
        self.states.iter().any(|s| match &s.kind {
            Kind::Task { resource, .. } => resource.ends_with(crate::resource::WAIT_FOR_TASK_TOKEN),
            Kind::Parallel { branches } => branches.iter().any(Machine::uses_task_tokens),
            Kind::Map(m) => m.processor.uses_task_tokens(),
            _ => false,
        })
    }
}

/// Where a state goes when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// To the state of this name.
    Next(String),
    /// The machine (or branch, or iteration) ends with this state's output.
    End,
}

/// A JSONPath-mode `*Path` field that may be `null` (meaning "`{}`" for InputPath/OutputPath:
/// discard) or a path.
#[derive(Debug, Clone)]
pub enum NullablePath {
    /// `null`.
    Null,
    /// A path.
    Path(Path),
}

/// A number given literally, by a path (JSONPath) or by an expression (JSONata).
#[derive(Debug, Clone)]
pub enum Dynamic<T> {
    /// Written in the definition.
    Literal(T),
    /// `...Path`: read from the state's input.
    Path(Path),
    /// A `{% %}` expression.
    Expr(Template),
}

/// One state.
#[derive(Debug, Clone)]
pub struct State {
    /// Its name.
    pub name: String,
    /// Its query language (its own or the machine's).
    pub lang: Lang,
    /// Where it goes (for every type but Choice, Succeed and Fail).
    pub transition: Option<Transition>,
    /// JSONPath: InputPath (absent: `$`).
    pub input_path: Option<NullablePath>,
    /// JSONPath: OutputPath (absent: `$`).
    pub output_path: Option<NullablePath>,
    /// JSONPath: Parameters (Map: ItemSelector is separate).
    pub parameters: Option<Payload>,
    /// JSONPath: ResultSelector.
    pub result_selector: Option<Payload>,
    /// JSONPath: ResultPath (absent: `$`; `null`: discard the result).
    pub result_path: Option<NullablePath>,
    /// JSONata: Arguments.
    pub arguments: Option<Template>,
    /// JSONata: Output.
    pub output: Option<Template>,
    /// Assign (both languages).
    pub assign: Option<Assign>,
    /// Retry rules.
    pub retry: Vec<Retrier>,
    /// Catch rules.
    pub catch: Vec<Catcher>,
    /// What kind of state, with its own fields.
    pub kind: Kind,
    /// What of the context object its expressions can reach: building `$$` (with the
    /// execution's input) for every state of every Map iteration would cost O(items²).
    pub context_use: ContextUse,
}

/// How much of the context object a state's expressions may read, found by a conservative
/// scan of its definition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextUse {
    /// Nothing: no `$$`, no `$states` other than `.input`/`.result`/`.errorOutput`.
    None,
    /// The context, but not `Execution.Input`.
    WithoutInput,
    /// All of it.
    Full,
}

impl ContextUse {
    /// Scan a state's definition.
    pub fn of(state: &Value) -> Self {
        let text = state.to_string();
        let whole_states = text.match_indices("$states").any(|(i, _)| {
            let rest = &text[i + "$states".len()..];
            !(rest.starts_with(".input")
                || rest.starts_with(".result")
                || rest.starts_with(".errorOutput"))
        });
        if !(text.contains("$$") || whole_states) {
            Self::None
        } else if text.contains("Input") || whole_states && !text.contains(".context.") {
            Self::Full
        } else {
            Self::WithoutInput
        }
    }
}

/// `Assign`: variables set when a state (or a Choice rule, or a Catcher) completes.
#[derive(Debug, Clone)]
pub enum Assign {
    /// JSONPath: a payload template evaluated like Parameters (`.$` keys), over the state's
    /// input, result and context.
    JsonPath(Payload),
    /// JSONata: a template.
    Jsonata(Template),
}

/// A Retry rule.
#[derive(Debug, Clone)]
pub struct Retrier {
    /// Error names it applies to.
    pub error_equals: Vec<String>,
    /// First delay (default 1 s).
    pub interval_seconds: u64,
    /// Attempts after the first (default 3; 0 never retries).
    pub max_attempts: u64,
    /// Delay multiplier (default 2.0).
    pub backoff_rate: f64,
    /// Cap on the delay.
    pub max_delay_seconds: Option<u64>,
    /// `FULL` jitter: a random delay up to the computed one.
    pub full_jitter: bool,
}

/// A Catch rule.
#[derive(Debug, Clone)]
pub struct Catcher {
    /// Error names it applies to.
    pub error_equals: Vec<String>,
    /// Where to go.
    pub next: String,
    /// JSONPath: where the error output goes in the input (absent: `$`).
    pub result_path: Option<NullablePath>,
    /// JSONata: the output.
    pub output: Option<Template>,
    /// Variables to set.
    pub assign: Option<Assign>,
}

/// Wait's duration or deadline.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// Seconds (literal, path or expression).
    Seconds(Dynamic<i64>),
    /// An RFC 3339 timestamp (literal, path or expression).
    Timestamp(Dynamic<String>),
}

/// The Fail state's error or cause.
#[derive(Debug, Clone)]
pub enum FailField {
    /// A literal string.
    Literal(String),
    /// JSONPath `ErrorPath`/`CausePath` (a path or an intrinsic call).
    Path(payload::Node),
    /// A JSONata expression.
    Expr(Template),
}

/// A Choice rule with its target.
#[derive(Debug, Clone)]
pub struct ChoiceBranch {
    /// The condition.
    pub rule: Condition,
    /// Where it leads.
    pub next: String,
    /// JSONata: the output when it matches.
    pub output: Option<Template>,
    /// Variables set when it matches.
    pub assign: Option<Assign>,
}

/// A Choice condition in either language.
#[derive(Debug, Clone)]
pub enum Condition {
    /// A JSONPath rule.
    JsonPath(choice::Rule),
    /// A JSONata `Condition` expression (must give a boolean).
    Jsonata(Template),
}

/// How a Map state reads its items.
#[derive(Debug, Clone)]
pub enum Items {
    /// JSONPath: ItemsPath (absent: `$`).
    Path(Option<Path>),
    /// JSONata: Items, an array or an expression giving one (absent: the input).
    Template(Option<Template>),
}

/// A Map's ItemBatcher.
#[derive(Debug, Clone)]
pub struct Batcher {
    /// Most items per batch.
    pub max_items: Option<Dynamic<u64>>,
    /// Most bytes per batch (serialized items).
    pub max_bytes: Option<Dynamic<u64>>,
    /// BatchInput: merged into every batch under `BatchInput`.
    pub batch_input: Option<Value>,
}

/// The state types with their own fields.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Pass: an optional Result.
    Pass {
        /// The Result (JSONPath).
        result: Option<Value>,
    },
    /// Task.
    Task {
        /// The Resource as written.
        resource: String,
        /// TimeoutSeconds (default 60 for stages? none for AWS: 99999999).
        timeout: Option<Dynamic<u64>>,
        /// HeartbeatSeconds.
        heartbeat: Option<Dynamic<u64>>,
    },
    /// Choice.
    Choice {
        /// The rules, in order.
        choices: Vec<ChoiceBranch>,
        /// Default target.
        default: Option<String>,
    },
    /// Wait.
    Wait(WaitFor),
    /// Succeed.
    Succeed,
    /// Fail.
    Fail {
        /// Error.
        error: Option<FailField>,
        /// Cause.
        cause: Option<FailField>,
    },
    /// Parallel.
    Parallel {
        /// Branches.
        branches: Vec<Machine>,
    },
    /// Map (inline or distributed; both run the processor per item here).
    Map(Box<MapState>),
}

/// The fields of a Map state.
#[derive(Debug, Clone)]
pub struct MapState {
    /// The item processor.
    pub processor: Machine,
    /// `DISTRIBUTED` mode.
    pub distributed: bool,
    /// Where the items come from.
    pub items: Items,
    /// ItemSelector (or legacy Parameters), JSONPath.
    pub item_selector: Option<Payload>,
    /// ItemSelector, JSONata.
    pub item_selector_template: Option<Template>,
    /// ItemBatcher.
    pub batcher: Option<Batcher>,
    /// MaxConcurrency (0: unbounded).
    pub max_concurrency: Option<Dynamic<u64>>,
    /// ToleratedFailureCount.
    pub tolerated_count: Option<Dynamic<u64>>,
    /// ToleratedFailurePercentage.
    pub tolerated_percentage: Option<Dynamic<f64>>,
    /// ItemReader: where the items come from instead of the input (an object read through
    /// [`crate::env::Objects`]).
    pub item_reader: Option<ItemReader>,
}

/// A Map's ItemReader.
#[derive(Debug, Clone)]
pub struct ItemReader {
    /// The integration, e.g. `arn:aws:states:::s3:getObject`.
    pub resource: String,
    /// ReaderConfig.InputType; `None`: the object is a JSON array, as without a ReaderConfig.
    pub input_type: Option<InputType>,
    /// ReaderConfig.CSVHeaderLocation (default `FIRST_ROW`).
    pub header_location: CsvHeaderLocation,
    /// ReaderConfig.CSVHeaders (with CSVHeaderLocation GIVEN).
    pub csv_headers: Option<Vec<String>>,
    /// ReaderConfig.CSVDelimiter, as the byte it names (default `,`).
    pub delimiter: u8,
    /// ReaderConfig.MaxItems or MaxItemsPath.
    pub max_items: Option<Dynamic<u64>>,
    /// Parameters (JSONPath): which object (`Bucket`, `Key`).
    pub parameters: Option<Payload>,
    /// Arguments (JSONata): which object.
    pub arguments: Option<Template>,
}

/// How an ItemReader's object is cut into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    /// Rows of a CSV file, each an object keyed by the headers.
    Csv,
    /// One JSON array.
    Json,
    /// One JSON value per line.
    Jsonl,
    /// An S3 inventory manifest (refused: Sluice has no inventories).
    Manifest,
    /// Parquet (refused: not read here).
    Parquet,
}

/// Where a CSV object's headers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvHeaderLocation {
    /// The first row holds them.
    FirstRow,
    /// ReaderConfig.CSVHeaders gives them.
    Given,
}
