//! What a Task's `Resource` names: a Sluice stage, directly or through the Lambda forms AWS
//! definitions use, so an existing definition runs unchanged.

/// A Task resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A stage by name: `Resource: "validate-order"`, or a Lambda function ARN
    /// (`arn:aws:lambda:<region>:<account>:function:NAME[:version-or-alias]`), whose result
    /// is the stage's output as is.
    Stage {
        /// The stage's name.
        name: String,
        /// The version or alias suffix of the ARN, if any.
        qualifier: Option<String>,
    },
    /// `arn:aws:states:::lambda:invoke`: the stage named by the `FunctionName` argument,
    /// with `Payload` as input, and the result wrapped as AWS's Lambda integration does.
    LambdaInvoke,
}

/// The integration ARN that invokes a Lambda function by `FunctionName`.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

fn stage_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Resource {
    /// Parse a `Resource` value; the error names the resource.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == LAMBDA_INVOKE {
            return Ok(Self::LambdaInvoke);
        }
        if let Some(rest) = s.strip_prefix("arn:") {
            // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() >= 6 && parts[1] == "lambda" && parts[4] == "function" {
                let name = parts[5];
                let qualifier = parts.get(6).map(|q| (*q).to_owned());
                if parts.len() <= 7 && stage_name_ok(name) {
                    return Ok(Self::Stage {
                        name: name.to_owned(),
                        qualifier,
                    });
                }
            }
            return Err(format!(
                "The resource '{s}' is not supported: a Task runs a Sluice stage, named directly, by a Lambda function ARN, or through {LAMBDA_INVOKE}"
            ));
        }
        if stage_name_ok(s) {
            return Ok(Self::Stage {
                name: s.to_owned(),
                qualifier: None,
            });
        }
        Err(format!(
            "The resource '{s}' is not a stage name (letters, digits, '-' and '_', at most 64) nor a supported ARN"
        ))
    }

    /// Whether the task's result is wrapped as `lambda:invoke` wraps it.
    pub fn wraps(&self) -> bool {
        matches!(self, Self::LambdaInvoke)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_and_lambda_forms_map_to_stages() {
        assert_eq!(
            Resource::parse("validate-order").unwrap(),
            Resource::Stage {
                name: "validate-order".into(),
                qualifier: None
            }
        );
        assert_eq!(
            Resource::parse("arn:aws:lambda:us-east-1:111111111111:function:pay:live").unwrap(),
            Resource::Stage {
                name: "pay".into(),
                qualifier: Some("live".into())
            }
        );
        assert_eq!(
            Resource::parse(LAMBDA_INVOKE).unwrap(),
            Resource::LambdaInvoke
        );
        let e = Resource::parse("arn:aws:states:::sqs:sendMessage").unwrap_err();
        assert!(
            e.contains("'arn:aws:states:::sqs:sendMessage' is not supported"),
            "{e}"
        );
        assert!(Resource::parse("has space").is_err());
    }
}
