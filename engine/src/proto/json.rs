//! A JSON scanner that reads the few fields the engine needs from a JSON-RPC message (the id,
//! the method, result vs error, the error code, and two fields of an initialize result) and
//! skips everything else without building a tree or allocating.

/// Why a message could not be read; the session counts it as a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError(pub &'static str);

/// Nesting deeper than this is refused (a bit per level records object vs array).
const MAX_DEPTH: u32 = 128;

/// A string as it appears on the wire: the bytes between the quotes, escapes not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The undecoded bytes between the quotes.
    #[cfg(test)]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The decoded text as UTF-8 bytes (escapes resolved; lone surrogates become U+FFFD).
    pub fn bytes(&self) -> Unescaped<'a> {
        Unescaped {
            rest: self.raw,
            pending: [0; 4],
            pending_len: 0,
            pending_at: 0,
        }
    }

    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.bytes().eq(s.bytes())
        } else {
            self.raw == s.as_bytes()
        }
    }

    /// The decoded text (allocates: only for identifiers kept by the session).
    pub fn decode(&self) -> String {
        let bytes: Vec<u8> = if self.escaped {
            self.bytes().collect()
        } else {
            self.raw.to_vec()
        };
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// The value of a string that holds a non-negative decimal integer (`"42"`).
    pub fn as_u64(&self) -> Option<u64> {
        if self.escaped {
            return None;
        }
        parse_u64(self.raw)
    }
}

/// Iterator over the decoded bytes of a [`Str`].
pub struct Unescaped<'a> {
    rest: &'a [u8],
    pending: [u8; 4],
    pending_len: u8,
    pending_at: u8,
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pending_at < self.pending_len {
            self.pending_at += 1;
            return Some(self.pending[usize::from(self.pending_at - 1)]);
        }
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        if b != b'\\' {
            return Some(b);
        }
        let (&e, rest) = self.rest.split_first()?;
        self.rest = rest;
        let decoded = match e {
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode(),
            other => other,
        };
        Some(decoded)
    }
}

impl Unescaped<'_> {
    /// After `\u`: one code point (a surrogate pair takes two escapes), emitted as UTF-8.
    fn unicode(&mut self) -> Option<u8> {
        let high = self.hex4()?;
        let c = if (0xD800..0xDC00).contains(&high) && self.rest.starts_with(b"\\u") {
            let saved = self.rest;
            self.rest = &self.rest[2..];
            match self.hex4() {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                }
                _ => {
                    self.rest = saved;
                    None
                }
            }
        } else {
            char::from_u32(high)
        };
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        let len = c.encode_utf8(&mut self.pending).len();
        self.pending_len = len as u8;
        self.pending_at = 1;
        Some(self.pending[0])
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.rest.get(..4)?;
        self.rest = &self.rest[4..];
        digits
            .iter()
            .try_fold(0u32, |acc, &d| Some(acc << 4 | (d as char).to_digit(16)?))
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

fn parse_i64(raw: &[u8]) -> Option<i64> {
    match raw.split_first() {
        Some((b'-', digits)) => {
            let magnitude = parse_u64(digits)?;
            0i64.checked_sub_unsigned(magnitude)
        }
        _ => i64::try_from(parse_u64(raw)?).ok(),
    }
}

/// A cursor over one JSON text. Every method validates what it passes over.
pub struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Scanner { s, i: 0 }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(JsonError(what))
        }
    }

    /// True once only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    pub fn string(&mut self) -> Result<Str<'a>, JsonError> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(JsonError("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => {
                    return Ok(Str {
                        raw: &self.s[start..self.i - 1],
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1F => return Err(JsonError("control character in a string")),
                _ => {}
            }
        }
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        let Some(&e) = self.s.get(self.i) else {
            return Err(JsonError("unterminated string"));
        };
        self.i += 1;
        match e {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let hex = self.s.get(self.i..self.i + 4);
                if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    self.i += 4;
                    Ok(())
                } else {
                    Err(JsonError("bad \\u escape"))
                }
            }
            _ => Err(JsonError("bad escape")),
        }
    }

    /// A number's text, checked against the JSON grammar.
    pub fn number(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonError("bad number")),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            self.required_digits()?;
        }
        Ok(&self.s[start..self.i])
    }

    fn digits(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        self.digits();
        if self.i == start {
            return Err(JsonError("bad number"));
        }
        Ok(())
    }

    fn literal(&mut self) -> Result<(), JsonError> {
        let rest = &self.s[self.i..];
        for word in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(word) {
                self.i += word.len();
                return Ok(());
            }
        }
        Err(JsonError("unexpected character"))
    }

    /// Passes over one value of any kind, however nested, without recursion.
    pub fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit n of `objects` is set when nesting level n is an object.
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.i += 1;
                    if depth == MAX_DEPTH {
                        return Err(JsonError("nesting too deep"));
                    }
                    let is_object = open == b'{';
                    objects = objects & !(1 << depth) | u128::from(is_object) << depth;
                    depth += 1;
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if is_object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(_) => self.literal()?,
                None => return Err(JsonError("unexpected end")),
            }
            // A value ended: close containers until another value is due.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = objects >> (depth - 1) & 1 == 1;
                match (self.peek(), in_object) {
                    (Some(b','), _) => {
                        self.i += 1;
                        if in_object {
                            self.key()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.i += 1;
                        depth -= 1;
                    }
                    _ => return Err(JsonError("expected , or a closing bracket")),
                }
            }
        }
    }

    fn key(&mut self) -> Result<Str<'a>, JsonError> {
        let key = self.string()?;
        self.expect(b':', "expected :")?;
        Ok(key)
    }

    /// Walks an object: `member` is called with each key and must consume its value.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Str<'a>) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(JsonError("expected , or }")),
            }
        }
    }

    /// Like [`Scanner::object`] when the next value is an object; any other value is skipped.
    pub fn fields(
        &mut self,
        member: impl FnMut(&mut Self, Str<'a>) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        if self.peek() == Some(b'{') {
            self.object(member)
        } else {
            self.skip_value()
        }
    }

    /// Reads the next value into `into` when it is a string; skips it otherwise.
    fn string_or_skip(&mut self, into: &mut Option<Str<'a>>) -> Result<(), JsonError> {
        if self.peek() == Some(b'"') {
            *into = Some(self.string()?);
            Ok(())
        } else {
            self.skip_value()
        }
    }

    /// The raw text of the next value (after skipping it).
    fn raw_value(&mut self) -> Result<&'a [u8], JsonError> {
        self.skip_ws();
        let start = self.i;
        self.skip_value()?;
        Ok(&self.s[start..self.i])
    }
}

/// The `id` of a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    Absent,
    Null,
    /// A non-negative integer.
    Num(u64),
    Str(Str<'a>),
    /// Anything else (negative, fractional, not a scalar): never one of ours.
    Other,
}

/// What a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Neither `result` nor `error`: a request or notification, or a malformed response.
    None,
    /// A result; the two fields are read only when asked for (initialize results).
    Result {
        server_name: Option<Str<'a>>,
        protocol_version: Option<Str<'a>>,
    },
    /// An error; `code` is `None` when missing or not an integer.
    Error { code: Option<i64> },
}

/// The parts of one JSON-RPC message the engine looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: Id<'a>,
    /// The id's JSON text, to echo it in a reply.
    pub id_raw: &'a [u8],
    pub method: Option<Str<'a>>,
    pub reply: Reply<'a>,
}

impl Message<'_> {
    /// Does this response answer our request `id`? Errors with a null id (the server could not
    /// read the request) answer whatever is in flight.
    pub fn answers(&self, id: u64) -> bool {
        match self.id {
            Id::Num(n) => n == id,
            Id::Str(s) => s.as_u64() == Some(id),
            Id::Null => matches!(self.reply, Reply::Error { .. }),
            Id::Absent | Id::Other => false,
        }
    }

    /// A request from the server (it has both a method and an id): it expects a reply.
    pub fn is_request(&self) -> bool {
        self.method.is_some() && !matches!(self.id, Id::Absent)
    }
}

/// Reads every message in `text`: one object, or a batch (an array of objects). `f` may stop
/// the walk early by returning false. `want_init` reads `serverInfo.name` and
/// `protocolVersion` from results.
pub fn each_message<'a>(
    text: &'a [u8],
    want_init: bool,
    mut f: impl FnMut(Message<'a>) -> bool,
) -> Result<(), JsonError> {
    let mut sc = Scanner::new(text);
    if sc.peek() == Some(b'[') {
        sc.i += 1;
        if sc.peek() == Some(b']') {
            sc.i += 1;
        } else {
            loop {
                let m = message(&mut sc, want_init)?;
                if !f(m) {
                    return Ok(());
                }
                match sc.peek() {
                    Some(b',') => sc.i += 1,
                    Some(b']') => {
                        sc.i += 1;
                        break;
                    }
                    _ => return Err(JsonError("expected , or ]")),
                }
            }
        }
    } else {
        let m = message(&mut sc, want_init)?;
        if !f(m) {
            return Ok(());
        }
    }
    if !sc.at_end() {
        return Err(JsonError("trailing bytes after the message"));
    }
    Ok(())
}

/// One message object at the scanner's position.
pub fn message<'a>(sc: &mut Scanner<'a>, want_init: bool) -> Result<Message<'a>, JsonError> {
    let mut m = Message {
        id: Id::Absent,
        id_raw: &[],
        method: None,
        reply: Reply::None,
    };
    sc.object(|sc, key| {
        if key.eq_str("id") {
            (m.id, m.id_raw) = id(sc)?;
        } else if key.eq_str("method") {
            m.method = Some(sc.string()?);
        } else if key.eq_str("result") {
            m.reply = result(sc, want_init)?;
        } else if key.eq_str("error") {
            m.reply = error(sc)?;
        } else {
            sc.skip_value()?;
        }
        Ok(())
    })?;
    Ok(m)
}

fn id<'a>(sc: &mut Scanner<'a>) -> Result<(Id<'a>, &'a [u8]), JsonError> {
    match sc.peek() {
        Some(b'"') => {
            sc.skip_ws();
            let start = sc.i;
            let s = sc.string()?;
            Ok((Id::Str(s), &sc.s[start..sc.i]))
        }
        Some(b'-' | b'0'..=b'9') => {
            let raw = sc.number()?;
            Ok((parse_u64(raw).map_or(Id::Other, Id::Num), raw))
        }
        _ => {
            let raw = sc.raw_value()?;
            Ok((if raw == b"null" { Id::Null } else { Id::Other }, raw))
        }
    }
}

fn result<'a>(sc: &mut Scanner<'a>, want_init: bool) -> Result<Reply<'a>, JsonError> {
    let mut server_name = None;
    let mut protocol_version = None;
    if !want_init {
        sc.skip_value()?;
    } else {
        sc.fields(|sc, key| {
            if key.eq_str("protocolVersion") {
                sc.string_or_skip(&mut protocol_version)
            } else if key.eq_str("serverInfo") {
                sc.fields(|sc, key| {
                    if key.eq_str("name") {
                        sc.string_or_skip(&mut server_name)
                    } else {
                        sc.skip_value()
                    }
                })
            } else {
                sc.skip_value()
            }
        })?;
    }
    Ok(Reply::Result {
        server_name,
        protocol_version,
    })
}

fn error<'a>(sc: &mut Scanner<'a>) -> Result<Reply<'a>, JsonError> {
    let mut code = None;
    sc.fields(|sc, key| {
        if key.eq_str("code") && matches!(sc.peek(), Some(b'-' | b'0'..=b'9')) {
            code = parse_i64(sc.number()?);
            Ok(())
        } else {
            sc.skip_value()
        }
    })?;
    Ok(Reply::Error { code })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, want_init: bool) -> Result<Message<'_>, JsonError> {
        let mut found = None;
        each_message(text.as_bytes(), want_init, |m| {
            found = Some(m);
            false
        })?;
        found.ok_or(JsonError("no message"))
    }

    fn skips(text: &str) -> Result<usize, JsonError> {
        let mut sc = Scanner::new(text.as_bytes());
        sc.skip_value()?;
        Ok(sc.i)
    }

    #[test]
    fn skip_value_passes_over_every_kind_of_value() {
        for (text, len) in [
            ("0", 1),
            ("-0.5e+10 ", 8),
            ("12345678901234567890123", 23),
            ("true,", 4),
            ("false]", 5),
            ("null", 4),
            ("\"a\\\"b\\\\c\\/\\u00e9\\n\"", 19),
            ("{}", 2),
            ("[]", 2),
            ("[ ]", 3),
            (
                "{ \"a\" : [1, {\"b\": [[], {}]}, \"}\"] , \"c\" : null } x",
                48,
            ),
            ("[[[[[[[[]]]]]]]]", 16),
            ("{\"k\":\"]}\"}", 10),
            ("\t\r\n [1,\n2] ", 10),
        ] {
            assert_eq!(skips(text), Ok(len), "{text}");
        }
    }

    #[test]
    fn skip_value_rejects_malformed_json() {
        for text in [
            "",
            "{",
            "[1,]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{1:2}",
            "[}",
            "{\"a\":1]",
            "\"abc",
            "\"a\\qb\"",
            "\"\\u12g4\"",
            "\"tab\there\"",
            "-",
            "1.",
            ".5",
            "1e",
            "tru",
            "nul",
            "+1",
            "[\"a\" \"b\"]",
        ] {
            assert!(skips(text).is_err(), "{text:?} was accepted");
        }
        // `01` is a complete `0` followed by a stray digit, which a message then rejects.
        assert_eq!(skips("01"), Ok(1));
        assert!(each_message(br#"{"id":01}"#, false, |_| true).is_err());
    }

    #[test]
    fn nesting_is_bounded_not_recursive() {
        let deep_ok = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(skips(&deep_ok), Ok(256));
        let too_deep = "[".repeat(129) + &"]".repeat(129);
        assert_eq!(skips(&too_deep), Err(JsonError("nesting too deep")));
        let mixed = "{\"a\":".repeat(60) + "[1]" + &"}".repeat(60);
        assert!(skips(&mixed).is_ok());
        let crossed = "{\"a\":[1}]";
        assert!(skips(crossed).is_err());
    }

    #[test]
    fn strings_decode_escapes_and_surrogates() {
        let text = r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00\ud800x""#;
        let mut sc = Scanner::new(text.as_bytes());
        let s = sc.string().unwrap();
        assert_eq!(s.decode(), "a\"b\\c/d\u{8}\u{c}\n\r\té€😀\u{FFFD}x");
        assert!(s.eq_str("a\"b\\c/d\u{8}\u{c}\n\r\té€😀\u{FFFD}x"));
        let plain = Scanner::new(b"\"caf\xc3\xa9\"").string().unwrap();
        assert!(!plain.escaped);
        assert!(plain.eq_str("café"));
        assert_eq!(plain.raw(), "café".as_bytes());
        let escaped_key = Scanner::new(br#""\u0069d""#).string().unwrap();
        assert!(escaped_key.eq_str("id"));
        assert!(!escaped_key.eq_str("i"));
    }

    #[test]
    fn numeric_and_string_ids_match_our_requests() {
        let m = one(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#, false).unwrap();
        assert_eq!(m.id, Id::Num(7));
        assert!(m.answers(7) && !m.answers(8));
        assert_eq!(m.id_raw, b"7");
        let m = one(r#"{"id":"7","error":{"code":-32601,"message":"x"}}"#, false).unwrap();
        assert!(m.answers(7));
        assert_eq!(m.id_raw, b"\"7\"");
        assert_eq!(m.reply, Reply::Error { code: Some(-32601) });
        let m = one(r#"{"id":"abc","error":{"code":1}}"#, false).unwrap();
        assert!(!m.answers(7));
        let m = one(
            r#"{"id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
            false,
        );
        assert!(m.unwrap().answers(3));
        let m = one(r#"{"id":null,"result":{}}"#, false).unwrap();
        assert!(!m.answers(3), "a null-id result is nobody's");
        for other in ["-1", "1.5", "1e2", "true", "{\"a\":1}", "[1]"] {
            let text = format!(r#"{{"id":{other},"result":{{}}}}"#);
            let m = one(&text, false).unwrap();
            assert_eq!(m.id, Id::Other, "{other}");
            assert_eq!(m.id_raw, other.as_bytes());
            assert!(!m.answers(1));
        }
        let huge = one(r#"{"id":99999999999999999999,"result":1}"#, false).unwrap();
        assert_eq!(huge.id, Id::Other);
    }

    #[test]
    fn initialize_result_fields_are_read_when_wanted() {
        let text = r#" {
            "jsonrpc" : "2.0",
            "result" : {
                "capabilities" : {"tools": {"listChanged": true}, "x": [1, 2, {"name": "no"}]},
                "serverInfo" : {"version": "1.0", "name": "replica-\u0033", "extra": {"name": "nope"}},
                "protocolVersion" : "2025-06-18",
                "instructions" : "say \"hi\""
            },
            "id" : 0
        } "#;
        let m = one(text, true).unwrap();
        assert_eq!(m.id, Id::Num(0));
        let Reply::Result {
            server_name: Some(name),
            protocol_version: Some(version),
        } = m.reply
        else {
            panic!("{:?}", m.reply)
        };
        assert_eq!(name.decode(), "replica-3");
        assert_eq!(version.decode(), "2025-06-18");
        let m = one(text, false).unwrap();
        assert_eq!(
            m.reply,
            Reply::Result {
                server_name: None,
                protocol_version: None
            }
        );
    }

    #[test]
    fn requests_notifications_and_error_codes() {
        let m = one(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"p":1}}"#,
            false,
        )
        .unwrap();
        assert!(m.method.unwrap().eq_str("notifications/progress"));
        assert!(!m.is_request());
        let m = one(r#"{"jsonrpc":"2.0","id":"s-1","method":"ping"}"#, false).unwrap();
        assert!(m.is_request());
        assert_eq!(m.id_raw, br#""s-1""#);
        for (error, code) in [
            (
                r#"{"code":-32005,"message":"not initialized"}"#,
                Some(-32005),
            ),
            (r#"{"message":"m","code":42}"#, Some(42)),
            (r#"{"code":-32000.5}"#, None),
            (r#"{"code":"x"}"#, None),
            (r#"{"message":"no code"}"#, None),
            (r#""a string""#, None),
            (r#"{"code":-9223372036854775808}"#, Some(i64::MIN)),
            (r#"{"code":-9223372036854775809}"#, None),
        ] {
            let text = format!(r#"{{"id":1,"error":{error}}}"#);
            assert_eq!(
                one(&text, false).unwrap().reply,
                Reply::Error { code },
                "{error}"
            );
        }
    }

    #[test]
    fn batches_yield_each_message() {
        let text = r#"[{"method":"a"},{"id":2,"result":"ok"} , {"id":3,"error":{"code":-1}}]"#;
        let mut ids = Vec::new();
        each_message(text.as_bytes(), false, |m| {
            ids.push(m.id);
            true
        })
        .unwrap();
        assert_eq!(ids, vec![Id::Absent, Id::Num(2), Id::Num(3)]);
        assert!(each_message(b"[]", false, |_| true).is_ok());
        assert!(each_message(b"[1]", false, |_| true).is_err());
        assert!(each_message(b"[{},]", false, |_| true).is_err());
    }

    #[test]
    fn malformed_messages_are_errors() {
        for text in [
            "",
            "   ",
            "null",
            "\"text\"",
            "{\"id\":1,\"result\":{}} trailing",
            "{\"id\":1,\"result\":{}",
            "{\"method\":1}",
            "Not Found: Session not found",
            "{\"id\":1,\"result\":{\"serverInfo\":{\"name\":\"x\"}}",
        ] {
            assert!(
                each_message(text.as_bytes(), true, |_| true).is_err(),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"{}[]\",:\\u0123456789abcdefnulltrue-+.eE \n\t\x01\xff";
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = each_message(&text, true, |m| {
                let _ = m.answers(1);
                true
            });
            let _ = Scanner::new(&text).skip_value();
        }
    }
}
