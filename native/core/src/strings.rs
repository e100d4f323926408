//! A column of UTF-8 strings in Arrow's layout (int32 offsets + bytes), so
//! that it crosses into JS as two typed arrays and becomes an Arrow Utf8
//! vector without per-element conversion.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strings {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
}

impl Strings {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Strings {
            offsets,
            data: Vec::with_capacity(bytes),
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<'a>(it: impl IntoIterator<Item = &'a str>) -> Self {
        let mut s = Strings::with_capacity(0, 0);
        for x in it {
            s.push(x);
        }
        s
    }

    pub fn push(&mut self, s: &str) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.data.extend_from_slice(s.as_bytes());
        self.offsets.push(self.data.len() as i32);
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        if i >= self.len() {
            return None;
        }
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        std::str::from_utf8(&self.data[a..b]).ok()
    }

    pub fn to_vec(&self) -> Vec<String> {
        (0..self.len())
            .map(|i| self.get(i).unwrap_or("").to_string())
            .collect()
    }

    pub fn take(&self, idx: &[usize]) -> Strings {
        let mut out = Strings::with_capacity(idx.len(), 0);
        for &i in idx {
            out.push(self.get(i).unwrap_or(""));
        }
        out
    }
}
