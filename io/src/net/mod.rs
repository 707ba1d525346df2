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
mod tcp;
mod udp;
mod unix;

pub use crate::server::{ServerHandle, StreamServer};
pub use addr::ToSocketAddrs;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// Implements `Read` and `Write` for a stream type and for references to it,
/// through its `source` field.
macro_rules! impl_stream_io {
    ($stream:ty) => {
        impl std::io::Read for &$stream {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.source.read_stream(buf.len(), |io| std::io::Read::read(&mut &*io, buf))
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.read_stream(len, |io| std::io::Read::read_vectored(&mut &*io, bufs))
            }
        }

        impl std::io::Write for &$stream {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.source.write_stream(buf.len(), |io| std::io::Write::write(&mut &*io, buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|buf| buf.len()).sum();
                self.source.write_stream(len, |io| std::io::Write::write_vectored(&mut &*io, bufs))
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
