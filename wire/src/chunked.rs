//! HTTP/1.1 `Transfer-Encoding: chunked` bodies, decoded without buffering.

/// A piece of the body, or its end (the terminating chunk and trailers were consumed).
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedError(pub &'static str);

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` read so far, `extension` once past a `;`.
    Size {
        value: u64,
        digits: u8,
        extension: bool,
    },
    Data {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; `empty_line` while the current line has no bytes.
    Trailer {
        empty_line: bool,
    },
    Done,
}

const SIZE_START: State = State::Size {
    value: 0,
    digits: 0,
    extension: false,
};
/// 15 hex digits: up to 2^60 bytes, far beyond any cap, and no overflow.
const MAX_SIZE_DIGITS: u8 = 15;

/// Holds only a few integers of state; data chunks are handed out as slices of the input.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub const fn new() -> Self {
        ChunkedDecoder { state: SIZE_START }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next piece of body data in `input`, `End` after the last chunk, or `None` once
    /// `input` is used up. Bytes after the end are left in `input` (the next response).
    pub fn next<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<Chunk<'a>>, ChunkedError> {
        loop {
            let data: &'a [u8] = input;
            if let State::Data { remaining } = self.state {
                if data.is_empty() {
                    return Ok(None);
                }
                let take = remaining.min(data.len() as u64) as usize;
                *input = &data[take..];
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataEnd
                } else {
                    State::Data { remaining }
                };
                return Ok(Some(Chunk::Data(&data[..take])));
            }
            if self.state == State::Done {
                return Ok(Some(Chunk::End));
            }
            let Some((&byte, rest)) = data.split_first() else {
                return Ok(None);
            };
            *input = rest;
            self.state = self.step(byte)?;
            if self.state == State::Done {
                return Ok(Some(Chunk::End));
            }
        }
    }

    /// One byte of framing (size line, CRLF, trailers); bare LF is accepted for CRLF.
    fn step(&self, byte: u8) -> Result<State, ChunkedError> {
        Ok(match (self.state, byte) {
            (State::Size { digits: 0, .. }, b'\n') => return Err(ChunkedError("empty chunk size")),
            (State::Size { value: 0, .. }, b'\n') => State::Trailer { empty_line: true },
            (State::Size { value, .. }, b'\n') => State::Data { remaining: value },
            (
                State::Size {
                    extension: true, ..
                }
                | State::Size { .. },
                b'\r',
            ) => self.state,
            (
                state @ State::Size {
                    extension: true, ..
                },
                _,
            ) => state,
            (State::Size { value, digits, .. }, b';' | b' ' | b'\t') if digits > 0 => State::Size {
                value,
                digits,
                extension: true,
            },
            (State::Size { value, digits, .. }, _) => {
                let nibble = (byte as char)
                    .to_digit(16)
                    .ok_or(ChunkedError("chunk size is not hex"))?;
                if digits == MAX_SIZE_DIGITS {
                    return Err(ChunkedError("chunk size too large"));
                }
                State::Size {
                    value: value << 4 | u64::from(nibble),
                    digits: digits + 1,
                    extension: false,
                }
            }
            (State::DataEnd, b'\r') => State::DataEnd,
            (State::DataEnd, b'\n') => SIZE_START,
            (State::DataEnd, _) => return Err(ChunkedError("missing CRLF after chunk data")),
            (State::Trailer { empty_line: true }, b'\n') => State::Done,
            (State::Trailer { .. }, b'\n') => State::Trailer { empty_line: true },
            (State::Trailer { empty_line }, b'\r') => State::Trailer { empty_line },
            (State::Trailer { .. }, _) => State::Trailer { empty_line: false },
            (State::Data { .. } | State::Done, _) => unreachable!("handled by next"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::feeds;

    fn decode(feeds: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>), ChunkedError> {
        let mut d = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut after = Vec::new();
        for feed in feeds {
            let mut input = *feed;
            if d.is_done() {
                after.extend_from_slice(input);
                continue;
            }
            while let Some(chunk) = d.next(&mut input)? {
                match chunk {
                    Chunk::Data(bytes) => body.extend_from_slice(bytes),
                    Chunk::End => {
                        after.extend_from_slice(input);
                        break;
                    }
                }
            }
        }
        assert!(d.is_done(), "body did not end");
        Ok((body, after))
    }

    #[test]
    fn body_and_leftover_are_the_same_at_every_split() {
        let stream = b"7\r\nevent: \r\n18;name=val\r\nmessage\ndata: {\"id\":1}\n\n\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1";
        for f in feeds(stream) {
            let (body, after) = decode(&f).unwrap();
            assert_eq!(body, b"event: message\ndata: {\"id\":1}\n\n");
            assert_eq!(after, b"HTTP/1.1");
        }
    }

    #[test]
    fn bare_lf_and_upper_case_hex_are_accepted() {
        let (body, _) = decode(&[b"A\nabcdefghij\n0\n\n"]).unwrap();
        assert_eq!(body, b"abcdefghij");
    }

    #[test]
    fn malformed_sizes_are_errors() {
        assert_eq!(
            decode(&[b"zz\r\n"]),
            Err(ChunkedError("chunk size is not hex"))
        );
        assert_eq!(decode(&[b"\r\n"]), Err(ChunkedError("empty chunk size")));
        assert_eq!(
            decode(&[b"1000000000000000\r\n"]),
            Err(ChunkedError("chunk size too large"))
        );
        assert_eq!(
            decode(&[b"2\r\nabX"]),
            Err(ChunkedError("missing CRLF after chunk data"))
        );
    }
}
