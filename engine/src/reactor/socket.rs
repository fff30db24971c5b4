//! Creating a client socket the way every connection needs it, before the connect.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use super::SocketOptions;

/// Linux's IP_BIND_ADDRESS_NO_PORT: `bind(ip, 0)` leaves the port choice to `connect`, so a
/// source address can serve many destinations without exhausting ports at bind time.
const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

/// A non-blocking TCP socket with TCP_NODELAY and keepalive, bound to `source` when given.
/// Returns the raw descriptor (the caller owns it) or the errno.
pub fn open(addr: &SocketAddr, source: Option<IpAddr>, opts: &SocketOptions) -> Result<RawFd, i32> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(errno)?;
    socket.set_tcp_nodelay(true).map_err(errno)?;
    socket
        .set_tcp_keepalive(&TcpKeepalive::new().with_time(opts.keepalive_idle))
        .map_err(errno)?;
    if let Some(size) = opts.buffer_size {
        socket.set_recv_buffer_size(size).map_err(errno)?;
        socket.set_send_buffer_size(size).map_err(errno)?;
    }
    if let Some(ip) = source {
        if ip.is_ipv4() {
            set_int(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                IP_BIND_ADDRESS_NO_PORT,
                1,
            )?;
        }
        socket
            .bind(&SockAddr::from(SocketAddr::new(ip, 0)))
            .map_err(errno)?;
    }
    Ok(socket.into_raw_fd())
}

fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), i32> {
    // SAFETY: a valid descriptor and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(last_errno()) }
}

pub fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Closes a descriptor after shutting it down, which also ends any receive still pending on it
/// in the kernel.
pub fn shutdown_and_close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and forgets it after this call.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
        libc::close(fd);
    }
}
