//! HTTP/1.1 client side: request heads written into the caller's buffer, and a streaming
//! response reader that hands the session each response head, the JSON messages in its body
//! (`application/json` or `text/event-stream`), and its end.
//!
//! The reader keeps bytes only while a head, a JSON body or an SSE event is incomplete; a
//! body the session does not need is counted off without being kept.

use wire::chunked::{Chunk, ChunkedDecoder};

use super::{ErrorKind, Target, mcp, sse};

/// Most header lines a response may carry.
const MAX_HEADERS: usize = 64;

/// Optional headers of an MCP request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra<'a> {
    pub session_id: Option<&'a str>,
    pub protocol_version: Option<&'a str>,
    pub cookie: Option<&'a str>,
}

fn head_start(out: &mut Vec<u8>, method: &str, target: &Target, extra: &Extra<'_>) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in [
        (&b"Mcp-Session-Id: "[..], extra.session_id),
        (b"MCP-Protocol-Version: ", extra.protocol_version),
        (b"Cookie: ", extra.cookie),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(name);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A POST of one JSON-RPC message written by `body`. The body is written first and the head
/// rotated in front of it, so Content-Length needs no second buffer.
pub fn write_post(
    out: &mut Vec<u8>,
    target: &Target,
    extra: &Extra<'_>,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    body(out);
    let body_len = out.len() - start;
    head_start(out, "POST", target, extra);
    out.extend_from_slice(
        b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ",
    );
    mcp::write_u64(out, body_len as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out[start..].rotate_left(body_len);
}

/// The DELETE that ends an MCP session.
pub fn write_delete(out: &mut Vec<u8>, target: &Target, extra: &Extra<'_>) {
    head_start(out, "DELETE", target, extra);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// A plain GET (the `health` scenario).
pub fn write_get(out: &mut Vec<u8>, target: &Target, extra: &Extra<'_>) {
    head_start(out, "GET", target, extra);
    out.extend_from_slice(b"\r\n");
}

/// What the body of a response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Not needed: counted off, never kept.
    Skip,
    /// One JSON-RPC message (or batch).
    Json,
    /// Server-sent events whose `message` events hold JSON-RPC messages.
    Sse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Json,
    EventStream,
    Other,
}

/// A parsed response head.
pub struct Head<'h> {
    pub status: u16,
    /// The server keeps the connection open after this response.
    pub keep_alive: bool,
    pub content_type: ContentType,
    framing: Framing,
    headers: &'h [httparse::Header<'h>],
}

impl<'h> Head<'h> {
    /// Values of every header called `name` (case-insensitive), surrounding blanks trimmed.
    pub fn values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'h [u8]> + use<'h, 'n> {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
    }

    pub fn value(&self, name: &str) -> Option<&'h [u8]> {
        self.values(name).next()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Does the comma-separated header value list hold `token` (case-insensitive)?
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How a body's end is found.
#[derive(Debug, Clone)]
enum Framing {
    None,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Parses a complete head. `Ok(None)` for an interim (1xx) response other than 101, which
/// the caller skips.
pub fn parse_head<'h>(
    bytes: &'h [u8],
    headers: &'h mut [httparse::Header<'h>; MAX_HEADERS],
) -> Result<Head<'h>, ErrorKind> {
    let mut response = httparse::Response::new(headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ErrorKind::Protocol),
    }
    let status = response.code.ok_or(ErrorKind::Protocol)?;
    let http10 = response.version == Some(0);
    let headers: &'h [httparse::Header<'h>] = response.headers;
    let mut head = Head {
        status,
        keep_alive: !http10,
        content_type: ContentType::Other,
        framing: Framing::UntilClose,
        headers,
    };
    if let Some(connection) = head.value("connection") {
        if has_token(connection, "close") {
            head.keep_alive = false;
        } else if http10 && has_token(connection, "keep-alive") {
            head.keep_alive = true;
        }
    }
    if let Some(ct) = head.value("content-type") {
        let essence = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
        head.content_type = if essence.eq_ignore_ascii_case(b"application/json") {
            ContentType::Json
        } else if essence.eq_ignore_ascii_case(b"text/event-stream") {
            ContentType::EventStream
        } else {
            ContentType::Other
        };
    }
    let chunked = head
        .values("transfer-encoding")
        .any(|v| has_token(v, "chunked"));
    let mut length = None;
    for value in head.values("content-length") {
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(ErrorKind::Protocol)?;
        if length.is_some_and(|l| l != n) {
            return Err(ErrorKind::Protocol);
        }
        length = Some(n);
    }
    head.framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked(ChunkedDecoder::new())
    } else {
        match length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => {
                head.keep_alive = false;
                Framing::UntilClose
            }
        }
    };
    Ok(head)
}

/// A fresh header array for [`parse_head`].
pub fn header_slots<'h>() -> [httparse::Header<'h>; MAX_HEADERS] {
    [httparse::EMPTY_HEADER; MAX_HEADERS]
}

/// Takes a complete head (through its blank line) off `input`. A head wholly inside `input`
/// is returned without copying; otherwise the part seen so far is kept in `buf`, and the
/// caller frees `buf` once done with the returned head.
pub fn take_head<'r, 'i: 'r>(
    buf: &'r mut Vec<u8>,
    input: &mut &'i [u8],
    max: usize,
) -> Result<Option<&'r [u8]>, ErrorKind> {
    let data: &'i [u8] = input;
    let tail_start = buf.len().saturating_sub(2);
    let state = buf[tail_start..]
        .iter()
        .fold(0, |s, &b| blank_line_step(s, b).unwrap_or(0));
    let end = data
        .iter()
        .scan(state, |s, &b| {
            let next = blank_line_step(*s, b);
            *s = next.unwrap_or(0);
            Some(next.is_none())
        })
        .position(|done| done)
        .map(|at| at + 1);
    let take = end.unwrap_or(data.len());
    if buf.len() + take > max {
        *buf = Vec::new();
        return Err(ErrorKind::Protocol);
    }
    *input = &data[take..];
    match end {
        Some(end) if buf.is_empty() => Ok(Some(&data[..end])),
        Some(end) => {
            buf.extend_from_slice(&data[..end]);
            Ok(Some(buf))
        }
        None => {
            buf.extend_from_slice(data);
            Ok(None)
        }
    }
}

/// One byte of the search for the blank line ending a head: state 1 after `\n`, 2 after
/// `\n\r`; `None` when the byte completes the blank line.
fn blank_line_step(state: u8, b: u8) -> Option<u8> {
    match (state, b) {
        (1 | 2, b'\n') => None,
        (_, b'\n') => Some(1),
        (1, b'\r') => Some(2),
        _ => Some(0),
    }
}

/// What the session does with each part of a response. A handler that returns `Err(Halt)`
/// has already dealt with the connection (it is being dropped): reading stops.
pub trait Handler {
    fn head(&mut self, head: &Head<'_>) -> Result<BodyMode, Halt>;
    fn message(&mut self, json: &[u8]) -> Result<(), Halt>;
    fn end(&mut self, status: u16, keep_alive: bool) -> Result<(), Halt>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halt;

/// Why reading stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The handler asked to stop.
    Halted,
    /// The bytes broke HTTP framing or a size cap.
    Broken,
}

impl From<Halt> for Stop {
    fn from(_: Halt) -> Stop {
        Stop::Halted
    }
}

#[derive(Debug)]
struct Body {
    framing: Framing,
    mode: BodyMode,
    status: u16,
    keep_alive: bool,
}

/// Reads a stream of responses.
#[derive(Debug, Default)]
pub struct ResponseReader {
    /// An incomplete head, JSON body or SSE event.
    buf: Vec<u8>,
    body: Option<Body>,
}

impl ResponseReader {
    /// Nothing partly received: between responses, no bytes held.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.body.is_none() && self.buf.is_empty()
    }

    /// Bytes held for an incomplete head, JSON body or SSE event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Feeds received bytes; calls the handler for each head, message and end.
    pub fn feed<H: Handler>(
        &mut self,
        mut input: &[u8],
        max: usize,
        h: &mut H,
    ) -> Result<(), Stop> {
        loop {
            if self.body.is_none() {
                if input.is_empty() {
                    return Ok(());
                }
                if !self.read_head(&mut input, max, h)? {
                    return Ok(());
                }
                continue;
            }
            if input.is_empty() {
                return Ok(());
            }
            if self.read_body(&mut input, max, h)? {
                self.finish(h)?;
            }
        }
    }

    /// The peer closed: a close-delimited body ends here. True if that completed a response.
    pub fn eof<H: Handler>(&mut self, max: usize, h: &mut H) -> Result<bool, Stop> {
        match &self.body {
            Some(Body {
                framing: Framing::UntilClose,
                mode,
                ..
            }) => {
                let mode = *mode;
                self.piece(mode, &[], true, max, h)?;
                self.finish(h)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Parses a head; false while incomplete.
    fn read_head<H: Handler>(
        &mut self,
        input: &mut &[u8],
        max: usize,
        h: &mut H,
    ) -> Result<bool, Stop> {
        let Some(bytes) = take_head(&mut self.buf, input, max).map_err(|_| Stop::Broken)? else {
            return Ok(false);
        };
        let mut slots = header_slots();
        let head = parse_head(bytes, &mut slots).map_err(|_| Stop::Broken)?;
        if (100..200).contains(&head.status) {
            self.buf = Vec::new();
            return Ok(true);
        }
        let mode = h.head(&head)?;
        let body = Body {
            framing: head.framing.clone(),
            mode,
            status: head.status,
            keep_alive: head.keep_alive,
        };
        self.buf = Vec::new();
        let no_body = matches!(body.framing, Framing::None);
        self.body = Some(body);
        if no_body {
            self.finish(h)?;
        }
        Ok(true)
    }

    /// Consumes body bytes; true when the body ended.
    fn read_body<H: Handler>(
        &mut self,
        input: &mut &[u8],
        max: usize,
        h: &mut H,
    ) -> Result<bool, Stop> {
        let body = self.body.as_mut().expect("in a body");
        let mode = body.mode;
        match &mut body.framing {
            Framing::None => Ok(true),
            Framing::Length(remaining) => {
                let take = (*remaining).min(input.len() as u64) as usize;
                *remaining -= take as u64;
                let last = *remaining == 0;
                let (piece, rest) = input.split_at(take);
                *input = rest;
                self.piece(mode, piece, last, max, h)?;
                Ok(last)
            }
            Framing::UntilClose => {
                let piece = std::mem::take(input);
                self.piece(mode, piece, false, max, h)?;
                Ok(false)
            }
            Framing::Chunked(_) => self.read_chunked(input, mode, max, h),
        }
    }

    /// Chunked data: a piece is held back one step, so a body that arrives whole with its
    /// last chunk is handed over without copying.
    fn read_chunked<H: Handler>(
        &mut self,
        input: &mut &[u8],
        mode: BodyMode,
        max: usize,
        h: &mut H,
    ) -> Result<bool, Stop> {
        let mut held: Option<&[u8]> = None;
        loop {
            let Some(Body {
                framing: Framing::Chunked(decoder),
                ..
            }) = &mut self.body
            else {
                unreachable!("reading a chunked body")
            };
            match decoder.next(input).map_err(|_| Stop::Broken)? {
                Some(Chunk::Data(data)) => {
                    if let Some(previous) = held.replace(data) {
                        self.piece(mode, previous, false, max, h)?;
                    }
                }
                Some(Chunk::End) => {
                    self.piece(mode, held.unwrap_or(&[]), true, max, h)?;
                    return Ok(true);
                }
                None => {
                    if let Some(previous) = held {
                        self.piece(mode, previous, false, max, h)?;
                    }
                    return Ok(false);
                }
            }
        }
    }

    /// One piece of body data; `last` when the body ends with it.
    fn piece<H: Handler>(
        &mut self,
        mode: BodyMode,
        data: &[u8],
        last: bool,
        max: usize,
        h: &mut H,
    ) -> Result<(), Stop> {
        match mode {
            BodyMode::Skip => Ok(()),
            BodyMode::Sse => sse::feed(&mut self.buf, data, last, max, &mut |json| h.message(json))
                .map_err(|e| match e {
                    sse::Error::TooLarge => Stop::Broken,
                    sse::Error::Halted => Stop::Halted,
                }),
            BodyMode::Json => {
                if self.buf.len() + data.len() > max {
                    self.buf = Vec::new();
                    return Err(Stop::Broken);
                }
                if last && self.buf.is_empty() {
                    if !data.is_empty() {
                        h.message(data)?;
                    }
                    return Ok(());
                }
                self.buf.extend_from_slice(data);
                if last {
                    let json = std::mem::take(&mut self.buf);
                    h.message(&json)?;
                }
                Ok(())
            }
        }
    }

    fn finish<H: Handler>(&mut self, h: &mut H) -> Result<(), Stop> {
        let body = self.body.take().expect("in a body");
        self.buf = Vec::new();
        h.end(body.status, body.keep_alive)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Transport;
    use crate::proto::tests::harness::{every_split, target};

    #[derive(Default, Debug, PartialEq)]
    struct Seen {
        heads: Vec<(u16, bool, Option<String>)>,
        messages: Vec<String>,
        ends: Vec<(u16, bool)>,
        mode: Option<BodyMode>,
    }

    impl Handler for Seen {
        fn head(&mut self, head: &Head<'_>) -> Result<BodyMode, Halt> {
            let replica = head
                .value("x-replica")
                .map(|v| String::from_utf8_lossy(v).into_owned());
            self.heads.push((head.status, head.keep_alive, replica));
            Ok(self.mode.unwrap_or(match head.content_type {
                ContentType::Json => BodyMode::Json,
                ContentType::EventStream => BodyMode::Sse,
                ContentType::Other => BodyMode::Skip,
            }))
        }
        fn message(&mut self, json: &[u8]) -> Result<(), Halt> {
            self.messages
                .push(String::from_utf8_lossy(json).into_owned());
            Ok(())
        }
        fn end(&mut self, status: u16, keep_alive: bool) -> Result<(), Halt> {
            self.ends.push((status, keep_alive));
            Ok(())
        }
    }

    fn read(feeds: &[&[u8]], max: usize, eof: bool) -> Result<Seen, Stop> {
        let mut r = ResponseReader::default();
        let mut seen = Seen::default();
        for feed in feeds {
            r.feed(feed, max, &mut seen)?;
        }
        if eof {
            r.eof(max, &mut seen)?;
        }
        assert!(
            r.is_idle() || !eof,
            "a finished stream leaves nothing behind"
        );
        Ok(seen)
    }

    fn read_all_splits(stream: &[u8], eof: bool) -> Seen {
        let whole = read(&[stream], 1 << 16, eof).unwrap();
        every_split(stream, |feeds| {
            assert_eq!(read(feeds, 1 << 16, eof).unwrap(), whole);
        });
        whole
    }

    #[test]
    fn post_head_is_complete_and_body_follows() {
        let t = target(Transport::Http);
        let mut out = b"earlier".to_vec();
        let extra = Extra {
            session_id: Some("abc"),
            protocol_version: Some("2025-06-18"),
            cookie: Some("lb=x; a=b"),
        };
        write_post(&mut out, &t, &extra, |o| o.extend_from_slice(b"{\"id\":1}"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "earlierPOST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nMcp-Session-Id: abc\r\n\
             MCP-Protocol-Version: 2025-06-18\r\nCookie: lb=x; a=b\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             Content-Length: 8\r\n\r\n{\"id\":1}"
        );
        let mut out = Vec::new();
        write_delete(&mut out, &t, &extra);
        assert!(out.starts_with(b"DELETE /mcp HTTP/1.1\r\n"));
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
        let mut out = Vec::new();
        write_get(&mut out, &t, &Extra::default());
        assert_eq!(out, b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    }

    #[test]
    fn content_length_json_and_keep_alive() {
        let stream = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Replica: r1\r\nContent-Length: 8\r\n\r\n{\"id\":1}\
                       HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
        let seen = read_all_splits(stream, false);
        assert_eq!(
            seen.heads,
            vec![(200, true, Some("r1".into())), (202, true, None)]
        );
        assert_eq!(seen.messages, vec!["{\"id\":1}"]);
        assert_eq!(seen.ends, vec![(200, true), (202, true)]);
    }

    #[test]
    fn chunked_sse_with_priming_event_and_notifications() {
        let events = "id: 0\ndata:\n\n: comment\nevent: message\ndata: {\"method\":\"n\"}\n\n\
                      event: message\r\ndata: {\"id\":1,\r\ndata: \"result\":{}}\r\n\r\n\
                      event: other\ndata: {\"skip\":1}\n\ndata: {\"id\":2}\n\n";
        let mut stream = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in events.as_bytes().chunks(13) {
            stream.extend(format!("{:x}\r\n", piece.len()).bytes());
            stream.extend(piece);
            stream.extend(b"\r\n");
        }
        stream.extend(b"0\r\n\r\n");
        let seen = read_all_splits(&stream, false);
        assert_eq!(
            seen.messages,
            vec![
                "{\"method\":\"n\"}",
                "{\"id\":1,\n\"result\":{}}",
                "{\"id\":2}"
            ]
        );
        assert_eq!(seen.ends, vec![(200, true)]);
    }

    #[test]
    fn content_length_sse_and_close_delimited_json() {
        let body = "event: message\ndata: {\"id\":5}\n\n";
        let stream = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let seen = read_all_splits(stream.as_bytes(), false);
        assert_eq!(seen.messages, vec!["{\"id\":5}"]);
        let close_delimited =
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"id\":6}";
        let seen = read_all_splits(close_delimited, true);
        assert_eq!(seen.messages, vec!["{\"id\":6}"]);
        assert_eq!(seen.ends, vec![(200, false)]);
    }

    #[test]
    fn skipped_bodies_and_interim_responses() {
        let stream =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
                       Connection: close\r\nContent-Length: 28\r\n\r\nNot Found: Session not found";
        let seen = read_all_splits(stream, false);
        assert_eq!(seen.heads, vec![(404, false, None)]);
        assert!(seen.messages.is_empty());
        assert_eq!(seen.ends, vec![(404, false)]);
        let chunked_skip =
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n0\r\n\r\n";
        let seen = read_all_splits(chunked_skip, false);
        assert_eq!(seen.ends, vec![(500, true)]);
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(read_all_splits(no_content, false).ends.len(), 2);
    }

    #[test]
    fn limits_and_malformed_heads_break_the_stream() {
        let big =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        let mut stream = big.to_vec();
        stream.extend([b' '; 100]);
        assert_eq!(read(&[&stream], 80, false).unwrap_err(), Stop::Broken);
        let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(200));
        assert_eq!(
            read(&[long_head.as_bytes()], 100, false).unwrap_err(),
            Stop::Broken
        );
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert_eq!(read(&[bad], 1000, false).unwrap_err(), Stop::Broken);
        }
    }

    #[test]
    fn head_end_is_found_across_feeds() {
        for stream in [
            &b"HTTP/1.1 204 X\r\n\r\n"[..],
            b"HTTP/1.1 204 X\n\n",
            b"HTTP/1.1 204 X\r\nA: b\n\r\n",
        ] {
            every_split(stream, |feeds| {
                let mut buf = Vec::new();
                let mut found = None;
                for feed in feeds {
                    let mut input = *feed;
                    if let Some(head) = take_head(&mut buf, &mut input, 100).unwrap() {
                        found = Some(head.to_vec());
                        assert!(input.is_empty());
                    }
                }
                assert_eq!(found.as_deref(), Some(stream));
            });
        }
    }

    #[test]
    fn tokens_in_header_lists() {
        assert!(has_token(b"keep-alive, Close", "close"));
        assert!(!has_token(b"closed", "close"));
        assert!(has_token(b"Upgrade", "upgrade"));
    }
}
