//! The byte search JSON text needs most: where the next quote, backslash or control
//! character is. Reading a string and writing one both come down to it.

/// The index of the first byte of `bytes` that is a quote, a backslash or a control
/// character (below 0x20), if any.
///
/// Eight bytes at a time: the classic "has a zero byte" and "has a byte less than n" word
/// tests find such a byte exactly at their lowest flagged byte (a false flag can only sit
/// above a true one), and bytes from 0x80 up never flag.
pub fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let flagged = (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
            | zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if flagged != 0 {
            return Some(offset + (flagged.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| is_special(b))
        .map(|at| offset + at)
}

/// A quote, a backslash or a control character.
pub fn is_special(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_special_byte_at_every_position() {
        for len in 0..20 {
            assert_eq!(first_special(&vec![b'a'; len]), None);
            for at in 0..len {
                for byte in 0u8..=255 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let expected = is_special(byte).then_some(at);
                    assert_eq!(
                        first_special(&text),
                        expected,
                        "byte {byte:#x} at {at} of {len}"
                    );
                    // A second special byte after the first does not move the answer.
                    if at + 1 < len {
                        text[at + 1] = b'"';
                        let expected = Some(if is_special(byte) { at } else { at + 1 });
                        assert_eq!(
                            first_special(&text),
                            expected,
                            "{byte:#x} at {at}, quote after"
                        );
                    }
                }
            }
        }
    }
}
