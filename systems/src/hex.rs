//! Numbers in lower-case hexadecimal, as our tags, branches and entity tags carry them, written
//! without the formatting machinery (they go into every response and NOTIFY).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// How many hex digits `v` takes, at least `min` (at most 16).
pub fn width(v: u64, min: usize) -> usize {
    min.max((64 - v.leading_zeros() as usize).div_ceil(4))
        .min(16)
}

/// Write `v` as exactly `width` digits (leading zeros as needed) at the front of `out`.
pub fn write(out: &mut [u8], v: u64, width: usize) {
    for (i, d) in out[..width].iter_mut().enumerate() {
        *d = DIGITS[((v >> (4 * (width - 1 - i))) & 0xf) as usize];
    }
}

/// Append `v` with at least `min` digits.
pub fn push(out: &mut String, v: u64, min: usize) {
    let mut buf = [0u8; 16];
    let w = width(v, min);
    write(&mut buf, v, w);
    // hex digits are ASCII
    out.push_str(std::str::from_utf8(&buf[..w]).unwrap_or_default());
}

/// Append each byte of `bytes` as two digits (a digest's hex form).
pub fn push_bytes(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
}

/// The lower-case hex number at the front of `b` (1 to 16 digits) and what follows it.
pub fn read_prefix(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    let mut digits = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => break,
        };
        digits += 1;
        if digits > 16 {
            return None;
        }
        n = n << 4 | u64::from(d);
    }
    (digits > 0).then(|| (n, &b[digits..]))
}

/// `b` read whole as a lower-case hex number of 1 to 16 digits.
pub fn read(b: &[u8]) -> Option<u64> {
    read_prefix(b).and_then(|(n, rest)| rest.is_empty().then_some(n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_as_the_formatter_writes() {
        for v in [0u64, 1, 0xf, 0x10, 0xdead_beef, 1 << 63, u64::MAX] {
            for min in [1, 6, 8, 16] {
                let mut s = String::new();
                super::push(&mut s, v, min);
                assert_eq!(s, format!("{v:0min$x}"));
                assert_eq!(super::read(s.as_bytes()), Some(v));
            }
        }
        for other in ["", "A", "+1", "12g", "12.", "10000000000000000"] {
            assert_eq!(super::read(other.as_bytes()), None, "{other}");
        }
        assert_eq!(super::read_prefix(b"1f.x"), Some((0x1f, &b".x"[..])));
    }
}
