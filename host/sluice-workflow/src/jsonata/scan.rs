//! A lexical pass over an expression's source for its `$name` tokens: which variables to bind
//! at evaluation (a superset is harmless) and, best effort, which variables it reads for the
//! validator. Strings, backtick names and comments are skipped; a `$` inside a regex literal is
//! not told apart from one outside (a false positive at worst).

/// What [`scan`] found.
pub(crate) struct Scanned {
    /// Every `$name` outside strings and comments that is not only ever called (`$sum(`), once
    /// each, in order of appearance.
    pub(crate) tokens: Vec<String>,
    /// The names read as variables: not called (`$f(`), not assigned (`$x :=`), not a lambda
    /// parameter, not `states`.
    pub(crate) variables: Vec<String>,
}

/// Whether `c` can continue a JSONata name (its tokenizer ends a name at an operator,
/// punctuation or whitespace).
fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !"[]{}().,@#;:?+-*/%|=<>^&!~'\"`$\\".contains(c)
}

/// One `$name` occurrence and what follows it.
struct Occurrence {
    name: String,
    called: bool,
    assigned: bool,
    parameter: bool,
}

/// Scans `source`.
pub(crate) fn scan(source: &str) -> Scanned {
    let chars: Vec<char> = source.chars().collect();
    let mut found: Vec<Occurrence> = Vec::new();
    // Inside `function(` / `λ(` up to the matching `)`: names there are parameters.
    let mut in_params = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                // A string or backtick name: skip to the closing quote, honouring escapes.
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && is_name_char(chars[end]) {
                    end += 1;
                }
                if end > start {
                    let name: String = chars[start..end].iter().collect();
                    let mut next = end;
                    while next < chars.len() && chars[next].is_whitespace() {
                        next += 1;
                    }
                    found.push(Occurrence {
                        name,
                        called: chars.get(next) == Some(&'('),
                        assigned: chars.get(next) == Some(&':')
                            && chars.get(next + 1) == Some(&'='),
                        parameter: in_params,
                    });
                }
                i = end.max(i + 1);
            }
            ')' => {
                in_params = false;
                i += 1;
            }
            _ if is_name_char(c) => {
                let start = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if word == "function" || word == "λ" {
                    let mut next = i;
                    while next < chars.len() && chars[next].is_whitespace() {
                        next += 1;
                    }
                    if chars.get(next) == Some(&'(') {
                        in_params = true;
                        i = next + 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    let mut tokens: Vec<String> = Vec::new();
    for o in &found {
        // A name only ever called is a function: a JSON variable of that name could only turn
        // the call into an error (T1006), so it is not bound.
        if !o.called && !tokens.contains(&o.name) {
            tokens.push(o.name.clone());
        }
    }
    let local = |name: &str| {
        found
            .iter()
            .any(|o| o.name == name && (o.assigned || o.parameter))
    };
    let mut variables: Vec<String> = Vec::new();
    for o in &found {
        if o.called || o.assigned || o.parameter || o.name == "states" || local(&o.name) {
            continue;
        }
        if !variables.contains(&o.name) {
            variables.push(o.name.clone());
        }
    }
    Scanned { tokens, variables }
}
