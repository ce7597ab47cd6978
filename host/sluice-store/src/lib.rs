//! Sluice's embedded store: key-value buckets and DynamoDB-style tables in one redb file,
//! committed once per batch together with each event's dedupe record and its outbox rows.
//!
//! - [`Store::open`] opens (or creates) the database, checks the file format version and
//!   declares the tables' secondary indexes.
//! - A [`StoreSession`] (one per worker) implements [`sluice_model::state::StateSession`]:
//!   per-event write sets over a per-batch write set over a read snapshot, and
//!   [`StateSession::commit`] writes the whole batch — state, secondary indexes, TTL entries,
//!   dedupe records, outbox rows — in ONE durable redb transaction.
//!
//! - State locks are per bucket and table ([`StateSession::set_lock_scope`]), so stages with
//!   disjoint state never wait for each other.
//! - A storage failure (a full disk) takes the store down without losing anything; it reopens
//!   the database by itself with backoff ([`Store::health`]). [`QuotaFile`] simulates a
//!   filling disk for tests, or caps a database's size.
//!
//! redb is blocking: callers run sessions on worker threads, never on an async executor.
//!
//! [`StateSession::commit`]: sluice_model::state::StateSession::commit
//! [`StateSession::set_lock_scope`]: sluice_model::state::StateSession::set_lock_scope

mod codec;
mod commit;
mod health;
mod locks;
mod outbox;
pub mod quota;
pub mod schema;
mod session;
mod store;

pub use health::Health;
pub use outbox::OutboxRow;
pub use quota::{QuotaFile, QuotaHandle};
pub use schema::FORMAT_VERSION;
pub use session::StoreSession;
pub use store::{OpenError, Store, StoreConfig, SweepReport};
