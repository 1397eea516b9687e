//! A JSON writer for the records: strings escaped as RFC 8259 says, integers, booleans,
//! `null`, arrays and objects, written in order into a `String`. Small on purpose (see the
//! crate's docs for why not serde_json); the round-trip tests in `record` read its output
//! back with serde_json.

use std::fmt::Write;

/// A value that can write itself as JSON.
pub(crate) trait ToJson {
    fn write_json(&self, out: &mut String);
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        out.push('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if c < ' ' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        self.as_str().write_json(out);
    }
}

macro_rules! numbers {
    ($($number:ty),*) => {$(
        impl ToJson for $number {
            fn write_json(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

numbers!(u32, u64, i32, i64, usize);

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (at, item) in self.iter().enumerate() {
            if at > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

/// An object being written: `{`, each field, then `}` from [`Object::end`] (a forgotten
/// `end` is an unused value, which the compiler points out).
#[must_use = "an object is closed by `end`"]
pub(crate) struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    pub(crate) fn start(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes `"name":value`.
    pub(crate) fn field(mut self, name: &str, value: &(impl ToJson + ?Sized)) -> Object<'a> {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        name.write_json(self.out);
        self.out.push(':');
        value.write_json(self.out);
        self
    }

    /// Writes the field only when it has a value: for fields a reader finds absent.
    pub(crate) fn field_if_some<T: ToJson>(self, name: &str, value: &Option<T>) -> Object<'a> {
        match value {
            Some(value) => self.field(name, value),
            None => self,
        }
    }

    pub(crate) fn end(self) {
        self.out.push('}');
    }
}

/// `value` as a JSON text.
pub(crate) fn to_string(value: &(impl ToJson + ?Sized)) -> String {
    let mut out = String::new();
    value.write_json(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_reads_them() {
        let tricky = "we\"ird\\name\n\t\r\u{8}\u{c}\u{1}\u{1f}-é-✓-\u{7f}";
        let written = to_string(tricky);
        let read: String = serde_json::from_str(&written).unwrap();
        assert_eq!(read, tricky);
        assert_eq!(to_string("a\u{1}"), "\"a\\u0001\"");
    }

    #[test]
    fn objects_arrays_and_nulls() {
        let mut out = String::new();
        Object::start(&mut out)
            .field("n", &7u64)
            .field("none", &None::<u32>)
            .field("list", &vec![1u32, 2])
            .field_if_some("absent", &None::<bool>)
            .field("yes", &true)
            .end();
        assert_eq!(out, r#"{"n":7,"none":null,"list":[1,2],"yes":true}"#);
    }
}
