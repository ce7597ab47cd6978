//! What a Task's `Resource` names: a Sluice stage, directly or through the Lambda forms AWS
//! definitions use, so an existing definition runs unchanged; or a publication to NATS
//! subjects (Sluice's own `nats:publish`, and `sns:publish` / `events:putEvents` mapped onto
//! subjects). Any of them but a bare Lambda ARN may end in `.waitForTaskToken`.

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
    /// [`NATS_PUBLISH`]: one message (`Message`) to the subject `Subject`.
    NatsPublish,
    /// [`SNS_PUBLISH`]: `Message` to the subject of the topic `TopicArn` (see
    /// [`sns_subject`]).
    SnsPublish,
    /// [`PUT_EVENTS`]: each of `Entries` to the subject of its bus and source (see
    /// [`events_subject`]).
    PutEvents,
}

/// How a Task waits for its result (the ARN's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// The resource's own result (no suffix).
    RequestResponse,
    /// `.waitForTaskToken`: the resource gets `$$.Task.Token` and the Task waits for
    /// SendTaskSuccess or SendTaskFailure with it.
    WaitForTaskToken,
}

/// The integration ARN that invokes a Lambda function by `FunctionName`.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// Sluice's integration that publishes `Message` to the NATS subject `Subject`.
pub const NATS_PUBLISH: &str = "arn:sluice:states:::nats:publish";
/// SNS Publish, mapped onto a subject per topic.
pub const SNS_PUBLISH: &str = "arn:aws:states:::sns:publish";
/// EventBridge PutEvents, mapped onto a subject per bus and source.
pub const PUT_EVENTS: &str = "arn:aws:states:::events:putEvents";
/// The suffix of the callback pattern.
pub const WAIT_FOR_TASK_TOKEN: &str = ".waitForTaskToken";

/// The subject an SNS topic publishes to: `sns.<topic name>` (the last field of its ARN).
pub fn sns_subject(topic_arn: &str) -> Result<String, String> {
    let name = topic_arn.rsplit(':').next().unwrap_or_default();
    if topic_arn.starts_with("arn:") && topic_arn.split(':').count() == 6 && token_ok(name) {
        Ok(format!("sns.{name}"))
    } else {
        Err(format!(
            "The TopicArn '{topic_arn}' is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>, the name letters, digits, '-' and '_')"
        ))
    }
}

/// The subject an EventBridge entry goes to: `events.<bus>.<source>`, the bus `default`
/// unless `EventBusName` names another (by name or ARN); the source's dots become levels of
/// the subject, so `events.default.com.example.>` matches one application's events.
pub fn events_subject(bus: Option<&str>, source: &str) -> Result<String, String> {
    let bus = bus.map_or("default", |b| b.rsplit('/').next().unwrap_or(b));
    if !token_ok(bus) {
        return Err(format!(
            "The EventBusName '{bus}' cannot name a subject (letters, digits, '-' and '_')"
        ));
    }
    if source.is_empty() || !source.split('.').all(token_ok) {
        return Err(format!(
            "The Source '{source}' cannot name a subject: dot-separated parts of letters, digits, '-' and '_'"
        ));
    }
    Ok(format!("events.{bus}.{source}"))
}

/// Whether `s` may be one level of a subject Sluice builds (no wildcard, space or dot).
fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `s` is a subject a Task may publish to: dot-separated levels of printable
/// characters, no wildcard, not under `$` (the server's own subjects) or `_INBOX.`.
pub fn publish_subject_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && !s.starts_with('$')
        && !s.starts_with("_INBOX.")
        && s.split('.').all(|t| {
            !t.is_empty()
                && t != "*"
                && t != ">"
                && t.chars()
                    .all(|c| c.is_ascii_graphic() && c != '*' && c != '>')
        })
}

fn stage_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Resource {
    /// Parse a `Resource` value; the error names the resource.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with_pattern(s).map(|(r, _)| r)
    }

    /// Parse a `Resource` value and the pattern its suffix asks for.
    pub fn parse_with_pattern(s: &str) -> Result<(Self, Pattern), String> {
        let (base, pattern) = match s.strip_suffix(WAIT_FOR_TASK_TOKEN) {
            Some(b) => (b, Pattern::WaitForTaskToken),
            None => (s, Pattern::RequestResponse),
        };
        if base.ends_with(".sync") || base.contains(".sync:") {
            return Err(format!(
                "The resource '{s}' asks for the .sync pattern, which Sluice does not run: a Task waits for its stage, or for a task token with .waitForTaskToken"
            ));
        }
        let fixed = [
            (LAMBDA_INVOKE, Self::LambdaInvoke),
            (NATS_PUBLISH, Self::NatsPublish),
            (SNS_PUBLISH, Self::SnsPublish),
            (PUT_EVENTS, Self::PutEvents),
        ];
        if let Some((_, r)) = fixed.into_iter().find(|(arn, _)| *arn == base) {
            return Ok((r, pattern));
        }
        if let Some(rest) = base.strip_prefix("arn:") {
            // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() >= 6 && parts[1] == "lambda" && parts[4] == "function" {
                let name = parts[5];
                let qualifier = parts.get(6).map(|q| (*q).to_owned());
                if parts.len() <= 7 && stage_name_ok(name) {
                    if pattern == Pattern::WaitForTaskToken {
                        return Err(format!(
                            "The resource '{s}' cannot wait for a task token: as in AWS, a Lambda function ARN runs request-response; use {LAMBDA_INVOKE}{WAIT_FOR_TASK_TOKEN} with FunctionName"
                        ));
                    }
                    return Ok((
                        Self::Stage {
                            name: name.to_owned(),
                            qualifier,
                        },
                        pattern,
                    ));
                }
            }
            return Err(format!(
                "The resource '{s}' is not supported: a Task runs a Sluice stage (named directly, by a Lambda function ARN, or through {LAMBDA_INVOKE}), or publishes through {NATS_PUBLISH}, {SNS_PUBLISH} or {PUT_EVENTS}"
            ));
        }
        if stage_name_ok(base) {
            return Ok((
                Self::Stage {
                    name: base.to_owned(),
                    qualifier: None,
                },
                pattern,
            ));
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

    #[test]
    fn the_callback_suffix_and_the_publishing_integrations() {
        let p = |s: &str| Resource::parse_with_pattern(s);
        assert_eq!(
            p("arn:aws:states:::lambda:invoke.waitForTaskToken").unwrap(),
            (Resource::LambdaInvoke, Pattern::WaitForTaskToken)
        );
        assert_eq!(
            p("approve.waitForTaskToken").unwrap(),
            (
                Resource::Stage {
                    name: "approve".into(),
                    qualifier: None
                },
                Pattern::WaitForTaskToken
            )
        );
        assert_eq!(
            p(NATS_PUBLISH).unwrap(),
            (Resource::NatsPublish, Pattern::RequestResponse)
        );
        assert_eq!(
            p("arn:aws:states:::sns:publish.waitForTaskToken").unwrap(),
            (Resource::SnsPublish, Pattern::WaitForTaskToken)
        );
        assert_eq!(p(PUT_EVENTS).unwrap().0, Resource::PutEvents);
        let e = p("arn:aws:lambda:us-east-1:1:function:pay.waitForTaskToken").unwrap_err();
        assert!(e.contains("cannot wait for a task token"), "{e}");
        let e = p("arn:aws:states:::lambda:invoke.sync").unwrap_err();
        assert!(e.contains(".sync pattern"), "{e}");
    }

    #[test]
    fn topics_and_buses_map_onto_subjects() {
        assert_eq!(
            sns_subject("arn:aws:sns:us-east-1:111111111111:order-events").unwrap(),
            "sns.order-events"
        );
        assert!(sns_subject("order-events").is_err());
        assert!(sns_subject("arn:aws:sns:us-east-1:1:bad.name").is_err());
        assert_eq!(
            events_subject(None, "com.example.orders").unwrap(),
            "events.default.com.example.orders"
        );
        assert_eq!(
            events_subject(Some("arn:aws:events:us-east-1:1:event-bus/billing"), "shop").unwrap(),
            "events.billing.shop"
        );
        assert!(events_subject(None, "a..b").is_err());
        assert!(events_subject(None, "a.*").is_err());
        assert!(publish_subject_ok("approvals.requested"));
        for bad in ["", "a.*", "a.>", "$JS.API.x", "a..b", "has space"] {
            assert!(!publish_subject_ok(bad), "{bad}");
        }
    }
}
