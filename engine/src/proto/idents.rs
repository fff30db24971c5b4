//! The few strings a session keeps (replica id, HTTP session id, sticky cookies, negotiated
//! protocol version), packed into one heap block that exists only while one of them is set.

/// Longest identifier kept; a longer one is refused.
pub const MAX_IDENT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Replica = 0,
    SessionId = 1,
    /// `name=value` pairs joined by `"; "`, ready for a `Cookie` header.
    Cookie = 2,
    /// The protocol version the server chose, when it differs from the one asked for.
    Version = 3,
}

/// Four strings in one boxed `str`: the first three lengths are stored, the last is the rest.
#[derive(Debug, Default)]
pub struct Idents {
    text: Option<Box<str>>,
    lens: [u16; 3],
}

impl Idents {
    fn range(&self, field: Field) -> std::ops::Range<usize> {
        let total = self.text.as_deref().map_or(0, str::len);
        let i = field as usize;
        let start: usize = self.lens[..i].iter().map(|&l| usize::from(l)).sum();
        let end = if i < 3 {
            start + usize::from(self.lens[i])
        } else {
            total
        };
        start..end
    }

    /// The value, or `None` when unset (empty).
    pub fn get(&self, field: Field) -> Option<&str> {
        let text = self.text.as_deref()?;
        let value = &text[self.range(field)];
        (!value.is_empty()).then_some(value)
    }

    /// Sets a value (empty clears it). Nothing is allocated when the value is unchanged.
    /// Returns false, changing nothing, for a value longer than [`MAX_IDENT`].
    pub fn set(&mut self, field: Field, value: &str) -> bool {
        if value.len() > MAX_IDENT {
            return false;
        }
        if self.get(field).unwrap_or("") == value {
            return true;
        }
        let old = self.text.take().unwrap_or_default();
        let mut parts: [&str; 4] = [""; 4];
        let mut at = 0;
        for (i, part) in parts.iter_mut().enumerate() {
            let len = if i < 3 {
                usize::from(self.lens[i])
            } else {
                old.len() - at
            };
            *part = &old[at..at + len];
            at += len;
        }
        parts[field as usize] = value;
        let joined: String = parts.concat();
        for (len, part) in self.lens.iter_mut().zip(parts) {
            *len = part.len() as u16;
        }
        self.text = (!joined.is_empty()).then(|| joined.into_boxed_str());
        true
    }

    /// Applies one `Set-Cookie` header value: its `name=value` pair replaces a cookie of
    /// that name or joins the jar. Attributes (Path, Max-Age, ...) are ignored.
    pub fn apply_set_cookie(&mut self, header: &[u8]) {
        let Ok(header) = std::str::from_utf8(header) else {
            return;
        };
        let pair = header.split(';').next().unwrap_or("").trim();
        let Some((name, _)) = pair.split_once('=') else {
            return;
        };
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let jar = self.get(Field::Cookie).unwrap_or("");
        let mut found = false;
        let mut changed = false;
        for existing in jar.split("; ").filter(|p| !p.is_empty()) {
            if existing.split_once('=').map(|(n, _)| n) == Some(name) {
                found = true;
                changed = existing != pair;
            }
        }
        if found && !changed {
            return;
        }
        let mut new_jar = String::with_capacity(jar.len() + pair.len() + 2);
        for existing in jar.split("; ").filter(|p| !p.is_empty()) {
            let same_name = existing.split_once('=').map(|(n, _)| n) == Some(name);
            if !new_jar.is_empty() {
                new_jar.push_str("; ");
            }
            new_jar.push_str(if same_name { pair } else { existing });
        }
        if !found {
            if !new_jar.is_empty() {
                new_jar.push_str("; ");
            }
            new_jar.push_str(pair);
        }
        self.set(Field::Cookie, &new_jar);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Field; 4] = [
        Field::Replica,
        Field::SessionId,
        Field::Cookie,
        Field::Version,
    ];

    #[test]
    fn fields_are_independent() {
        let mut ids = Idents::default();
        assert!(ALL.iter().all(|&f| ids.get(f).is_none()));
        assert!(ids.text.is_none(), "nothing set, nothing allocated");
        ids.set(Field::Cookie, "a=b");
        ids.set(Field::Version, "2025-03-26");
        ids.set(Field::Replica, "r-1");
        ids.set(Field::SessionId, "sid");
        assert_eq!(
            ALL.map(|f| ids.get(f)),
            [Some("r-1"), Some("sid"), Some("a=b"), Some("2025-03-26")]
        );
        ids.set(Field::SessionId, "");
        ids.set(Field::Replica, "replica-22");
        assert_eq!(
            ALL.map(|f| ids.get(f)),
            [Some("replica-22"), None, Some("a=b"), Some("2025-03-26")]
        );
        for f in ALL {
            ids.set(f, "");
        }
        assert!(ids.text.is_none());
    }

    #[test]
    fn unchanged_values_do_not_reallocate_and_long_ones_are_refused() {
        let mut ids = Idents::default();
        ids.set(Field::Replica, "r");
        let before = ids.text.as_deref().unwrap().as_ptr();
        assert!(ids.set(Field::Replica, "r"));
        assert_eq!(ids.text.as_deref().unwrap().as_ptr(), before);
        assert!(!ids.set(Field::SessionId, &"x".repeat(MAX_IDENT + 1)));
        assert_eq!(ids.get(Field::SessionId), None);
    }

    #[test]
    fn set_cookie_pairs_form_a_jar() {
        let mut ids = Idents::default();
        ids.apply_set_cookie(b"lb_sticky=http://10.0.1.5:8080; Path=/; HttpOnly");
        assert_eq!(
            ids.get(Field::Cookie),
            Some("lb_sticky=http://10.0.1.5:8080")
        );
        ids.apply_set_cookie(b"other=1");
        ids.apply_set_cookie(b"lb_sticky=http://10.0.1.6:8080; Path=/");
        assert_eq!(
            ids.get(Field::Cookie),
            Some("lb_sticky=http://10.0.1.6:8080; other=1")
        );
        let before = ids.text.as_deref().unwrap().as_ptr();
        ids.apply_set_cookie(b"other=1; Max-Age=100");
        assert_eq!(ids.text.as_deref().unwrap().as_ptr(), before);
        for junk in [&b"novalue"[..], b"=x", b"", b"\xff=1"] {
            ids.apply_set_cookie(junk);
        }
        assert_eq!(
            ids.get(Field::Cookie),
            Some("lb_sticky=http://10.0.1.6:8080; other=1")
        );
    }
}
