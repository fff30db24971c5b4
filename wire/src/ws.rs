//! RFC 6455 WebSocket framing: the handshake key, frame headers, and a message decoder.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::{Pending, TooLarge};

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A `Sec-WebSocket-Key`: base64 of 16 bytes, here derived from `seed`.
pub fn client_key(seed: u128) -> String {
    base64::engine::general_purpose::STANDARD.encode(seed.to_le_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: Opcode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header itself takes.
    pub header_len: usize,
}

impl Header {
    fn frame_len(&self) -> u64 {
        self.header_len as u64 + self.payload_len
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// Reserved bits set, an unknown opcode, a fragmented or oversized control frame, a
    /// continuation with nothing to continue, or a 64-bit length with its top bit set.
    Protocol(&'static str),
    /// A client frame without a mask (server side) or a server frame with one (client side).
    Masking,
    TooLarge(TooLarge),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Protocol(what) => write!(f, "websocket protocol error: {what}"),
            WsError::Masking => write!(f, "websocket masking rule violated"),
            WsError::TooLarge(t) => write!(f, "websocket {t}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<TooLarge> for WsError {
    fn from(t: TooLarge) -> Self {
        WsError::TooLarge(t)
    }
}

/// Parses a frame header from the start of `buf`; `None` until enough bytes are there.
pub fn decode_header(buf: &[u8]) -> Result<Option<Header>, WsError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(WsError::Protocol("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut header_len) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if payload_len >> 63 != 0 {
        return Err(WsError::Protocol("64-bit length with the top bit set"));
    }
    if opcode.is_control() && (!fin || payload_len > MAX_CONTROL_PAYLOAD) {
        return Err(WsError::Protocol("fragmented or oversized control frame"));
    }
    let mask = if masked {
        let Some(m) = buf.get(header_len..header_len + 4) else {
            return Ok(None);
        };
        header_len += 4;
        Some(m.try_into().expect("4 bytes"))
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        payload_len,
        header_len,
    }))
}

/// Appends one whole frame. With a mask (client to server) the payload is masked as copied.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode.bits());
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], m);
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `data` with the repeating 4-byte mask (masking and unmasking are the same operation).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Which side of the connection the decoder is on: it decides which frames must be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Decodes frames sent by a client: they must be masked.
    Server,
    /// Decodes frames sent by a server: they must not be masked.
    Client,
}

/// A complete unit received: a whole (reassembled) data message or a control frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The close code, when the frame had one, and the reason bytes.
    Close(Option<u16>, &'a [u8]),
}

impl<'a> Message<'a> {
    fn new(opcode: Opcode, payload: &'a [u8]) -> Result<Message<'a>, WsError> {
        Ok(match opcode {
            Opcode::Text => Message::Text(payload),
            Opcode::Binary => Message::Binary(payload),
            Opcode::Ping => Message::Ping(payload),
            Opcode::Pong => Message::Pong(payload),
            Opcode::Close => match payload {
                [] => Message::Close(None, &[]),
                [a, b, reason @ ..] => Message::Close(Some(u16::from_be_bytes([*a, *b])), reason),
                [_] => return Err(WsError::Protocol("close frame with a 1-byte body")),
            },
            Opcode::Continuation => unreachable!("continuations are reassembled first"),
        })
    }
}

/// Turns a byte stream into WebSocket messages, reassembling fragmented data messages.
///
/// An unmasked frame wholly inside one feed is returned without copying; anything else is
/// copied once (a masked frame must be unmasked; a split frame must be joined).
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    /// An incomplete frame, or the last frame handed out when it had to be copied.
    frame: Pending,
    /// Payload of an unfinished fragmented message.
    fragments: Pending,
    /// The opcode of the fragmented message in progress.
    fragmented: Option<Opcode>,
}

/// Where the payload of the message to hand out lies.
enum Ready<'a> {
    Input(Opcode, &'a [u8]),
    Frame(Opcode, usize),
    Fragments(Opcode),
}

impl Decoder {
    pub const fn new(role: Role) -> Self {
        Decoder {
            role,
            frame: Pending {
                buf: Vec::new(),
                consumed: false,
            },
            fragments: Pending {
                buf: Vec::new(),
                consumed: false,
            },
            fragmented: None,
        }
    }

    /// Bytes held back for unfinished frames or messages.
    pub fn buffered(&self) -> usize {
        let live = |p: &Pending| if p.consumed { 0 } else { p.buf.len() };
        live(&self.frame) + live(&self.fragments)
    }

    /// The next complete message in `input`, or `None` once `input` is used up.
    /// `max_message` caps a frame's payload and a reassembled message alike.
    pub fn next<'r, 'i: 'r>(
        &'r mut self,
        input: &mut &'i [u8],
        max_message: usize,
    ) -> Result<Option<Message<'r>>, WsError> {
        self.frame.release_consumed();
        self.fragments.release_consumed();
        let frame_cap = max_message.saturating_add(14);
        let ready = loop {
            let data: &'i [u8] = input;
            if self.frame.buf.is_empty() {
                let Some(h) = decode_header(data)? else {
                    *input = &[];
                    self.frame.extend(data, frame_cap)?;
                    return Ok(None);
                };
                self.check_header(&h, max_message)?;
                let end = h.frame_len() as usize;
                if data.len() < end {
                    *input = &[];
                    self.frame.extend(data, frame_cap)?;
                    return Ok(None);
                }
                *input = &data[end..];
                if h.mask.is_none() {
                    let payload = &data[h.header_len..end];
                    match self.accept(h, payload, max_message)? {
                        Filed::Fragment => continue,
                        Filed::Whole(opcode) => break Ready::Input(opcode, payload),
                        Filed::Reassembled(opcode) => break Ready::Fragments(opcode),
                    }
                }
                self.frame.buf.extend_from_slice(&data[..end]);
            } else {
                let wanted = match decode_header(&self.frame.buf)? {
                    Some(h) => {
                        self.check_header(&h, max_message)?;
                        h.frame_len() as usize - self.frame.buf.len()
                    }
                    None => 1,
                };
                let take = wanted.min(data.len());
                *input = &data[take..];
                self.frame.buf.extend_from_slice(&data[..take]);
                if take < wanted {
                    return Ok(None);
                }
                match decode_header(&self.frame.buf)? {
                    Some(h) if self.frame.buf.len() >= h.frame_len() as usize => {}
                    _ => continue,
                }
            }
            let h = decode_header(&self.frame.buf)?.expect("frame complete");
            let Decoder {
                frame, fragments, ..
            } = self;
            let payload = &mut frame.buf[h.header_len..];
            if let Some(mask) = h.mask {
                apply_mask(payload, mask);
            }
            match accept(&mut self.fragmented, fragments, h, payload, max_message)? {
                Filed::Fragment => frame.buf = Vec::new(),
                Filed::Whole(opcode) => {
                    frame.consumed = true;
                    break Ready::Frame(opcode, h.header_len);
                }
                Filed::Reassembled(opcode) => {
                    frame.buf = Vec::new();
                    break Ready::Fragments(opcode);
                }
            }
        };
        Ok(Some(match ready {
            Ready::Input(opcode, payload) => Message::new(opcode, payload)?,
            Ready::Frame(opcode, at) => Message::new(opcode, &self.frame.buf[at..])?,
            Ready::Fragments(opcode) => {
                self.fragments.consumed = true;
                Message::new(opcode, &self.fragments.buf)?
            }
        }))
    }

    fn accept(&mut self, h: Header, payload: &[u8], max_message: usize) -> Result<Filed, WsError> {
        accept(
            &mut self.fragmented,
            &mut self.fragments,
            h,
            payload,
            max_message,
        )
    }

    fn check_header(&self, h: &Header, max_message: usize) -> Result<(), WsError> {
        if h.mask.is_some() != (self.role == Role::Server) {
            return Err(WsError::Masking);
        }
        if h.payload_len > max_message as u64 {
            return Err(WsError::TooLarge(TooLarge { limit: max_message }));
        }
        match (h.opcode, self.fragmented.is_some()) {
            (Opcode::Continuation, false) => Err(WsError::Protocol("continuation without a start")),
            (Opcode::Text | Opcode::Binary, true) => {
                Err(WsError::Protocol("new message inside a fragmented one"))
            }
            _ => Ok(()),
        }
    }
}

/// What became of one complete frame.
enum Filed {
    /// A whole message in this frame's payload.
    Whole(Opcode),
    /// Its payload went into an unfinished fragmented message.
    Fragment,
    /// It completed a fragmented message, now whole in `fragments`.
    Reassembled(Opcode),
}

fn accept(
    fragmented: &mut Option<Opcode>,
    fragments: &mut Pending,
    h: Header,
    payload: &[u8],
    max_message: usize,
) -> Result<Filed, WsError> {
    if h.opcode.is_control() || (h.fin && h.opcode != Opcode::Continuation) {
        return Ok(Filed::Whole(h.opcode));
    }
    if h.opcode != Opcode::Continuation {
        *fragmented = Some(h.opcode);
    }
    fragments.extend(payload, max_message)?;
    if !h.fin {
        return Ok(Filed::Fragment);
    }
    Ok(Filed::Reassembled(
        fragmented.take().expect("a fragmented message is open"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::feeds;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(Vec<u8>),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, Vec<u8>),
    }

    fn own(m: Message<'_>) -> Owned {
        match m {
            Message::Text(b) => Owned::Text(b.to_vec()),
            Message::Binary(b) => Owned::Binary(b.to_vec()),
            Message::Ping(b) => Owned::Ping(b.to_vec()),
            Message::Pong(b) => Owned::Pong(b.to_vec()),
            Message::Close(c, r) => Owned::Close(c, r.to_vec()),
        }
    }

    fn decode(role: Role, feeds: &[&[u8]], max: usize) -> Result<Vec<Owned>, WsError> {
        let mut d = Decoder::new(role);
        let mut out = Vec::new();
        for feed in feeds {
            let mut input = *feed;
            while let Some(m) = d.next(&mut input, max)? {
                out.push(own(m));
            }
            assert!(input.is_empty());
        }
        assert_eq!(d.buffered(), 0, "a finished stream leaves nothing buffered");
        Ok(out)
    }

    fn frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, payload, mask);
        if !fin {
            out[0] &= 0x7F;
        }
        out
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(client_key(0).len(), 24);
    }

    #[test]
    fn lengths_use_7_16_and_64_bit_forms() {
        for (len, header) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let payload = vec![b'x'; len];
            let bytes = frame(true, Opcode::Binary, &payload, None);
            let h = decode_header(&bytes).unwrap().unwrap();
            assert_eq!((h.payload_len as usize, h.header_len), (len, header));
            let masked = frame(true, Opcode::Binary, &payload, Some(MASK));
            let h = decode_header(&masked).unwrap().unwrap();
            assert_eq!((h.payload_len as usize, h.header_len), (len, header + 4));
        }
    }

    #[test]
    fn client_frames_decode_on_the_server_at_every_split() {
        let mut stream = frame(true, Opcode::Text, b"{\"id\":1}\n{\"id\":2}", Some(MASK));
        stream.extend(frame(true, Opcode::Ping, b"hi", Some(MASK)));
        stream.extend(frame(false, Opcode::Text, b"{\"id\"", Some(MASK)));
        stream.extend(frame(true, Opcode::Pong, b"", Some(MASK)));
        stream.extend(frame(false, Opcode::Continuation, b":3", Some(MASK)));
        stream.extend(frame(true, Opcode::Continuation, b"}", Some(MASK)));
        stream.extend(frame(true, Opcode::Close, b"\x03\xe8bye", Some(MASK)));
        for f in feeds(&stream) {
            assert_eq!(
                decode(Role::Server, &f, 1024).unwrap(),
                vec![
                    Owned::Text(b"{\"id\":1}\n{\"id\":2}".to_vec()),
                    Owned::Ping(b"hi".to_vec()),
                    Owned::Pong(vec![]),
                    Owned::Text(b"{\"id\":3}".to_vec()),
                    Owned::Close(Some(1000), b"bye".to_vec()),
                ]
            );
        }
    }

    #[test]
    fn server_frames_decode_on_the_client_at_every_split() {
        let big = vec![b'a'; 300];
        let mut stream = frame(true, Opcode::Text, b"{\"result\":{}}", None);
        stream.extend(frame(true, Opcode::Binary, &big, None));
        stream.extend(frame(false, Opcode::Binary, b"ab", None));
        stream.extend(frame(true, Opcode::Continuation, b"cd", None));
        stream.extend(frame(true, Opcode::Close, b"", None));
        for f in feeds(&stream) {
            assert_eq!(
                decode(Role::Client, &f, 1024).unwrap(),
                vec![
                    Owned::Text(b"{\"result\":{}}".to_vec()),
                    Owned::Binary(big.clone()),
                    Owned::Binary(b"abcd".to_vec()),
                    Owned::Close(None, vec![]),
                ]
            );
        }
    }

    #[test]
    fn masking_rules_are_enforced() {
        let unmasked = frame(true, Opcode::Text, b"x", None);
        assert_eq!(
            decode(Role::Server, &[&unmasked], 64),
            Err(WsError::Masking)
        );
        let masked = frame(true, Opcode::Text, b"x", Some(MASK));
        assert_eq!(decode(Role::Client, &[&masked], 64), Err(WsError::Masking));
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut rsv = frame(true, Opcode::Text, b"x", None);
        rsv[0] |= 0x40;
        let big_ping = frame(true, Opcode::Ping, &[0; 126], None);
        let lone_continuation = frame(true, Opcode::Continuation, b"x", None);
        let mut nested = frame(false, Opcode::Text, b"a", None);
        nested.extend(frame(true, Opcode::Text, b"b", None));
        for bad in [rsv, big_ping, lone_continuation, nested, vec![0x83, 0]] {
            assert!(matches!(
                decode(Role::Client, &[&bad], 1024),
                Err(WsError::Protocol(_))
            ));
        }
    }

    #[test]
    fn oversized_frames_and_messages_fail_at_every_split() {
        let single = frame(true, Opcode::Text, &[b'x'; 100], Some(MASK));
        let mut fragmented = frame(false, Opcode::Text, &[b'x'; 40], Some(MASK));
        fragmented.extend(frame(true, Opcode::Continuation, &[b'x'; 40], Some(MASK)));
        for stream in [single, fragmented] {
            for f in feeds(&stream) {
                assert_eq!(
                    decode(Role::Server, &f, 64),
                    Err(WsError::TooLarge(TooLarge { limit: 64 }))
                );
            }
        }
    }
}
