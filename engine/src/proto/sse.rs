//! Server-sent events inside an HTTP body: the `data` of each `message` event is handed on;
//! events with empty data (priming events that carry only an id), comments and other event
//! types are skipped. Lines end in `\n` or `\r\n`.

use super::http::Halt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An incomplete event grew past the cap.
    TooLarge,
    /// The data handler asked to stop.
    Halted,
}

/// Feeds one piece of body. `buf` holds an incomplete event between pieces (and nothing
/// otherwise); `last` marks the end of the body, where an unfinished event is dropped.
pub fn feed(
    buf: &mut Vec<u8>,
    piece: &[u8],
    last: bool,
    max: usize,
    on_data: &mut dyn FnMut(&[u8]) -> Result<(), Halt>,
) -> Result<(), Error> {
    if buf.is_empty() {
        let rest = dispatch_complete(piece, max, on_data)?;
        if !last && !rest.is_empty() {
            if rest.len() > max {
                return Err(Error::TooLarge);
            }
            buf.extend_from_slice(rest);
        }
        return Ok(());
    }
    if buf.len() + piece.len() > max {
        *buf = Vec::new();
        return Err(Error::TooLarge);
    }
    buf.extend_from_slice(piece);
    let held = std::mem::take(buf);
    let rest = dispatch_complete(&held, max, on_data)?;
    if !last && !rest.is_empty() {
        let consumed = held.len() - rest.len();
        *buf = held;
        buf.drain(..consumed);
    }
    Ok(())
}

/// Dispatches every complete event (ended by a blank line) and returns the unfinished rest.
/// An event longer than `max` is refused even when it arrived whole.
fn dispatch_complete<'a>(
    data: &'a [u8],
    max: usize,
    on_data: &mut dyn FnMut(&[u8]) -> Result<(), Halt>,
) -> Result<&'a [u8], Error> {
    let mut event_start = 0;
    let mut line_start = 0;
    while let Some(nl) = memchr::memchr(b'\n', &data[line_start..]) {
        let line = strip_cr(&data[line_start..line_start + nl]);
        line_start += nl + 1;
        if line.is_empty() {
            if line_start - event_start > max {
                return Err(Error::TooLarge);
            }
            dispatch(&data[event_start..line_start], on_data)?;
            event_start = line_start;
        }
    }
    Ok(&data[event_start..])
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One complete event.
fn dispatch(event: &[u8], on_data: &mut dyn FnMut(&[u8]) -> Result<(), Halt>) -> Result<(), Error> {
    let mut is_message = true;
    let mut data: Option<&[u8]> = None;
    let mut joined: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n').map(strip_cr) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => is_message = value.is_empty() || value == b"message",
            b"data" => match (&mut joined, data) {
                (Some(all), _) => {
                    all.push(b'\n');
                    all.extend_from_slice(value);
                }
                (None, Some(first)) => {
                    let mut all = first.to_vec();
                    all.push(b'\n');
                    all.extend_from_slice(value);
                    joined = Some(all);
                }
                (None, None) => data = Some(value),
            },
            _ => {}
        }
    }
    let data = joined.as_deref().or(data).unwrap_or(b"");
    if is_message && !data.trim_ascii().is_empty() {
        on_data(data).map_err(|Halt| Error::Halted)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tests::harness::every_split;

    fn events(feeds: &[&[u8]], max: usize) -> Result<Vec<String>, Error> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let n = feeds.len();
        for (i, feed) in feeds.iter().enumerate() {
            feed_collect(&mut buf, feed, i + 1 == n, max, &mut out)?;
        }
        assert!(buf.is_empty(), "the body's end leaves nothing buffered");
        Ok(out)
    }

    fn feed_collect(
        buf: &mut Vec<u8>,
        piece: &[u8],
        last: bool,
        max: usize,
        out: &mut Vec<String>,
    ) -> Result<(), Error> {
        feed(buf, piece, last, max, &mut |d| {
            out.push(String::from_utf8_lossy(d).into_owned());
            Ok(())
        })
    }

    #[test]
    fn message_events_at_every_split() {
        let stream = b"id: prime-1\ndata:\n\nretry: 100\n\n: keep-alive\n\nevent: message\ndata: {\"a\":1}\n\n\
                       data: {\"b\":2}\r\n\r\nevent: endpoint\ndata: /x\n\nevent:message\ndata:{\"c\":3}\nid: 9\n\n\
                       data: [1,\ndata: 2]\n\ndata: {\"unfinished\"";
        every_split(stream, |feeds| {
            assert_eq!(
                events(feeds, 1024).unwrap(),
                vec!["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "[1,\n2]"]
            );
        });
    }

    #[test]
    fn whitespace_only_data_is_skipped() {
        assert!(events(&[b"data: \n\ndata:   \n\n"], 64).unwrap().is_empty());
    }

    #[test]
    fn an_oversized_unfinished_event_is_an_error() {
        let long = [b'x'; 100];
        let mut buf = Vec::new();
        let mut out = Vec::new();
        assert_eq!(
            feed_collect(&mut buf, &long, false, 64, &mut out),
            Err(Error::TooLarge)
        );
        let mut buf = Vec::new();
        feed_collect(&mut buf, &long[..50], false, 64, &mut out).unwrap();
        assert_eq!(
            feed_collect(&mut buf, &long[50..], false, 64, &mut out),
            Err(Error::TooLarge)
        );
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn an_oversized_whole_event_is_an_error() {
        let event = format!("data: {}\n\n", "x".repeat(100));
        assert_eq!(events(&[event.as_bytes()], 64), Err(Error::TooLarge));
    }

    #[test]
    fn halting_stops_dispatch() {
        let mut buf = Vec::new();
        let mut seen = 0;
        let r = feed(&mut buf, b"data: 1\n\ndata: 2\n\n", true, 64, &mut |_| {
            seen += 1;
            Err(Halt)
        });
        assert_eq!((r, seen), (Err(Error::Halted), 1));
    }
}
