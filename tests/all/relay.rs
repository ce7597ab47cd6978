//! The outbox relay on a real nats-server: rows no stream takes, rows past the payload
//! limit, and publishes whose acks never come.

use async_nats::jetstream;
use sluice_nats::OutboxRelay;
use sluice_tests::{NatsServer, create_stream, messages_in, open_store};

/// A nats-server with the stream `GOOD` on `good.>`, and a store in a temp dir.
async fn server_and_store() -> (
    NatsServer,
    jetstream::Context,
    tempfile::TempDir,
    sluice_store::Store,
) {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "GOOD", "good.>").await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), vec![]);
    (nats, js, dir, store)
}

/// A row no stream takes (its subject is captured by none) stays in the outbox and is named,
/// while the rows behind it go out; once a stream captures the subject, the next drain
/// publishes it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_row_no_stream_takes_waits_without_holding_up_the_others() {
    use sluice_model::state::{Emitted, StateSession};
    let (_nats, js, _dir, store) = server_and_store().await;
    let mut s = store.open_session();
    let emit = |s: &mut sluice_store::StoreSession, subject: &str, n: u8| {
        s.emit(Emitted {
            subject: subject.into(),
            data: vec![n],
            headers: vec![],
        });
    };
    s.begin_event("first");
    emit(&mut s, "nowhere.yet", 0);
    emit(&mut s, "good.a", 1);
    s.finish_event(true);
    s.begin_event("second");
    for n in 2..5 {
        emit(&mut s, "good.b", n);
    }
    s.finish_event(true);
    s.commit().unwrap();
    let relay = OutboxRelay::new(js.clone(), store.clone());
    assert_eq!(relay.drain().await.unwrap(), 4, "the good rows went out");
    let left = store.outbox(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].msg_id, "first/0");
    assert_eq!(messages_in(&js, "GOOD").await, 4);
    // Still no stream: tried again, still kept.
    assert_eq!(relay.drain().await.unwrap(), 0);
    assert_eq!(store.outbox(10).unwrap().len(), 1);
    create_stream(&js, "LATE", "nowhere.>").await;
    assert_eq!(relay.drain().await.unwrap(), 1);
    assert!(store.outbox(10).unwrap().is_empty());
    assert_eq!(messages_in(&js, "LATE").await, 1);
    assert_eq!(messages_in(&js, "GOOD").await, 4, "nothing published twice");
}

/// Publishes whose acks never come (a broker killed as they went out loses them; here a
/// plain subscriber takes the subject and answers nothing) cost one ack time-out (5 s) per
/// drain, not one per row: the relay, which every trigger waits for, is free again within
/// seconds, and the rows stay in the outbox for the next drain. (Awaited one by one, 100
/// lost acks held the relay for 500 s; 1,000 of them stalled the broker-restart fault test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_publish_acks_hold_the_relay_for_one_time_out_not_one_per_row() {
    use futures::StreamExt;
    use sluice_model::state::{Emitted, StateSession};
    let nats = NatsServer::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client.clone());
    // A subscriber, so no "no responders" status answers the publishes: they just wait.
    let mut swallow = client.subscribe("void.>").await.unwrap();
    let swallowed = tokio::spawn(async move {
        // The first row (however long the set-up takes), every row, and then no more for
        // a second: none was published twice.
        let mut n = usize::from(swallow.next().await.is_some());
        while let Ok(Some(_)) =
            tokio::time::timeout(std::time::Duration::from_secs(1), swallow.next()).await
        {
            n += 1;
        }
        n
    });
    client.flush().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), vec![]);
    let mut s = store.open_session();
    s.begin_event("lost");
    for n in 0..100u8 {
        s.emit(Emitted {
            subject: format!("void.{n}"),
            data: vec![n],
            headers: vec![],
        });
    }
    s.finish_event(true);
    s.commit().unwrap();
    let relay = OutboxRelay::new(js, store.clone());
    let started = std::time::Instant::now();
    let drained = relay.drain().await;
    let took = started.elapsed();
    assert!(
        drained.is_err(),
        "unacknowledged publishes are an error: {drained:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(30),
        "the drain held the relay for {took:?}"
    );
    assert_eq!(store.outbox(1000).unwrap().len(), 100, "every row kept");
    assert_eq!(swallowed.await.unwrap(), 100, "each row was published once");
}

/// A row past the server's payload limit (1 MiB by default; the client refuses it before
/// sending) stays in the outbox while the rows behind it go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_row_past_the_payload_limit_waits_without_holding_up_the_others() {
    use sluice_model::state::{Emitted, StateSession};
    let (_nats, js, _dir, store) = server_and_store().await;
    let mut s = store.open_session();
    s.begin_event("big");
    for data in [vec![7u8; 2 << 20], vec![1], vec![2]] {
        s.emit(Emitted {
            subject: "good.x".into(),
            data,
            headers: vec![],
        });
    }
    s.finish_event(true);
    s.commit().unwrap();
    let relay = OutboxRelay::new(js.clone(), store.clone());
    assert_eq!(relay.drain().await.unwrap(), 2, "the small rows went out");
    let left = store.outbox(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].msg_id, "big/0");
    assert_eq!(messages_in(&js, "GOOD").await, 2);
}
