//! Our tag in a subscription's dialog (RFC 3261 §19.3), derived rather than stored.

use bevy_ecs::prelude::Entity;

/// Our tag for the dialog of `sub`: the entity, which lets a request in the dialog find its
/// subscription without an index, and 32 bits mixed from the engine seed, the entity and the
/// Call-ID, so that it need not be stored.
pub fn local_tag(sub: Entity, call_id: &str, seed: u64) -> LocalTag {
    let bits = sub.to_bits();
    let mut h = seed ^ bits.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in call_id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    LocalTag::new(bits, h as u32)
}

/// A dialog's local tag, `{entity bits:x}.{32 bits:08x}`, kept inline: it is written into every
/// NOTIFY, so it must not cost an allocation each time.
#[derive(Clone, Copy)]
pub struct LocalTag {
    buf: [u8; 25],
    len: u8,
}

impl LocalTag {
    /// The entity bits and mixed bits of a tag [`local_tag`] wrote, in this process or an
    /// earlier one; None for any other spelling (it would not compare equal on the wire).
    pub fn parse(text: &str) -> Option<(u64, u32)> {
        let (bits, mix) = text.split_once('.')?;
        let bits = crate::hex::read(bits.as_bytes())?;
        let mix = u32::try_from(crate::hex::read(mix.as_bytes())?).ok()?;
        (&*LocalTag::new(bits, mix) == text).then_some((bits, mix))
    }

    /// The tag of `bits` and `mix` (as [`LocalTag::parse`] read them).
    pub fn from_parts(bits: u64, mix: u32) -> LocalTag {
        LocalTag::new(bits, mix)
    }

    fn new(bits: u64, mix: u32) -> LocalTag {
        let mut buf = [0u8; 25];
        let digits = crate::hex::width(bits, 1);
        crate::hex::write(&mut buf, bits, digits);
        buf[digits] = b'.';
        crate::hex::write(&mut buf[digits + 1..], mix.into(), 8);
        LocalTag {
            buf,
            len: (digits + 9) as u8,
        }
    }
}

impl std::ops::Deref for LocalTag {
    type Target = str;
    fn deref(&self) -> &str {
        // hex digits and a dot are ASCII
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl std::fmt::Debug for LocalTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tag_is_entity_hex_dot_eight_hex_digits() {
        for (bits, mix) in [
            (0u64, 0u32),
            (1, 0xdead_beef),
            (0x1_0000_002a, 7),
            (u64::MAX, u32::MAX),
        ] {
            let tag = LocalTag::new(bits, mix);
            assert_eq!(&*tag, format!("{bits:x}.{mix:08x}"));
            assert_eq!(LocalTag::parse(&tag), Some((bits, mix)));
        }
        for other in [
            "",
            "1",
            "1.",
            "1.abc",
            "01.00000000",
            "1.0000000A",
            "x.00000000",
        ] {
            assert_eq!(LocalTag::parse(other), None, "{other:?}");
        }
    }
}
