//! Networking that mirrors `std::net` (and `std::os::unix::net`), with
//! blocking calls that park only the calling greenlet.
//!
//! Code written against `std::net` ports by changing the import. Differences:
//! read and write timeouts belong to each handle rather than to the socket,
//! `set_nonblocking(true)` makes calls return `WouldBlock` instead of parking,
//! and host names are resolved on the runtime's thread pool
//! ([`ToSocketAddrs`]).
//!
//! Every socket must be created and used inside a runtime, on its hub's
//! thread.

mod addr;
mod socket;
mod tcp;
mod udp;
mod unix;

pub use crate::server::{DatagramServer, ServerHandle, StreamServer};
pub use addr::ToSocketAddrs;
pub use socket::TcpSocket;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// Implements `Read` and `Write` for a stream type and for references to it,
/// through its `source` field. Waits are named after the type in
/// `runtime::dump` (`TcpStream::read`).
macro_rules! impl_stream_io {
    ($stream:ident) => {
        impl $stream {
            /// Parks until the stream may be read without blocking: data, the
            /// end of the stream or an error is there (a wake-up can be
            /// spurious). Honours the read timeout. With [`try_read`](Self::try_read),
            /// lets a connection wait without holding a buffer. Like a read, it
            /// counts against the greenlet's I/O budget: a loop of `readable`
            /// and `try_read` on a socket that always has data yields to the
            /// other greenlets every so often.
            ///
            /// # Errors
            ///
            /// `TimedOut` after the read timeout.
            pub fn readable(&self) -> std::io::Result<()> {
                self.source.wait_as(runtime_scheduler::Direction::Read, concat!(stringify!($stream), "::readable"))
            }

            /// Parks until the stream may be written without blocking. Honours
            /// the write timeout.
            ///
            /// # Errors
            ///
            /// `TimedOut` after the write timeout.
            pub fn writable(&self) -> std::io::Result<()> {
                self.source.wait_as(runtime_scheduler::Direction::Write, concat!(stringify!($stream), "::writable"))
            }

            /// Reads once without parking.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if nothing is there yet; what `read(2)` reports.
            pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.source.try_read_stream(buf.len(), |io| std::io::Read::read(&mut &*io, buf))
            }

            /// Writes once without parking.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if the send buffer is full; what `write(2)` reports.
            pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.source.try_write_stream(buf.len(), |io| std::io::Write::write(&mut &*io, buf))
            }
        }

        impl std::io::Read for &$stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.source.read_stream(concat!(stringify!($stream), "::read"), buf.len(), |io| {
                    std::io::Read::read(&mut &*io, buf)
                })
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.read_stream(concat!(stringify!($stream), "::read"), len, |io| {
                    std::io::Read::read_vectored(&mut &*io, bufs)
                })
            }
        }

        impl std::io::Write for &$stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.source.write_stream(concat!(stringify!($stream), "::write"), buf.len(), |io| {
                    std::io::Write::write(&mut &*io, buf)
                })
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.write_stream(concat!(stringify!($stream), "::write"), len, |io| {
                    std::io::Write::write_vectored(&mut &*io, bufs)
                })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use impl_stream_io;

/// Implements the async I/O traits for a stream type and for references to
/// it, through its `source` field: `futures_io::AsyncRead`/`AsyncWrite` with
/// the `futures-io` feature, tokio's with `tokio-io`. Polls share the
/// readiness flags of the blocking calls, so a stream can go back and forth
/// between async and blocking code.
macro_rules! impl_async_stream_io {
    ($stream:ident) => {
        impl $stream {
            /// Polls a read, for the async traits.
            #[cfg(any(feature = "futures-io", feature = "tokio-io"))]
            fn poll_read_priv(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.source.poll_read_stream(cx, buf.len(), |io| std::io::Read::read(&mut &*io, buf))
            }

            /// Polls a vectored read, for the async traits.
            #[cfg(feature = "futures-io")]
            fn poll_read_vectored_priv(
                &self,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.poll_read_stream(cx, len, |io| std::io::Read::read_vectored(&mut &*io, bufs))
            }

            /// Polls a write, for the async traits.
            #[cfg(any(feature = "futures-io", feature = "tokio-io"))]
            fn poll_write_priv(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.source.poll_write_stream(cx, buf.len(), |io| std::io::Write::write(&mut &*io, buf))
            }

            /// Polls a vectored write, for the async traits.
            #[cfg(any(feature = "futures-io", feature = "tokio-io"))]
            fn poll_write_vectored_priv(
                &self,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.poll_write_stream(cx, len, |io| std::io::Write::write_vectored(&mut &*io, bufs))
            }

            /// Polls a tokio read into the unfilled part of `buf`.
            #[cfg(feature = "tokio-io")]
            fn poll_read_buf_priv(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Safe code cannot read into uninitialized memory: the unfilled
                // part is zeroed once (`ReadBuf` remembers what is initialized).
                let n = std::task::ready!(self.poll_read_priv(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }

        $crate::net::impl_async_stream_io!(@traits $stream);
        $crate::net::impl_async_stream_io!(@traits &$stream);
    };
    (@traits $ty:ty) => {
        /// A read that would block returns `Pending` (nothing parks), and the
        /// hub's reactor wakes the task when the stream becomes readable.
        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_priv(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_vectored_priv(cx, bufs)
            }
        }

        /// `poll_flush` does nothing (nothing is buffered); `poll_close` shuts
        /// down the write half, so the peer sees the end of the stream.
        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }

        /// A read that would block returns `Pending` (nothing parks), and the
        /// hub's reactor wakes the task when the stream becomes readable.
        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.poll_read_buf_priv(cx, buf)
            }
        }

        /// `poll_flush` does nothing (nothing is buffered); `poll_shutdown`
        /// shuts down the write half, so the peer sees the end of the stream.
        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
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
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

pub(crate) use impl_async_stream_io;

/// Implements what every socket type has: `AsFd`, `AsRawFd`,
/// `set_nonblocking` and `take_error`, through its `source` field.
macro_rules! impl_socket {
    ($socket:ty) => {
        impl $socket {
            /// With `true`, calls return `WouldBlock` instead of parking (the
            /// descriptor itself always stays in non-blocking mode).
            ///
            /// # Errors
            ///
            /// Never; the result mirrors `std`.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.source.set_nonblocking(nonblocking);
                Ok(())
            }

            /// Takes the pending socket error (`SO_ERROR`).
            ///
            /// # Errors
            ///
            /// What `getsockopt(2)` reports.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.source.get_ref().take_error()
            }
        }

        impl std::os::fd::AsFd for $socket {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.source.get_ref().as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $socket {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.source.get_ref().as_raw_fd()
            }
        }
    };
}

pub(crate) use impl_socket;

/// Implements read and write timeouts for a socket type, through its `source`
/// field. They belong to the handle: a `try_clone` starts with the same
/// values but keeps its own.
macro_rules! impl_timeouts {
    ($socket:ty) => {
        impl $socket {
            /// Sets the read timeout (`None`: wait forever); a read that waits
            /// longer fails with `TimedOut`.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration, as in `std`.
            pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_read_timeout(timeout)
            }

            /// Sets the write timeout (`None`: wait forever); a write that waits
            /// longer fails with `TimedOut`.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for a zero duration, as in `std`.
            pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_write_timeout(timeout)
            }

            /// The read timeout.
            ///
            /// # Errors
            ///
            /// Never; the result mirrors `std`.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.read_timeout())
            }

            /// The write timeout.
            ///
            /// # Errors
            ///
            /// Never; the result mirrors `std`.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.write_timeout())
            }
        }
    };
}

pub(crate) use impl_timeouts;
