//! Property values in 8 bytes.
//!
//! A [`Val`] is an `f64` unless its bits are one of a few negative quiet-NaN patterns,
//! which carry a tag and a 32-bit payload instead (a string id, an array index, ...).
//! JSON has no NaN, so no number read from a property can collide with a tag. This halves
//! the memory of a graph's property values against a plain Rust enum.

use super::pool::Sym;

/// Tags live in the top 16 bits; `0xFFF8` is the canonical negative quiet NaN, left alone.
const TAG_SHIFT: u32 = 48;
const TAG_NULL: u64 = 0xFFF9;
const TAG_BOOL: u64 = 0xFFFA;
const TAG_STR: u64 = 0xFFFB;
const TAG_ARR: u64 = 0xFFFC;
const TAG_OTHER: u64 = 0xFFFD;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Val(u64);

/// A decoded [`Val`]; arrays and other values are indexes into the graph's tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Raw {
    Null,
    Bool(bool),
    Num(f64),
    Str(Sym),
    /// An index into the graph's array table.
    Arr(u32),
    /// An index into the graph's table of values that have no compact form (objects,
    /// nested arrays, integers past 2^53).
    Other(u32),
}

impl Val {
    fn tagged(tag: u64, payload: u32) -> Self {
        Val((tag << TAG_SHIFT) | u64::from(payload))
    }

    pub(crate) fn null() -> Self {
        Self::tagged(TAG_NULL, 0)
    }
    pub(crate) fn bool(b: bool) -> Self {
        Self::tagged(TAG_BOOL, u32::from(b))
    }
    pub(crate) fn num(n: f64) -> Self {
        // Callers pass numbers read from JSON, never NaN; a NaN would read back as a tag.
        debug_assert!(!n.is_nan());
        Val(n.to_bits())
    }
    pub(crate) fn str(s: Sym) -> Self {
        Self::tagged(TAG_STR, s)
    }
    pub(crate) fn arr(i: u32) -> Self {
        Self::tagged(TAG_ARR, i)
    }
    pub(crate) fn other(i: u32) -> Self {
        Self::tagged(TAG_OTHER, i)
    }

    pub(crate) fn decode(self) -> Raw {
        let payload = self.0 as u32; // the low 32 bits
        match self.0 >> TAG_SHIFT {
            TAG_NULL => Raw::Null,
            TAG_BOOL => Raw::Bool(payload != 0),
            TAG_STR => Raw::Str(payload),
            TAG_ARR => Raw::Arr(payload),
            TAG_OTHER => Raw::Other(payload),
            _ => Raw::Num(f64::from_bits(self.0)),
        }
    }
}

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.decode().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for n in [
            0.0,
            -0.0,
            1.0,
            -1.5,
            1.7e308,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
        ] {
            assert_eq!(Val::num(n).decode(), Raw::Num(n));
        }
        assert_eq!(Val::null().decode(), Raw::Null);
        assert_eq!(Val::bool(true).decode(), Raw::Bool(true));
        assert_eq!(Val::bool(false).decode(), Raw::Bool(false));
        assert_eq!(Val::str(u32::MAX).decode(), Raw::Str(u32::MAX));
        assert_eq!(Val::arr(7).decode(), Raw::Arr(7));
        assert_eq!(Val::other(0).decode(), Raw::Other(0));
        assert_eq!(std::mem::size_of::<Val>(), 8);
    }
}
