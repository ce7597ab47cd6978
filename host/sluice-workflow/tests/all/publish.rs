//! The publishing Tasks: the messages each integration's arguments make, the results their
//! states see, and the named, catchable errors of arguments that make no message.

use serde_json::{Value, json};
use sluice_workflow::env::{Publication, Target};

use crate::support::{Fake, event_types, failed, run_on, succeeded};

fn task(resource: &str, params: Value) -> Value {
    json!({"StartAt": "P", "States": {"P": {
        "Type": "Task", "Resource": resource, "Parameters": params, "End": true}}})
}

/// The messages of the one Task the run made.
fn published(fake: &Fake) -> Vec<Publication> {
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    match &calls[0].target {
        Target::Publish(m) => m.clone(),
        other => panic!("expected a publication, got {other:?}"),
    }
}

#[test]
fn nats_publish_sends_the_message_as_json_with_its_headers() {
    let fake = Fake::new();
    let def = task(
        "arn:sluice:states:::nats:publish",
        json!({"Subject": "orders.shipped", "Message": {"id.$": "$.id"}, "Headers": {"Sluice-Kind": "ship"}}),
    );
    let (e, _) = run_on(&def, json!({"id": 4}), &fake);
    assert_eq!(succeeded(&e), json!({"MessageId": "exec/P/1/0"}));
    assert_eq!(
        published(&fake),
        [Publication {
            subject: "orders.shipped".into(),
            data: r#"{"id":4}"#.into(),
            headers: vec![("Sluice-Kind".into(), "ship".into())],
        }]
    );
    let types = event_types(&e);
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(e.history[2].details["resourceType"], "nats");
    assert_eq!(e.history[2].details["resource"], "publish");
}

#[test]
fn sns_publish_goes_to_the_topics_subject() {
    let fake = Fake::new();
    let def = task(
        "arn:aws:states:::sns:publish",
        json!({
            "TopicArn": "arn:aws:sns:us-east-1:111111111111:order-events",
            "Message.$": "$.text", "Subject": "Shipped",
            "MessageAttributes": {"priority": {"DataType": "String", "StringValue": "high"}}
        }),
    );
    let (e, _) = run_on(&def, json!({"text": "order 4 shipped"}), &fake);
    let out = succeeded(&e);
    assert_eq!(out["MessageId"], "exec/P/1/0");
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], 200);
    assert_eq!(
        published(&fake),
        [Publication {
            subject: "sns.order-events".into(),
            data: "order 4 shipped".into(),
            headers: vec![
                ("Sns-Subject".into(), "Shipped".into()),
                ("Sns-Attribute-priority".into(), "high".into())
            ],
        }]
    );
    // A JSON Message goes out as its JSON text.
    let fake = Fake::new();
    let def = task(
        "arn:aws:states:::sns:publish",
        json!({"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message.$": "$"}),
    );
    run_on(&def, json!({"a": 1}), &fake);
    assert_eq!(published(&fake)[0].data, r#"{"a":1}"#);
}

#[test]
fn put_events_sends_eventbridge_events_to_bus_and_source_subjects() {
    let fake = Fake::new();
    let def = task(
        "arn:aws:states:::events:putEvents",
        json!({"Entries": [
            {"Source": "com.example.orders", "DetailType": "OrderShipped", "Detail": {"id.$": "$.id"}},
            {"Source": "billing", "DetailType": "Invoice", "Detail": "{\"n\": 2}", "EventBusName": "finance"}
        ]}),
    );
    let (e, _) = run_on(&def, json!({"id": 4}), &fake);
    let out = succeeded(&e);
    assert_eq!(out["FailedEntryCount"], 0);
    let msgs = published(&fake);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].subject, "events.default.com.example.orders");
    assert_eq!(msgs[1].subject, "events.finance.billing");
    let bodies: Vec<Value> = msgs
        .iter()
        .map(|m| serde_json::from_str(&m.data).unwrap())
        .collect();
    assert_eq!(bodies[0]["detail"], json!({"id": 4}));
    assert_eq!(bodies[0]["detail-type"], "OrderShipped");
    assert_eq!(bodies[0]["source"], "com.example.orders");
    assert_eq!(bodies[1]["detail"], json!({"n": 2}));
    // Each entry's EventId is the id its event carries.
    let ids: Vec<&Value> = out["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["EventId"])
        .collect();
    assert_eq!(ids, [&bodies[0]["id"], &bodies[1]["id"]]);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        msgs[0].headers,
        [
            ("ce-type".to_owned(), "OrderShipped".to_owned()),
            ("ce-source".to_owned(), "com.example.orders".to_owned())
        ]
    );
}

#[test]
fn arguments_that_make_no_message_fail_the_task_with_a_catchable_named_error() {
    let cases = [
        (
            "arn:sluice:states:::nats:publish",
            json!({"Subject": "orders.*", "Message": 1}),
            "Sluice.InvalidParameter",
            "cannot be published to",
        ),
        (
            "arn:sluice:states:::nats:publish",
            json!({"Subject": "a", "Message": 1, "Headers": {"Nats-Msg-Id": "x"}}),
            "Sluice.InvalidParameter",
            "cannot be a header",
        ),
        (
            "arn:sluice:states:::nats:publish",
            json!({"Subject": "a", "Message": 1, "Headers": {"nats-expected-stream": "X"}}),
            "Sluice.InvalidParameter",
            "cannot be a header",
        ),
        (
            "arn:sluice:states:::nats:publish",
            json!({"Message": 1}),
            "Sluice.InvalidParameter",
            "'Subject' is required",
        ),
        (
            "arn:aws:states:::sns:publish",
            json!({"TopicArn": "not-an-arn", "Message": "m"}),
            "SNS.InvalidParameterException",
            "is not an SNS topic ARN",
        ),
        (
            "arn:aws:states:::events:putEvents",
            json!({"Entries": []}),
            "EventBridge.ValidationException",
            "1 to 10 entries",
        ),
        (
            "arn:aws:states:::events:putEvents",
            json!({"Entries": [{"Source": "a b", "DetailType": "T", "Detail": {}}]}),
            "EventBridge.ValidationException",
            "Entries[0]: The Source 'a b' cannot name a subject",
        ),
    ];
    for (resource, params, error, cause) in cases {
        let fake = Fake::new();
        let (e, _) = run_on(&task(resource, params.clone()), json!({}), &fake);
        let (err, why) = failed(&e);
        assert_eq!(err, error, "{params}");
        assert!(why.contains(cause), "{params}: {why}");
        assert!(
            fake.calls().is_empty(),
            "nothing was published for {params}"
        );
        assert!(event_types(&e).contains(&"TaskFailed"), "{params}");
        // ... and a Catch sees it.
        let mut def = task(resource, params.clone());
        def["States"]["P"]["Catch"] = json!([{"ErrorEquals": [error], "Next": "Caught"}]);
        def["States"]["Caught"] = json!({"Type": "Pass", "End": true});
        let (e, _) = run_on(&def, json!({"x": 1}), &Fake::new());
        assert_eq!(succeeded(&e)["Error"], error, "{params}");
    }
}

#[test]
fn sns_publish_can_wait_for_a_task_token() {
    let fake = Fake::new();
    let def = task(
        "arn:aws:states:::sns:publish.waitForTaskToken",
        json!({"TopicArn": "arn:aws:sns:us-east-1:1:approvals", "Message": {"token.$": "$$.Task.Token"}}),
    );
    let (e, _) = run_on(&def, json!({}), &fake);
    // In memory nothing sends the token back: the execution waits, its token published.
    assert_eq!(e.status, sluice_workflow::machine::Status::Running);
    let body: Value = serde_json::from_str(&published(&fake)[0].data).unwrap();
    let token = body["token"].as_str().unwrap();
    assert!(e.waits_for(token));
    assert_eq!(event_types(&e).last(), Some(&"TaskSubmitted"));
}
