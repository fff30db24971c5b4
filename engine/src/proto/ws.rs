//! WebSocket client side: the upgrade request, the check of the server's answer, and masked
//! client frames written into the caller's buffer.

use base64::Engine as _;
use wire::ws::{Opcode, accept_key, apply_mask, encode_frame};

use super::http::{Head, has_token};
use super::{ErrorKind, Target};

/// A `Sec-WebSocket-Key`: base64 of 16 random bytes.
pub type Key = [u8; 24];

pub fn key(nonce: u128) -> Key {
    let mut key = [0u8; 24];
    base64::engine::general_purpose::STANDARD
        .encode_slice(nonce.to_le_bytes(), &mut key)
        .expect("16 bytes encode to 24");
    key
}

pub fn write_upgrade(out: &mut Vec<u8>, target: &Target, key: &Key) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host.as_bytes());
    out.extend_from_slice(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\nSec-WebSocket-Key: ",
    );
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Checks the server's answer to the upgrade: 101, `Upgrade: websocket`, the accept key
/// derived from ours, and no subprotocol other than the `mcp` we offered.
pub fn check_upgrade(head: &Head<'_>, key: &Key) -> Result<(), ErrorKind> {
    if head.status != 101 {
        return Err(ErrorKind::Http(head.status));
    }
    let upgrade_ok = head
        .value("upgrade")
        .is_some_and(|v| has_token(v, "websocket"));
    let accept_ok = head
        .value("sec-websocket-accept")
        .is_some_and(|v| v == accept_key(key).as_bytes());
    let protocol_ok = head
        .value("sec-websocket-protocol")
        .is_none_or(|v| v == b"mcp");
    if upgrade_ok && accept_ok && protocol_ok {
        Ok(())
    } else {
        Err(ErrorKind::Protocol)
    }
}

/// A masked text frame whose payload `body` writes. The payload is written first, then the
/// frame header is rotated in front of it and the payload masked in place.
pub fn write_text(out: &mut Vec<u8>, mask: [u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let mut header = [0u8; 14];
    header[0] = 0x81;
    let mut n = 2;
    if len < 126 {
        header[1] = 0x80 | len as u8;
    } else if let Ok(len16) = u16::try_from(len) {
        header[1] = 0x80 | 126;
        header[2..4].copy_from_slice(&len16.to_be_bytes());
        n = 4;
    } else {
        header[1] = 0x80 | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        n = 10;
    }
    header[n..n + 4].copy_from_slice(&mask);
    n += 4;
    out.extend_from_slice(&header[..n]);
    out[start..].rotate_right(n);
    apply_mask(&mut out[start + n..], mask);
}

pub fn write_pong(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    encode_frame(out, Opcode::Pong, payload, Some(mask));
}

/// A close frame with status 1000 (normal closure).
pub fn write_close(out: &mut Vec<u8>, mask: [u8; 4]) {
    encode_frame(out, Opcode::Close, &1000u16.to_be_bytes(), Some(mask));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Transport;
    use crate::proto::http::{header_slots, parse_head};
    use crate::proto::tests::harness::target;
    use wire::ws::{Decoder, Message, Role};

    const MASK: [u8; 4] = [1, 2, 3, 250];

    fn server_reads(bytes: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
        let mut d = Decoder::new(Role::Server);
        let mut input = bytes;
        let mut got = Vec::new();
        while let Some(m) = d.next(&mut input, 1 << 20).unwrap() {
            got.push(match m {
                Message::Text(t) => (Opcode::Text, t.to_vec()),
                Message::Pong(p) => (Opcode::Pong, p.to_vec()),
                Message::Close(code, _) => (Opcode::Close, code.unwrap().to_be_bytes().to_vec()),
                other => panic!("{other:?}"),
            });
        }
        got
    }

    #[test]
    fn text_frames_of_every_length_form_decode_on_a_server() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = b"x".to_vec();
            write_text(&mut out, MASK, |o| o.extend_from_slice(&payload));
            assert_eq!(out[0], b'x');
            assert_eq!(server_reads(&out[1..]), vec![(Opcode::Text, payload)]);
        }
    }

    #[test]
    fn control_frames_are_masked() {
        let mut out = Vec::new();
        write_pong(&mut out, b"hb", MASK);
        write_close(&mut out, MASK);
        assert_eq!(
            server_reads(&out),
            vec![
                (Opcode::Pong, b"hb".to_vec()),
                (Opcode::Close, 1000u16.to_be_bytes().to_vec())
            ]
        );
    }

    #[test]
    fn upgrade_request_offers_mcp() {
        let k = key(7);
        let mut out = Vec::new();
        write_upgrade(&mut out, &target(Transport::WebSocket), &k);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /mcp/ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: mcp\r\n"));
        assert!(text.ends_with(&format!(
            "Sec-WebSocket-Key: {}\r\n\r\n",
            std::str::from_utf8(&k).unwrap()
        )));
        assert_ne!(key(7), key(8));
    }

    fn check(head: &str, k: &Key) -> Result<(), ErrorKind> {
        let mut slots = header_slots();
        let head = parse_head(head.as_bytes(), &mut slots).unwrap();
        check_upgrade(&head, k)
    }

    #[test]
    fn upgrade_answer_is_verified() {
        let k = key(1);
        let accept = accept_key(&k);
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        assert_eq!(check(&good, &k), Ok(()));
        let with_mcp = good.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: mcp\r\n\r\n");
        assert_eq!(check(&with_mcp, &k), Ok(()));
        let other_protocol = good.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        assert_eq!(check(&other_protocol, &k), Err(ErrorKind::Protocol));
        assert_eq!(check(&good, &key(2)), Err(ErrorKind::Protocol));
        let no_upgrade = good.replace("Upgrade: WebSocket\r\n", "");
        assert_eq!(check(&no_upgrade, &k), Err(ErrorKind::Protocol));
        assert_eq!(
            check("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", &k),
            Err(ErrorKind::Http(404))
        );
    }
}
