//! The kernel's audit records, from the audit netlink multicast group
//! (`AUDIT_NLGRP_READLOG`), and its count of records it dropped (`AUDIT_GET`).
//!
//! Not the kernel log: with no audit daemon the kernel prints audit records through
//! `printk_ratelimit`, which kept 10 of about 100 records of one `ls` (measured here). The
//! multicast group gets every record the kernel queues. It exists only in the initial network
//! namespace and needs `CAP_AUDIT_READ`; `AUDIT_GET` needs `CAP_AUDIT_CONTROL` and the initial
//! PID namespace.

use std::io;

use bytes::BytesMut;
use netlink_packet_audit::{AuditMessage, NetlinkAuditCodec};
use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_proto::NetlinkMessageCodec;
use netlink_sys::protocols::NETLINK_AUDIT;
use netlink_sys::{Socket, SocketAddr};
use thiserror::Error;

use seccompd_recording::audit::AUDIT_SECCOMP;

/// The audit multicast group that reads every record (`AUDIT_NLGRP_READLOG`).
const AUDIT_NLGRP_READLOG: u32 = 1;

/// The receive buffer asked for: room for bursts while the reader maps a process. The kernel
/// caps it at `net.core.rmem_max`.
const RECEIVE_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// A failure of the audit socket.
#[derive(Debug, Error)]
pub enum AuditSocketError {
    /// A socket call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The kernel's answer to `AUDIT_GET` was not its status.
    #[error("the kernel's answer to AUDIT_GET holds no status: {0}")]
    NoStatus(String),
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> AuditSocketError {
    move |source| AuditSocketError::Io { what, source }
}

/// What one receive brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// The text of a seccomp record (`AUDIT_SECCOMP`).
    Seccomp(String),
    /// A record of another type, or a datagram that did not decode.
    Other,
    /// The socket's buffer overflowed: the kernel dropped records for this socket.
    Overflow,
}

/// A subscription to the audit multicast group.
pub struct AuditReader {
    socket: Socket,
    buffer: BytesMut,
}

impl AuditReader {
    /// Joins the multicast group (needs `CAP_AUDIT_READ`, in the initial network namespace).
    pub fn subscribe() -> Result<Self, AuditSocketError> {
        let mut socket =
            Socket::new(NETLINK_AUDIT).map_err(io_err("opening a NETLINK_AUDIT socket"))?;
        socket
            .bind(&SocketAddr::new(0, 0))
            .map_err(io_err("binding the audit socket"))?;
        socket
            .add_membership(AUDIT_NLGRP_READLOG)
            .map_err(io_err(
                "joining the audit multicast group (needs CAP_AUDIT_READ and the host's network namespace)",
            ))?;
        // Best effort: a smaller buffer only makes overflows likelier, and they are counted.
        let _ = socket.set_rx_buf_sz(RECEIVE_BUFFER_BYTES);
        Ok(Self {
            socket,
            buffer: BytesMut::new(),
        })
    }

    /// Waits for the next datagram.
    pub fn receive(&mut self) -> Result<Received, AuditSocketError> {
        let datagram = match self.socket.recv_from_full() {
            Ok((bytes, _from)) => bytes,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Received::Overflow),
            Err(e) => return Err(io_err("receiving from the audit socket")(e)),
        };
        self.buffer.clear();
        self.buffer.extend_from_slice(&datagram);
        // One datagram holds one record; the codec mends the kernel's audit length quirks.
        let message = NetlinkAuditCodec::decode::<AuditMessage>(&mut self.buffer);
        Ok(match message {
            Ok(Some(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(AuditMessage::Event((kind, text))),
                ..
            })) if kind == AUDIT_SECCOMP => Received::Seccomp(text),
            _ => Received::Other,
        })
    }
}

/// What `AUDIT_GET` tells of the kernel's audit queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditStatus {
    /// Records the kernel has dropped since boot (`audit_lost`), of any kind: when its
    /// backlog was full, or over its rate limit.
    pub lost: u32,
    /// How many records may wait in its queue (`audit_backlog_limit`).
    pub backlog_limit: u32,
    /// Records waiting now.
    pub backlog: u32,
    /// How long a process whose record finds the backlog full waits for room before the
    /// record is dropped (`audit_backlog_wait_time`, in jiffies; 0: dropped at once).
    pub backlog_wait_time: u32,
    /// Records per second the kernel lets through before it drops them (`audit_rate_limit`;
    /// 0: no limit).
    pub rate_limit: u32,
}

/// The kernel's audit status. Needs `CAP_AUDIT_CONTROL` in the initial PID namespace.
pub fn audit_status() -> Result<AuditStatus, AuditSocketError> {
    let mut socket =
        Socket::new(NETLINK_AUDIT).map_err(io_err("opening a NETLINK_AUDIT socket"))?;
    socket
        .bind_auto()
        .map_err(io_err("binding the audit socket"))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(AuditMessage::GetStatus(None)),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket
        .send_to(&bytes, &SocketAddr::new(0, 0), 0)
        .map_err(io_err(
            "sending AUDIT_GET (needs CAP_AUDIT_CONTROL and the host's PID namespace)",
        ))?;
    let (answer, _) = socket
        .recv_from_full()
        .map_err(io_err("receiving the answer to AUDIT_GET"))?;
    let mut buffer = BytesMut::from(&answer[..]);
    match NetlinkAuditCodec::decode::<AuditMessage>(&mut buffer) {
        Ok(Some(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(AuditMessage::GetStatus(Some(status))),
            ..
        })) => Ok(AuditStatus {
            lost: status.lost,
            backlog_limit: status.backlog_limit,
            backlog: status.backlog,
            backlog_wait_time: status.backlog_wait_time,
            rate_limit: status.rate_limiting,
        }),
        Ok(Some(NetlinkMessage {
            payload: NetlinkPayload::Error(e),
            ..
        })) => Err(io_err(
            "AUDIT_GET (needs CAP_AUDIT_CONTROL and the host's PID namespace)",
        )(e.to_io())),
        other => Err(AuditSocketError::NoStatus(format!("{other:?}"))),
    }
}
