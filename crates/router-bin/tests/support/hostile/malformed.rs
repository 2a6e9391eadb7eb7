//! Bodies that are not a readable request: random bytes, invalid UTF-8 and truncated JSON.

use rand::Rng;

use super::expect::{Echo, Expect, SCHEMA};
use super::generator::Generator;

impl Generator {
    /// Random bytes of up to 600 bytes.
    pub fn random_bytes(&mut self, count: usize) {
        for i in 0..count {
            let len = self.rng.random_range(0..600);
            let mut body: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
            // Half of them look like an object at first glance.
            if i % 2 == 0 {
                body.insert(0, b'{');
            }
            self.push(
                "random bytes",
                body,
                Expect::invalid(SCHEMA, None, Echo::Null),
            );
        }
    }

    /// Requests with bytes that are not UTF-8 in their strings.
    pub fn invalid_utf8(&mut self, count: usize) {
        const BAD: [&[u8]; 8] = [
            b"\xff",
            b"\xfe\xff",
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf8\x88\x80\x80\x80",
            b"\x80",
            b"\xe2\x82",
            b"\xf4\x90\x80\x80",
        ];
        for _ in 0..count {
            let (_, body) = self.full();
            let mut text = body.to_string().into_bytes();
            let bad = BAD[self.rng.random_range(0..BAD.len())];
            // Inside a string value (after an opening quote) or anywhere.
            let at = if self.rng.random_bool(0.7) {
                let quotes: Vec<usize> = text
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'"')
                    .map(|(i, _)| i + 1)
                    .collect();
                quotes[self.rng.random_range(0..quotes.len())]
            } else {
                self.rng.random_range(0..=text.len())
            };
            text.splice(at..at, bad.iter().copied());
            self.push(
                "invalid UTF-8",
                text,
                Expect::invalid(SCHEMA, None, Echo::Null),
            );
        }
    }

    /// Valid requests cut short.
    pub fn truncated(&mut self, count: usize) {
        for _ in 0..count {
            let (_, body) = if self.rng.random_bool(0.5) {
                self.full()
            } else {
                self.message()
            };
            let text = body.to_string().into_bytes();
            let cut = self.rng.random_range(0..text.len());
            self.push(
                "truncated JSON",
                text[..cut].to_vec(),
                Expect::invalid(SCHEMA, None, Echo::Null),
            );
        }
    }
}
