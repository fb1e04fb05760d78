//! What every adapter's [`super::Bus::tail`] reader shares: the partition reported as assigned on
//! the first poll, no commits, the one partition as its assignment.

use super::{Consumer, Error, Polled, Position, Record};
use async_trait::async_trait;
use std::time::Duration;

/// How an adapter reads one partition from a cursor of its own.
#[async_trait]
pub(crate) trait PartitionReader: Send + Sync {
    /// The records from the cursor on, at most `max`, waiting up to `timeout` for the first.
    async fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>, Error>;
}

/// A reader of one partition outside any group, over an adapter's [`PartitionReader`].
pub(crate) struct Tail<R> {
    reader: R,
    topic: String,
    partition: u32,
    /// Whether the first poll reported the partition as assigned.
    announced: bool,
}

impl<R: PartitionReader + 'static> Tail<R> {
    /// A tail of `topic`/`partition` reading through `reader`.
    pub(crate) fn boxed(topic: &str, partition: u32, reader: R) -> Box<dyn Consumer> {
        Box::new(Tail {
            reader,
            topic: topic.to_owned(),
            partition,
            announced: false,
        })
    }
}

#[async_trait]
impl<R: PartitionReader> Consumer for Tail<R> {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, Error> {
        if !self.announced {
            self.announced = true;
            return Ok(Polled {
                assigned: vec![(self.topic.clone(), self.partition)],
                ..Polled::default()
            });
        }
        Ok(Polled {
            records: self.reader.read(max.max(1), timeout).await?,
            ..Polled::default()
        })
    }

    async fn commit(&mut self, _offsets: &[Position]) -> Result<(), Error> {
        Ok(())
    }

    async fn committed(&self, _topic: &str, _partition: u32) -> Result<Option<u64>, Error> {
        Ok(None)
    }

    fn assignment(&self) -> Vec<(String, u32)> {
        vec![(self.topic.clone(), self.partition)]
    }

    async fn leave(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}
