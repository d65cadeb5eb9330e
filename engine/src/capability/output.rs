//! Captured stdout/stderr with a hard cap.
//!
//! The guest's writes are kept up to the cap; the write that crosses it keeps its prefix,
//! fails with an I/O error (WASI errno `io`), and notes the stdout/stderr limit at that moment.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::limits::LimitLog;
use crate::verdict::LimitKind;

#[derive(Debug)]
struct Buf {
    data: Vec<u8>,
    cap: usize,
    truncated: bool,
}

/// A capped in-memory output pipe, shared between the WASI context and the sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    buf: Arc<Mutex<Buf>>,
    limit: LimitKind,
    log: Arc<LimitLog>,
}

impl Capture {
    pub(crate) fn new(cap: u64, limit: LimitKind, log: Arc<LimitLog>) -> Capture {
        Capture {
            buf: Arc::new(Mutex::new(Buf {
                data: Vec::new(),
                cap: usize::try_from(cap).unwrap_or(usize::MAX),
                truncated: false,
            })),
            limit,
            log,
        }
    }

    /// Appends `bytes`; returns `false` (after keeping the prefix) when the cap was crossed.
    pub(crate) fn push(&self, bytes: &[u8]) -> bool {
        let mut b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let room = b.cap - b.data.len();
        if bytes.len() <= room && !b.truncated {
            b.data.extend_from_slice(bytes);
            return true;
        }
        if !b.truncated {
            b.data.extend_from_slice(&bytes[..room]);
            b.truncated = true;
        }
        drop(b);
        self.log.hit(self.limit);
        false
    }

    /// Takes the captured bytes and the truncation flag.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut b.data), b.truncated)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncCapture(self.clone()))
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.push(&bytes) {
            Ok(())
        } else {
            Err(StreamError::Closed)
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

struct AsyncCapture(Capture);

impl tokio::io::AsyncWrite for AsyncCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.0.push(buf) {
            std::task::Poll::Ready(Ok(buf.len()))
        } else {
            std::task::Poll::Ready(Err(std::io::Error::from(std::io::ErrorKind::StorageFull)))
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
