//! The byte layout of durable records: little-endian integers and length-prefixed byte
//! strings, a version byte first. A record that does not decode is skipped at restore.

/// Writes one record.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn new(version: u8, capacity: usize) -> Writer {
        let mut v = Vec::with_capacity(capacity + 1);
        v.push(version);
        Writer(v)
    }

    pub fn u64(mut self, v: u64) -> Writer {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(self, v: i64) -> Writer {
        self.u64(v as u64)
    }

    pub fn u32(mut self, v: u32) -> Writer {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A byte string with a 32-bit length.
    pub fn bytes(mut self, b: &[u8]) -> Writer {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one record; every read is None past its end.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `record` if it has `version`.
    pub fn new(record: &'a [u8], version: u8) -> Option<Reader<'a>> {
        let (&v, rest) = record.split_first()?;
        (v == version).then_some(Reader { rest })
    }

    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_le_bytes(*head))
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_le_bytes(*head))
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return None;
        }
        let (b, rest) = rest.split_at(len);
        self.rest = rest;
        Some(b)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_records() {
        let r = Writer::new(3, 16)
            .u64(7)
            .i64(-5)
            .u32(9)
            .bytes(b"sip:a@b")
            .done();
        let mut rd = Reader::new(&r, 3).unwrap();
        assert_eq!(rd.u64(), Some(7));
        assert_eq!(rd.i64(), Some(-5));
        assert_eq!(rd.u32(), Some(9));
        assert_eq!(rd.str(), Some("sip:a@b"));
        assert_eq!(rd.u64(), None);
        assert!(Reader::new(&r, 4).is_none(), "another version");
        let mut cut = Reader::new(&r[..r.len() - 1], 3).unwrap();
        cut.u64();
        cut.i64();
        cut.u32();
        assert_eq!(cut.bytes(), None, "a string past the end");
    }
}
