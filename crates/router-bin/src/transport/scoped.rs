//! An endpoint's two subscriptions read as one stream: the unscoped subject of the contract
//! (`<prefix>.v1.decide`, for trusted callers) and its tenant-scoped twin
//! (`<prefix>.v1.decide.tenant.*`, where nats-server lets a tenant's caller publish only on its
//! own token). Which one a message came by is in its subject; [`crate::config::subject_tenant`]
//! reads the tenant back.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::{Client, Message, Subscriber};
use futures::Stream;

/// Both subscriptions of one endpoint, polled in turn.
pub struct Scoped {
    subscriptions: [Subscriber; 2],
    ended: [bool; 2],
    next_first: usize,
}

impl Scoped {
    /// Subscribes to `unscoped` and `scoped`, in `queue_group` when given.
    pub async fn subscribe(
        client: &Client,
        unscoped: &str,
        scoped: &str,
        queue_group: Option<&str>,
    ) -> Result<Self, async_nats::SubscribeError> {
        let subscribe = |subject: &str| {
            let subject = subject.to_owned();
            async move {
                match queue_group {
                    Some(group) => client.queue_subscribe(subject, group.to_owned()).await,
                    None => client.subscribe(subject).await,
                }
            }
        };
        Ok(Scoped {
            subscriptions: [subscribe(unscoped).await?, subscribe(scoped).await?],
            ended: [false; 2],
            next_first: 0,
        })
    }

    /// Unsubscribes both, keeping what the server already routed here: the stream ends once
    /// both have yielded it.
    pub async fn drain(&mut self) -> Result<(), async_nats::UnsubscribeError> {
        for subscription in &mut self.subscriptions {
            subscription.drain().await?;
        }
        Ok(())
    }
}

impl Stream for Scoped {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let this = &mut *self;
        for turn in 0..2 {
            let index = (this.next_first + turn) % 2;
            if this.ended[index] {
                continue;
            }
            match Pin::new(&mut this.subscriptions[index]).poll_next(cx) {
                Poll::Ready(Some(message)) => {
                    this.next_first = (index + 1) % 2;
                    return Poll::Ready(Some(message));
                }
                Poll::Ready(None) => this.ended[index] = true,
                Poll::Pending => {}
            }
        }
        if this.ended.iter().all(|ended| *ended) {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}
