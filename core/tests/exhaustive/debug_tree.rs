//! Reads the pretty `Debug` output (`{:#?}`) of a value back into a tree.
//!
//! The explorer needs the whole state of a `Buffer`, including what no getter shows (ticket
//! deadlines, the episode, the last reparent). The only window onto all of it that the
//! crate offers without a test-only API is its derived `Debug`, which prints every field.
//! Reading that output as a tree, rather than as text, means a field added to the core
//! later is picked up (and kept, which is always sound) without any change here.
//!
//! The grammar is the one `core::fmt`'s builders print: `Name { field: value, .. }`,
//! `Name(value, ..)`, `(value, ..)`, `{ key: value, .. }` (maps), `{ value, .. }` (sets),
//! `[value, ..]` (lists), strings, and
//! anything else as an atom (numbers, unit variants, `Timestamp`'s `12.000500000s`,
//! `Ticket`'s `#3@0`).

use std::fmt;

/// One value of a `Debug` print.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A number, a unit variant, a string with its quotes, or any other leaf.
    Atom(String),
    /// `Name { field: value, .. }`.
    Struct(String, Vec<(String, Value)>),
    /// `Name(value, ..)`, or a tuple `(value, ..)` with an empty name.
    Tuple(String, Vec<Value>),
    /// `{ key: value, .. }`.
    Map(Vec<(Value, Value)>),
    /// `{ value, .. }`.
    Set(Vec<Value>),
    /// `[value, ..]`.
    List(Vec<Value>),
}

impl Value {
    /// The field `name` of a struct.
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(_, fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `Some(x)` as `Some(Some(x))`, `None` as `Some(None)`, anything else as `None`.
    pub(crate) fn option(&self) -> Option<Option<&Value>> {
        match self {
            Value::Atom(a) if a == "None" => Some(None),
            Value::Tuple(n, items) if n == "Some" && items.len() == 1 => Some(Some(&items[0])),
            _ => None,
        }
    }
}

/// Prints compactly, in the same grammar, so that equal trees print equally.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Atom(a) => f.write_str(a),
            Value::Struct(name, fields) => {
                write!(f, "{name}{{")?;
                for (n, v) in fields {
                    if n == ".." {
                        f.write_str("..")?;
                    } else {
                        write!(f, "{n}:{v:?},")?;
                    }
                }
                f.write_str("}")
            }
            Value::Tuple(name, items) => {
                write!(f, "{name}(")?;
                for v in items {
                    write!(f, "{v:?},")?;
                }
                f.write_str(")")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (k, v) in entries {
                    write!(f, "{k:?}:{v:?},")?;
                }
                f.write_str("}")
            }
            Value::List(items) => {
                f.write_str("[")?;
                for v in items {
                    write!(f, "{v:?},")?;
                }
                f.write_str("]")
            }
            Value::Set(items) => {
                f.write_str("{")?;
                for v in items {
                    write!(f, "{v:?},")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Parses a whole `Debug` print.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(p.error("trailing text"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let end = (self.at + 40).min(self.s.len());
        format!(
            "{what} at byte {}: {:?}",
            self.at,
            String::from_utf8_lossy(&self.s[self.at..end])
        )
    }

    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {:?}", c as char)))
        }
    }

    /// Items separated by commas (a trailing one allowed) up to `close`.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(out);
            }
            out.push(item(self)?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err(self.error("expected a comma or a closing bracket")),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err(self.error("unexpected end")),
            Some(b'[') => {
                self.at += 1;
                Ok(Value::List(self.items(b']', Self::value)?))
            }
            Some(b'{') => {
                self.at += 1;
                let entries = self.items(b'}', |p| {
                    let k = p.value()?;
                    if p.peek() != Some(b':') {
                        return Ok((k, None));
                    }
                    p.at += 1;
                    Ok((k, Some(p.value()?)))
                })?;
                if entries.iter().all(|(_, v)| v.is_none()) && !entries.is_empty() {
                    return Ok(Value::Set(entries.into_iter().map(|(k, _)| k).collect()));
                }
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        v.map(|v| (k, v))
                            .ok_or_else(|| self.error("a set in a map"))
                    })
                    .collect::<Result<_, _>>()
                    .map(Value::Map)
            }
            Some(b'"') => self.string(),
            Some(b'(') => {
                self.at += 1;
                Ok(Value::Tuple(String::new(), self.items(b')', Self::value)?))
            }
            Some(_) => {
                let atom = self.atom()?;
                // A tuple's parenthesis follows its name directly; a struct's brace after a space.
                if self.s.get(self.at) == Some(&b'(') {
                    self.at += 1;
                    return Ok(Value::Tuple(atom, self.items(b')', Self::value)?));
                }
                if self.peek() == Some(b'{') {
                    self.at += 1;
                    let fields = self.items(b'}', |p| {
                        let name = p.atom()?;
                        if name == ".." {
                            return Ok((name, Value::Atom(String::new())));
                        }
                        p.expect(b':')?;
                        Ok((name, p.value()?))
                    })?;
                    return Ok(Value::Struct(atom, fields));
                }
                Ok(Value::Atom(atom))
            }
        }
    }

    fn atom(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.at;
        while let Some(&c) = self.s.get(self.at) {
            if c.is_ascii_whitespace() || b",:{}[]()\"".contains(&c) {
                break;
            }
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("expected a value"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn string(&mut self) -> Result<Value, String> {
        let start = self.at;
        self.at += 1;
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            match c {
                b'\\' => self.at += 1,
                b'"' => {
                    let text = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
                    return Ok(Value::Atom(text));
                }
                _ => {}
            }
        }
        Err(self.error("unterminated string"))
    }
}
