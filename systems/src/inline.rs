//! A small stack-allocated list that spills to the heap past `N` items: the parsers' scratch
//! lists, so that a parse allocates only what its document keeps.

/// A small stack-allocated list that spills to the heap past `N` items (the parser's scratch
/// lists: nearly every body fits, so a parse allocates only what the document keeps).
pub(crate) struct Inline<T: Copy + Default, const N: usize> {
    len: usize,
    items: [T; N],
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Inline<T, N> {
    #[inline]
    pub(crate) fn new() -> Self {
        Inline {
            len: 0,
            items: [T::default(); N],
            spill: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        if self.len <= N {
            &self.items[..self.len]
        } else {
            &self.spill
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        if self.len < N {
            self.items[self.len] = item;
        } else {
            if self.len == N {
                self.spill.clear();
                self.spill.extend_from_slice(&self.items);
            }
            self.spill.push(item);
        }
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.last()?;
        if self.len > N {
            self.spill.pop();
        }
        self.len -= 1;
        Some(last)
    }

    #[inline]
    pub(crate) fn last(&self) -> Option<T> {
        self.as_slice().last().copied()
    }

    #[inline]
    pub(crate) fn set(&mut self, i: usize, item: T) {
        if self.len <= N {
            self.items[i] = item;
        } else {
            self.spill[i] = item;
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    #[inline]
    pub(crate) fn from_iter(items: impl Iterator<Item = T>) -> Self {
        let mut list = Self::new();
        for item in items {
            list.push(item);
        }
        list
    }

    #[inline]
    pub(crate) fn retain(&mut self, keep: impl Fn(&T) -> bool) {
        let kept: Vec<T> = self.as_slice().iter().copied().filter(keep).collect();
        self.clear();
        for item in kept {
            self.push(item);
        }
    }
}
