//! Which workflows use a stage (a stage in use cannot be deleted): those with a Task whose
//! `Resource` names it (directly, as a Lambda function ARN, or as `lambda:invoke`'s literal
//! `FunctionName`). The running triggers say for themselves which stage they run.

use serde_json::Value;
use sluice_workflow::resource::Resource;

/// The workflows of the running host, and the stages each uses.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    workflows: Vec<(String, Vec<String>)>,
}

/// Stage names compare with `_` and `-` alike, as Task resources resolve them.
fn key(name: &str) -> String {
    name.replace('_', "-")
}

impl Usage {
    /// What the workflows `(name, definition)` use.
    pub(crate) fn of_workflows<'a>(
        workflows: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Self {
        let workflows = workflows
            .into_iter()
            .map(|(name, definition)| {
                let mut stages = Vec::new();
                task_stages(definition, &mut stages);
                stages.sort();
                stages.dedup();
                (name.to_owned(), stages)
            })
            .collect();
        Self { workflows }
    }

    /// The workflows that use `stage`.
    pub(crate) fn of(&self, stage: &str) -> Vec<String> {
        let k = key(stage);
        self.workflows
            .iter()
            .filter(|(_, s)| s.contains(&k))
            .map(|(w, _)| w.clone())
            .collect()
    }
}

/// Every stage a Task in `v` (a definition, or any part of one) names, found by walking it
/// (Parallel branches and Map processors are nested definitions).
fn task_stages(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("Type").and_then(Value::as_str) == Some("Task")
                && let Some(resource) = m.get("Resource").and_then(Value::as_str)
            {
                match Resource::parse(resource) {
                    Ok(Resource::Stage { name, .. }) => out.push(key(&name)),
                    Ok(Resource::LambdaInvoke) => {
                        let name = ["Parameters", "Arguments"]
                            .iter()
                            .find_map(|p| m.get(*p)?.get("FunctionName")?.as_str());
                        if let Some(name) = name {
                            out.push(key(function_name(name)));
                        }
                    }
                    _ => {}
                }
            }
            for child in m.values() {
                task_stages(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| task_stages(c, out)),
        _ => {}
    }
}

/// The function of a `FunctionName`: a name, or an ARN (`...:function:NAME[:qualifier]`).
fn function_name(f: &str) -> &str {
    match f.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => f.split(':').next().unwrap_or(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_stages_of_nested_tasks_in_every_resource_form() {
        let def = serde_json::json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Task", "Resource": "validate_order", "Next": "P"},
                "P": {"Type": "Parallel", "Branches": [{
                    "StartAt": "B",
                    "States": {"B": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:store-order:live", "End": true}}
                }], "Next": "C"},
                "C": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "notify", "Payload.$": "$"}, "Next": "D"},
                "D": {"Type": "Task", "Resource": "arn:sluice:states:::nats:publish", "End": true}
            }
        });
        let mut found = Vec::new();
        task_stages(&def, &mut found);
        found.sort();
        assert_eq!(found, ["notify", "store-order", "validate-order"]);
        assert_eq!(function_name("arn:aws:lambda:r:1:function:f:3"), "f");
        assert_eq!(function_name("f:live"), "f");
    }
}
