//! The fleet's job queue and leases on NATS JetStream.
//!
//! * A work-queue stream `NS_runs` on subjects `NS.runs.<tenant>`: at most one message
//!   per subject (`discard_new_per_subject`), so a tenant never has two jobs pending or
//!   in flight, and publishes carry a `Nats-Msg-Id` (`tenant:due`), so several
//!   schedulers publishing the same slot make one job.
//! * A durable pull consumer `NS_workers` shared by every worker, explicit acks, AckWait
//!   = the lease time: a worker that dies without acking has its job redelivered.
//! * A key-value bucket `NS_leases`: the key of a tenant is its lease while a worker
//!   runs it. `create` is exclusive; its revision only grows and is the run's **fencing
//!   token**: the store refuses a persist under a token lower than the tenant's last.
//!   Entries expire after the lease time unless renewed (`update` at the revision held).
//!
//! Delivery is at least once, and the server accepts late acks: correctness comes from
//! the fence checked in the store's commit, and the job is acked only after it.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, kv, stream};
use serde::{Deserialize, Serialize};

/// A run's step progress as a worker publishes it for the consoles: core NATS on
/// `NS.progress.<tenant>`, kept nowhere (a console that misses a note sees the next).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressNote {
    pub tenant: String,
    pub worker: String,
    /// `false` once the run is over.
    pub running: bool,
    /// `(step, done, total)`.
    pub steps: Vec<(String, u64, Option<u64>)>,
}

/// Notes larger than this are dropped by the receiver.
pub const MAX_PROGRESS_NOTE_BYTES: usize = 64 * 1024;

/// Why the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("invalid queue namespace {0:?}: use letters, digits, '-' and '_'")]
    Namespace(String),
    #[error("cannot connect to the queue at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("queue: {0}")]
    Nats(String),
    #[error("a job that is not JSON of a job: {0}")]
    BadJob(String),
}

/// Connection attempts, a second apart, before a process gives up on the queue.
const CONNECT_ATTEMPTS: u32 = 30;

fn nats(error: impl std::fmt::Display) -> QueueError {
    QueueError::Nats(error.to_string())
}

/// What the queue is asked to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub tenant: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The slot: when the tenant was due (schedule) or triggered (manual), epoch ms.
    pub due_ms: i64,
}

impl Job {
    /// Why the run starts, as the store records it.
    pub fn store_trigger(&self) -> graph_store::Trigger {
        if self.trigger == "manual" {
            graph_store::Trigger::Manual
        } else {
            graph_store::Trigger::Schedule
        }
    }

    /// The message id that makes publishes of one slot one job.
    pub fn message_id(&self) -> String {
        format!("{}:{}:{}", self.tenant, self.trigger, self.due_ms)
    }
}

/// How a publish went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    New,
    /// The same slot was published already (by this or another scheduler).
    Duplicate,
    /// The tenant has a job pending or in flight.
    AlreadyPending,
}

/// Queue names and timing.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Prefix of every stream, bucket and subject (several fleets on one server).
    pub namespace: String,
    /// How long a lease lasts without renewal, and the consumer's AckWait.
    pub lease: Duration,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            namespace: "integration_host".into(),
            lease: Duration::from_secs(60),
        }
    }
}

/// The queue of one process.
#[derive(Clone)]
pub struct Queue {
    js: jetstream::Context,
    settings: QueueSettings,
    leases: kv::Store,
}

/// A held lease: its fencing token is the revision it was created at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub fence: u64,
    /// The revision to renew at.
    pub revision: u64,
}

/// A job taken from the queue, with what acks it (clones ack the same message).
#[derive(Clone)]
pub struct Taken {
    pub job: Job,
    /// How many times it was delivered (1 the first time).
    pub delivered: i64,
    message: std::sync::Arc<jetstream::Message>,
}

impl Taken {
    /// The job is done: removes it from the stream (waits for the server's reply).
    pub async fn ack(&self) -> Result<(), QueueError> {
        self.message.double_ack().await.map_err(nats)
    }

    /// Still working: the server waits another AckWait before redelivering.
    pub async fn progress(&self) -> Result<(), QueueError> {
        self.message.ack_with(AckKind::Progress).await.map_err(nats)
    }

    /// Not now: redelivered after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<(), QueueError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(nats)
    }

    /// Never again (after the dead-letter was published).
    pub async fn term(&self) -> Result<(), QueueError> {
        self.message.ack_with(AckKind::Term).await.map_err(nats)
    }
}

fn check_namespace(namespace: &str) -> Result<(), QueueError> {
    if namespace.is_empty()
        || namespace.len() > 64
        || !namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(QueueError::Namespace(namespace.to_owned()));
    }
    Ok(())
}

/// A tenant id as one subject token: ids may hold '.', which separates tokens, and
/// never '~'.
fn subject_token(tenant: &str) -> String {
    tenant.replace('.', "~")
}

impl Queue {
    /// Connects and makes (or finds) the stream, the consumer and the lease bucket.
    /// Every process may do this at once.
    pub async fn connect(url: &str, settings: QueueSettings) -> Result<Queue, QueueError> {
        check_namespace(&settings.namespace)?;
        // A server restarting (or not up yet) is waited for, a while.
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            match async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .connect(url)
                .await
            {
                Ok(client) => break client,
                Err(error) if attempt < CONNECT_ATTEMPTS => {
                    tracing::warn!("queue at {url} not reachable (attempt {attempt}): {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    return Err(QueueError::Connect {
                        url: url.to_owned(),
                        reason: error.to_string(),
                    });
                }
            }
        };
        let js = jetstream::new(client);
        let ns = &settings.namespace;
        js.get_or_create_stream(stream::Config {
            name: format!("{ns}_runs"),
            subjects: vec![format!("{ns}.runs.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            max_messages_per_subject: 1,
            discard: stream::DiscardPolicy::New,
            discard_new_per_subject: true,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
        js.get_or_create_stream(stream::Config {
            name: format!("{ns}_dead"),
            subjects: vec![format!("{ns}.dead.>")],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        })
        .await
        .map_err(nats)?;
        let bucket = format!("{ns}_leases");
        let leases = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => match js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    history: 1,
                    max_age: settings.lease,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
            {
                Ok(store) => store,
                // Another process may have made it in between.
                Err(create) => js.get_key_value(&bucket).await.map_err(|get| {
                    QueueError::Nats(format!("lease bucket {bucket}: {create}; {get}"))
                })?,
            },
        };
        Ok(Queue {
            js,
            settings,
            leases,
        })
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn subject(&self, kind: &str, tenant: &str) -> String {
        format!(
            "{}.{kind}.{}",
            self.settings.namespace,
            subject_token(tenant)
        )
    }

    /// Publishes a job unless the same slot was published or the tenant has one.
    pub async fn publish(&self, job: &Job) -> Result<Published, QueueError> {
        let payload = serde_json::to_vec(job).map_err(nats)?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.message_id().as_str());
        let ack = self
            .js
            .publish_with_headers(self.subject("runs", &job.tenant), headers, payload.into())
            .await
            .map_err(nats)?
            .await;
        match ack {
            Ok(ack) if ack.duplicate => Ok(Published::Duplicate),
            Ok(_) => Ok(Published::New),
            // discard_new_per_subject: the tenant's one message is there.
            Err(error) if error.to_string().contains("maximum messages per subject") => {
                Ok(Published::AlreadyPending)
            }
            Err(error) => Err(nats(error)),
        }
    }

    /// The consumer every worker shares.
    pub async fn consumer(&self) -> Result<consumer::PullConsumer, QueueError> {
        let ns = &self.settings.namespace;
        let stream = self
            .js
            .get_stream(format!("{ns}_runs"))
            .await
            .map_err(nats)?;
        stream
            .get_or_create_consumer(
                &format!("{ns}_workers"),
                consumer::pull::Config {
                    durable_name: Some(format!("{ns}_workers")),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.lease,
                    // Waiting for a lease NAKs, and each NAK counts as a delivery:
                    // unlimited, and real failures go to the dead-letter subject.
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats)
    }

    /// Takes the next job, waiting at most `wait`.
    pub async fn take(
        &self,
        consumer: &consumer::PullConsumer,
        wait: Duration,
    ) -> Result<Option<Taken>, QueueError> {
        use futures_util::StreamExt;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(nats)?;
        let Some(message) = batch.next().await else {
            return Ok(None);
        };
        let message = message.map_err(nats)?;
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        match serde_json::from_slice::<Job>(&message.payload) {
            Ok(job) => Ok(Some(Taken {
                job,
                delivered,
                message: std::sync::Arc::new(message),
            })),
            Err(error) => {
                // Nobody can run it: drop it for good.
                let _ = message.ack_with(AckKind::Term).await;
                Err(QueueError::BadJob(error.to_string()))
            }
        }
    }

    /// Takes the tenant's lease: `None` while another worker holds it.
    pub async fn acquire(&self, tenant: &str, holder: &str) -> Result<Option<Lease>, QueueError> {
        match self
            .leases
            .create(tenant, holder.to_owned().into_bytes().into())
            .await
        {
            Ok(revision) => Ok(Some(Lease {
                fence: revision,
                revision,
            })),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(error) => Err(nats(error)),
        }
    }

    /// Renews a lease held at `lease.revision`: `None` when it was lost (expired and
    /// taken, or expired).
    pub async fn renew(
        &self,
        tenant: &str,
        holder: &str,
        lease: Lease,
    ) -> Result<Option<Lease>, QueueError> {
        match self
            .leases
            .update(
                tenant,
                holder.to_owned().into_bytes().into(),
                lease.revision,
            )
            .await
        {
            Ok(revision) => Ok(Some(Lease {
                fence: lease.fence,
                revision,
            })),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(error) => Err(nats(error)),
        }
    }

    /// Gives a lease back (only if still ours).
    pub async fn release(&self, tenant: &str, lease: Lease) -> Result<(), QueueError> {
        match self
            .leases
            .delete_expect_revision(tenant, Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
            Err(error) => Err(nats(error)),
        }
    }

    /// Publishes a run's progress for the consoles (best effort).
    pub async fn publish_progress(&self, note: &ProgressNote) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(note).map_err(nats)?;
        self.js
            .client()
            .publish(self.subject("progress", &note.tenant), payload.into())
            .await
            .map_err(nats)
    }

    /// Every worker's progress notes, as they come.
    pub async fn progress_notes(&self) -> Result<async_nats::Subscriber, QueueError> {
        self.js
            .client()
            .subscribe(format!("{}.progress.>", self.settings.namespace))
            .await
            .map_err(nats)
    }

    /// Where a tenant's dead letters go: `NS.dead.<tenant>`.
    pub fn dead_letter_subject(&self, tenant: &str) -> String {
        self.subject("dead", tenant)
    }

    /// Records a job that failed for good on `NS.dead.<tenant>`, with its error.
    pub async fn dead_letter(&self, job: &Job, error: &str) -> Result<(), QueueError> {
        let payload = serde_json::json!({
            "job": job,
            "error": error,
            "at_ms": graph_store::now_ms(),
        });
        self.js
            .publish(
                self.dead_letter_subject(&job.tenant),
                serde_json::to_vec(&payload).map_err(nats)?.into(),
            )
            .await
            .map_err(nats)?
            .await
            .map_err(nats)?;
        Ok(())
    }
}
