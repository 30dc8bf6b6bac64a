//! Cutting a TCP byte stream into messages by Content-Length (RFC 3261 §18.3).

/// What the front of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `skip` keep-alive bytes (CRLFs, RFC 5626 §3.5.1), then a message of `len` bytes.
    Message { skip: usize, len: usize },
    /// Only keep-alive CRLFs so far: drop `skip` bytes; `ping` when a double CRLF asks for a pong.
    KeepAlive { skip: usize, ping: bool },
    /// Need more bytes.
    Incomplete,
    /// The stream cannot be framed (headers too large, bad Content-Length): close it.
    Invalid(&'static str),
}

/// Find the next message in `buf`; headers may not exceed `max_head` and bodies `max_body`.
pub fn next_frame(buf: &[u8], max_head: usize, max_body: usize) -> Frame {
    let skip = buf
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    if skip == buf.len() {
        let ping = buf.windows(4).any(|w| w == b"\r\n\r\n");
        return if skip == 0 {
            Frame::Incomplete
        } else {
            Frame::KeepAlive { skip, ping }
        };
    }
    let rest = &buf[skip..];
    let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
        return if rest.len() > max_head {
            Frame::Invalid("header section too large")
        } else {
            Frame::Incomplete
        };
    };
    if end > max_head {
        return Frame::Invalid("header section too large");
    }
    let head = &rest[..end];
    let mut body_len = 0usize;
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"Content-Length") || name.eq_ignore_ascii_case(b"l") {
            let v = line[colon + 1..].trim_ascii();
            match std::str::from_utf8(v)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                Some(n) if n <= max_body => body_len = n,
                Some(_) => return Frame::Invalid("body too large"),
                None => return Frame::Invalid("malformed Content-Length"),
            }
        }
    }
    let len = end + 4 + body_len;
    if rest.len() < len {
        Frame::Incomplete
    } else {
        Frame::Message { skip, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_back_to_back_messages() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPTIONS sip:b SIP/2.0\r\nl: 0\r\n\r\n";
        let Frame::Message { skip: 0, len } = next_frame(m, 8192, 8192) else {
            panic!()
        };
        assert_eq!(&m[len - 3..len], b"abc");
        assert_eq!(
            next_frame(&m[len..], 8192, 8192),
            Frame::Message {
                skip: 0,
                len: m.len() - len
            }
        );
        assert_eq!(next_frame(&m[..20], 8192, 8192), Frame::Incomplete);
    }

    #[test]
    fn keepalive_and_limits() {
        assert_eq!(
            next_frame(b"\r\n\r\n", 100, 100),
            Frame::KeepAlive {
                skip: 4,
                ping: true
            }
        );
        assert_eq!(
            next_frame(b"X: 1\r\nContent-Length: 999\r\n\r\n", 100, 100),
            Frame::Invalid("body too large")
        );
        assert_eq!(
            next_frame(&[b'a'; 200], 100, 100),
            Frame::Invalid("header section too large")
        );
    }
}
