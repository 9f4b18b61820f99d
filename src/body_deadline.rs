//! A request body must arrive within `REQUEST_TIMEOUT` of the request's start (SPEC §14).
//! actix bounds only the wait for the headers; a client that sends them and then trickles
//! or stalls the body would hold its connection (and a descriptor) for as long as it
//! likes. The pipeline wraps every payload in a `Deadline`; a body still incomplete at
//! the deadline ends in an error, and the pipeline answers 408 and closes the connection.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// Set when the deadline cut a body short: whatever the handler answered, it was
/// answering a request it never saw whole.
#[derive(Clone, Default)]
pub(crate) struct TimedOut(Rc<Cell<bool>>);

impl TimedOut {
    pub(crate) fn happened(&self) -> bool {
        self.0.get()
    }
}

/// `payload`, failing with a timeout once `deadline` passes before it ends.
pub(crate) fn bounded(payload: Payload, deadline: Instant, timed_out: TimedOut) -> Payload {
    Payload::from(Box::pin(Deadline {
        inner: payload,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        timed_out,
        done: false,
    })
        as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>)
}

struct Deadline {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    timed_out: TimedOut,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => {}
            ready @ Poll::Ready(None) => {
                self.done = true;
                return ready;
            }
            ready => return ready,
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.done = true;
                self.timed_out.0.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive within REQUEST_TIMEOUT",
                )))))
            }
        }
    }
}
