//! Socket set-up: UDP sockets and TCP listeners with the buffer sizes asked for.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Ask for a socket buffer size; as root, `SO_*BUFFORCE` lifts the `net.core.*mem_max` cap,
/// which is where UDP overload starts for every SIP server on a stock kernel.
fn force_buffer(sock: &Socket, recv: bool, bytes: usize) {
    let opt = if recv {
        libc::SO_RCVBUFFORCE
    } else {
        libc::SO_SNDBUFFORCE
    };
    let val = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: a valid fd and a pointer to a c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let _ = if recv {
            sock.set_recv_buffer_size(bytes)
        } else {
            sock.set_send_buffer_size(bytes)
        };
    }
}

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // TCP only: a listener must rebind over its old connections' TIME_WAIT. On UDP the
    // option lets another socket (even one bound to port 0) share the port and take its
    // datagrams, and a second server on the same port start silently.
    if ty == Type::STREAM {
        sock.set_reuse_address(true)?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A bound non-blocking UDP socket; returns it with the (recv, send) buffer sizes granted.
pub fn udp(
    addr: SocketAddr,
    recv_buf: usize,
    send_buf: usize,
) -> io::Result<(std::net::UdpSocket, usize, usize)> {
    let sock = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    force_buffer(&sock, true, recv_buf);
    force_buffer(&sock, false, send_buf);
    sock.bind(&addr.into())?;
    let granted = (
        sock.recv_buffer_size().unwrap_or(0),
        sock.send_buffer_size().unwrap_or(0),
    );
    Ok((sock.into(), granted.0, granted.1))
}

/// A bound, listening non-blocking TCP socket.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_udp_port_is_not_shared() {
        let (a, _, _) = udp("127.0.0.1:0".parse().unwrap(), 0, 0).unwrap();
        let taken = a.local_addr().unwrap();
        let again = udp(taken, 0, 0).map(|(s, _, _)| s.local_addr().unwrap());
        assert_eq!(
            again.map_err(|e| e.kind()),
            Err(io::ErrorKind::AddrInUse),
            "{taken}"
        );
    }

    #[test]
    fn a_tcp_listener_rebinds_its_port_after_close() {
        let l = tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        // the server side closes first, so its end of the connection is in TIME_WAIT
        drop(s);
        drop(c);
        drop(l);
        assert!(tcp_listener(addr).is_ok(), "{addr}");
    }
}
