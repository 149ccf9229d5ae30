//! The webhook delivery loop of one replica: it moves every active subscription along the
//! change feed (making its deliveries), takes the deliveries that are due (each held by one
//! replica at a time) and POSTs each as JSON, signed with HMAC-SHA256; a failure is tried
//! again after an exponential backoff and given up (dead-lettered) after the subscription's
//! number of attempts. Everything it knows is in the database: a restart or a killed replica
//! loses nothing, and a delivery whose replica died is taken again once its lease ends.

use std::{collections::HashMap, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::Sha256;
use tokio::{net::TcpStream, task::JoinSet};
use uuid::Uuid;

use crate::{
    clock::Clock,
    model::{Delivery, StoredChange, Webhook},
    store::{Attempt, Store},
};

/// How deliveries are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookOptions {
    /// The wait before the second attempt; it doubles with every further one.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// How many deliveries one replica makes at once.
    pub concurrency: usize,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }
}

/// How often the loop looks for due deliveries when no change wakes it.
const POLL: Duration = Duration::from_millis(250);
/// The most changes one subscription passes in one transaction.
const FAN_OUT: u64 = 500;

/// Runs the delivery loop until the task is aborted.
pub(super) async fn run(store: Store, clock: Arc<dyn Clock>, options: WebhookOptions) {
    let mut changes = store.subscribe_changes();
    let client = Client::new(options.timeout);
    loop {
        if let Err(error) = round(&store, &*clock, &client, options).await {
            tracing::warn!(%error, "webhook deliveries failed; trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let _ = tokio::time::timeout(POLL, changes.changed()).await;
    }
}

/// Passes the new changes to every subscription, then makes the due deliveries until none
/// is left.
async fn round(
    store: &Store,
    clock: &dyn Clock,
    client: &Client,
    options: WebhookOptions,
) -> crate::error::Result<()> {
    // Every webhook, read once per round: the deliveries below take theirs from here.
    let mut known: HashMap<Uuid, Webhook> = HashMap::new();
    let mut after = None;
    loop {
        let webhooks = store.list_webhooks(after, 100).await?;
        if after.is_none() && webhooks.is_empty() {
            // No webhook, so no delivery either.
            return Ok(());
        }
        for webhook in webhooks.iter().filter(|webhook| webhook.active) {
            // One webhook's trouble does not hold up the others'.
            loop {
                match store
                    .fan_out(webhook.id, clock.now().as_microsecond(), FAN_OUT)
                    .await
                {
                    Ok(passed) if passed == FAN_OUT => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, webhook = %webhook.id, "cannot make deliveries");
                        break;
                    }
                }
            }
        }
        let full = webhooks.len() == 100;
        after = webhooks.last().map(|last| last.id);
        known.extend(webhooks.into_iter().map(|webhook| (webhook.id, webhook)));
        if !full {
            break;
        }
    }
    loop {
        let now = clock.now().as_microsecond();
        let hold = (options.timeout * 3).max(Duration::from_secs(1));
        let lease = now.saturating_add(i64::try_from(hold.as_micros()).unwrap_or(i64::MAX));
        let due = store
            .claim_deliveries(now, lease, options.concurrency as u64)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = due.iter().map(|delivery| delivery.seq).collect();
        let changes = store.changes_with_seqs(&seqs).await?;
        let mut attempts = JoinSet::new();
        for delivery in due {
            // One made meanwhile waits for the next round.
            let Some(webhook) = known.get(&delivery.webhook_id).cloned() else {
                continue;
            };
            let Some(change) = changes.iter().find(|c| c.seq == delivery.seq).cloned() else {
                continue;
            };
            let client = client.clone();
            attempts.spawn(async move {
                let outcome = client.deliver(&webhook, &delivery, &change).await;
                (delivery, outcome)
            });
        }
        while let Some(joined) = attempts.join_next().await {
            let Ok((delivery, outcome)) = joined else {
                continue;
            };
            let now = clock.now();
            let attempt = match outcome {
                Ok(status) if (200..300).contains(&status) => Attempt::Delivered {
                    status: i32::from(status),
                },
                failed => {
                    let (status, error) = match failed {
                        Ok(status) => (Some(i32::from(status)), format!("answered {status}")),
                        Err(error) => (None, error),
                    };
                    let wait = backoff(options, delivery.attempts + 1);
                    Attempt::Failed {
                        status,
                        error,
                        retry_at: now
                            .as_microsecond()
                            .saturating_add(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)),
                    }
                }
            };
            store
                .record_attempt(delivery.id, lease, &attempt, now.as_microsecond())
                .await?;
        }
    }
}

/// The wait after attempt `attempt` (1 for the first) failed.
fn backoff(options: WebhookOptions, attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    options
        .retry_base
        .saturating_mul(1 << doublings)
        .min(options.retry_max)
}

/// The body of a delivery.
pub fn body(webhook: &Webhook, delivery: &Delivery, change: &StoredChange) -> String {
    json!({
        "delivery_id": delivery.id,
        "webhook_id": webhook.id,
        "attempt": delivery.attempts + 1,
        "event": {
            "cursor": change.position.map(crate::domain::change_feed::encode_cursor),
            "seq": change.seq,
            "time": change.time.to_string(),
            "actor": change.actor,
            "resource_type": change.resource_type,
            "resource_id": change.resource_id,
            "kind": change.kind,
            "changes": change.changes,
            "values_erased": change.values_erased,
        },
    })
    .to_string()
}

/// The `Clientele-Signature` header of `body` sent at `time` (Unix seconds) under `secret`:
/// `t=<time>,v1=<hex HMAC-SHA256 of "<time>.<body>">`.
pub fn signature(secret: &str, time: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{time}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={time},v1={hex}")
}

/// A small HTTP/1.1 client: one connection per attempt, TLS by rustls with the Web PKI roots.
#[derive(Clone)]
struct Client {
    timeout: Duration,
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    fn new(timeout: Duration) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let config = config.unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
        Self {
            timeout,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// POSTs `change` to `webhook`; the receiver's status, or why there is none.
    async fn deliver(
        &self,
        webhook: &Webhook,
        delivery: &Delivery,
        change: &StoredChange,
    ) -> Result<u16, String> {
        let body = body(webhook, delivery, change);
        let sent = jiff::Timestamp::now().as_second();
        let request = hyper::Request::post(webhook.url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("clientele/", env!("CARGO_PKG_VERSION")),
            )
            .header("clientele-delivery", delivery.id.to_string())
            .header(
                "clientele-signature",
                signature(&webhook.secret, sent, &body),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| format!("cannot make the request: {error}"))?;
        match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn send(&self, mut request: hyper::Request<Full<Bytes>>) -> Result<u16, String> {
        let uri = request.uri().clone();
        let host = uri.host().ok_or("the URL has no host")?.to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        request.headers_mut().insert(
            hyper::header::HOST,
            authority
                .parse()
                .map_err(|_| "the URL's host is not a header value")?,
        );
        let target = match uri.query() {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_owned(),
        };
        *request.uri_mut() = target.parse().map_err(|_| "the URL's path is not valid")?;
        let bare = host.trim_matches(['[', ']']).to_owned();
        let stream = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|error| format!("cannot connect: {error}"))?;
        let _ = stream.set_nodelay(true);
        if https {
            let name = rustls::pki_types::ServerName::try_from(bare)
                .map_err(|_| "the URL's host is not a TLS server name")?;
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|error| format!("TLS failed: {error}"))?;
            exchange(TokioIo::new(stream), request).await
        } else {
            exchange(TokioIo::new(stream), request).await
        }
    }
}

async fn exchange<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| format!("HTTP failed: {error}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("HTTP failed: {error}"))?;
    // Only the status counts: the body is not read, and the connection closes with it.
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let options = WebhookOptions {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..WebhookOptions::default()
        };
        let waits: Vec<u128> = (1..=6).map(|n| backoff(options, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2 ("Jefe"), on the message "<time>.<body>".
        let signed = signature("Jefe", 1, "what do ya want for nothing?");
        assert!(signed.starts_with("t=1,v1="), "{signed}");
        assert_eq!(signed.len(), "t=1,v1=".len() + 64);
        assert_ne!(signed, signature("Jefe", 2, "what do ya want for nothing?"));
    }
}
