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

#[cfg(test)]
mod tests {
    #[test]
    fn reads_as_the_formatter_writes() {
        for v in [0u64, 1, 0xf, 0x10, 0xdead_beef, 1 << 63, u64::MAX] {
            for min in [1, 6, 8, 16] {
                let mut s = String::new();
                super::push(&mut s, v, min);
                assert_eq!(s, format!("{v:0min$x}"));
            }
        }
    }
}
