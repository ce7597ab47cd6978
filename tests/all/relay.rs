//! The outbox relay on a real nats-server: what it does with a row no stream takes.

use async_nats::jetstream;
use sluice_nats::OutboxRelay;
use sluice_tests::{NatsServer, create_stream, messages_in, open_store};

/// A row no stream takes (its subject is captured by none) stays in the outbox and is named,
/// while the rows behind it go out; once a stream captures the subject, the next drain
/// publishes it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_row_no_stream_takes_waits_without_holding_up_the_others() {
    use sluice_model::state::{Emitted, StateSession};
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    create_stream(&js, "GOOD", "good.>").await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), vec![]);
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
