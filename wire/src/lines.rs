//! Newline-delimited framing (erlmcp's `{packet,line}`; MCP over stdio and TCP).

use crate::{Pending, TooLarge};

/// Splits a byte stream on `\n`. A line wholly inside one feed is returned without copying.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Pending,
}

impl LineSplitter {
    pub const fn new() -> Self {
        LineSplitter {
            pending: Pending {
                buf: Vec::new(),
                consumed: false,
            },
        }
    }

    /// The next complete line of `input` (without its `\n`; a preceding `\r` is kept), or
    /// `None` once `input` is used up. A line longer than `max_line` bytes is an error; the
    /// splitter is then empty and the caller should drop the connection.
    pub fn next<'r, 'i: 'r>(
        &'r mut self,
        input: &mut &'i [u8],
        max_line: usize,
    ) -> Result<Option<&'r [u8]>, TooLarge> {
        self.pending.release_consumed();
        let data: &'i [u8] = input;
        match memchr::memchr(b'\n', data) {
            Some(end) if self.pending.buf.is_empty() => {
                *input = &data[end + 1..];
                if end > max_line {
                    return Err(TooLarge { limit: max_line });
                }
                Ok(Some(&data[..end]))
            }
            Some(end) => {
                *input = &data[end + 1..];
                self.pending.extend(&data[..end], max_line)?;
                self.pending.consumed = true;
                Ok(Some(&self.pending.buf))
            }
            None => {
                *input = &[];
                self.pending.extend(data, max_line)?;
                Ok(None)
            }
        }
    }

    /// Bytes of an unfinished line held back.
    pub fn buffered(&self) -> usize {
        if self.pending.consumed {
            0
        } else {
            self.pending.buf.len()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::feeds;

    fn collect(feeds: &[&[u8]], max: usize) -> Result<Vec<Vec<u8>>, TooLarge> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for feed in feeds {
            let mut input = *feed;
            while let Some(line) = s.next(&mut input, max)? {
                out.push(line.to_vec());
            }
            assert!(input.is_empty());
        }
        Ok(out)
    }

    #[test]
    fn lines_are_the_same_at_every_split() {
        let stream = b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\"";
        for f in feeds(stream) {
            let lines = collect(&f, 64).unwrap();
            assert_eq!(
                lines,
                vec![b"{\"a\":1}".to_vec(), vec![], b"{\"b\":2}\r".to_vec()]
            );
        }
    }

    #[test]
    fn unfinished_line_is_kept_then_freed() {
        let mut s = LineSplitter::new();
        let mut input: &[u8] = b"abc";
        assert_eq!(s.next(&mut input, 10).unwrap(), None);
        assert_eq!(s.buffered(), 3);
        let mut input: &[u8] = b"def\nxy";
        assert_eq!(s.next(&mut input, 10).unwrap(), Some(&b"abcdef"[..]));
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.next(&mut input, 10).unwrap(), None);
        assert_eq!(s.buffered(), 2);
        let mut input: &[u8] = b"\n";
        assert_eq!(s.next(&mut input, 10).unwrap(), Some(&b"xy"[..]));
        let mut input: &[u8] = b"";
        assert_eq!(s.next(&mut input, 10).unwrap(), None);
        assert_eq!(s.pending.buf.capacity(), 0, "idle splitter owns no buffer");
    }

    #[test]
    fn over_long_line_fails_at_every_split() {
        let stream = b"0123456789ABCDEF\n";
        for f in feeds(stream) {
            assert_eq!(collect(&f, 8), Err(TooLarge { limit: 8 }));
        }
        assert_eq!(
            collect(&[b"12345678\n"], 8).unwrap(),
            vec![b"12345678".to_vec()]
        );
    }
}
