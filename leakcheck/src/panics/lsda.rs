//! A function's exception table (its LSDA, `.gcc_except_table`), read as Rust's own
//! personality routine reads it: whether the call at an address has a landing pad that
//! catches (`catch_unwind`), only cleans up (drops), or is not covered. The same answer the
//! unwinder's search phase will get from the personality routine, known before it runs.

/// What the landing pad of a call does with an unwinding panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// No landing pad: unwinding goes through the frame.
    None,
    /// Drops run, then unwinding goes on.
    Cleanup,
    /// The panic is caught here (`catch_unwind`, or a filter).
    Catch,
}

const OMIT: u8 = 0xff;

/// The longest call-site table read: a longer one is a table misread (LLVM's are a few
/// hundred bytes), not one to walk.
const MAX_TABLE: usize = 1 << 20;

/// The action of the call at `ip` (an address inside the call instruction, a return address
/// less one) in the function that starts at `start`, whose table is `lsda`; `None` when the
/// table uses an encoding this reader does not know, or does not hold together. It cannot
/// panic (it runs inside the unwinder's callback): its sums wrap, as the unwinder's own
/// reader's do, and it reads no further than the table's header says.
///
/// # Safety
///
/// `lsda` is the exception table of the function that starts at `start` (what the unwinder
/// gives for the frame), readable up to its end.
pub(crate) unsafe fn action(lsda: *const u8, start: usize, ip: usize) -> Option<Action> {
    if lsda.is_null() {
        return Some(Action::None);
    }
    let mut reader = Reader(lsda);
    // SAFETY: every read below stays inside the table, whose layout the header gives.
    unsafe {
        // Where landing pads are counted from: whether a call has one is all that is asked.
        let lpstart_encoding = reader.u8();
        if lpstart_encoding != OMIT {
            reader.encoded(lpstart_encoding)?;
        }
        if reader.u8() != OMIT {
            reader.uleb128();
        }
        let call_site_encoding = reader.u8();
        let table_length = usize::try_from(reader.uleb128()).ok()?;
        if table_length > MAX_TABLE {
            return None;
        }
        let action_table = reader.0.wrapping_add(table_length);
        while reader.0 < action_table {
            let site_start = reader.offset(call_site_encoding)?;
            let site_length = reader.offset(call_site_encoding)?;
            let landing_pad = reader.offset(call_site_encoding)?;
            let action_entry = usize::try_from(reader.uleb128()).ok()?;
            let site = start.wrapping_add(site_start);
            // Call sites are sorted by address.
            if ip < site {
                break;
            }
            if ip < site.wrapping_add(site_length) {
                if landing_pad == 0 {
                    return Some(Action::None);
                }
                if action_entry == 0 {
                    return Some(Action::Cleanup);
                }
                // An action record past the longest table is a misread.
                if action_entry > MAX_TABLE {
                    return None;
                }
                let mut record = Reader(action_table.wrapping_add(action_entry - 1));
                return Some(match record.sleb128() {
                    0 => Action::Cleanup,
                    _ => Action::Catch,
                });
            }
        }
    }
    // Not in the table: the unwinder would terminate here (a `nounwind` call); nothing
    // catches.
    Some(Action::None)
}

struct Reader(*const u8);

impl Reader {
    unsafe fn u8(&mut self) -> u8 {
        // SAFETY: the caller reads inside the table.
        unsafe {
            let byte = *self.0;
            self.0 = self.0.add(1);
            byte
        }
    }

    unsafe fn uleb128(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            // SAFETY: as above.
            let byte = unsafe { self.u8() };
            if shift < 64 {
                value |= u64::from(byte & 0x7f) << shift;
            }
            shift = shift.saturating_add(7);
            if byte & 0x80 == 0 {
                return value;
            }
        }
    }

    unsafe fn sleb128(&mut self) -> i64 {
        let mut value = 0i64;
        let mut shift = 0u32;
        let mut byte;
        loop {
            // SAFETY: as above.
            byte = unsafe { self.u8() };
            if shift < 64 {
                value |= i64::from(byte & 0x7f) << shift;
            }
            shift = shift.saturating_add(7);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if shift < 64 && byte & 0x40 != 0 {
            value |= -1i64 << shift;
        }
        value
    }

    unsafe fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0; N];
        for byte in &mut bytes {
            // SAFETY: as above.
            *byte = unsafe { self.u8() };
        }
        bytes
    }

    /// A value in the format of `encoding`'s low bits, without its application: the
    /// call-site table's offsets.
    unsafe fn offset(&mut self, encoding: u8) -> Option<usize> {
        // SAFETY: as above.
        let value = unsafe {
            match encoding & 0x0f {
                0x00 => usize::from_ne_bytes(self.fixed()),
                0x01 => self.uleb128() as usize,
                0x02 | 0x0a => u16::from_ne_bytes(self.fixed()) as usize,
                0x03 | 0x0b => u32::from_ne_bytes(self.fixed()) as usize,
                0x04 | 0x0c => u64::from_ne_bytes(self.fixed()) as usize,
                0x09 => self.sleb128() as usize,
                _ => return None,
            }
        };
        Some(value)
    }

    /// A pointer in `encoding`: its format, and absolute or relative to where it is read.
    unsafe fn encoded(&mut self, encoding: u8) -> Option<usize> {
        let at = self.0 as usize;
        // SAFETY: as above.
        let value = unsafe { self.offset(encoding)? };
        match encoding & 0x70 {
            0x00 => Some(value),
            0x10 => Some(at.wrapping_add(value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as LLVM writes one for a function with three calls: one a drop covers, one
    /// inside `catch_unwind`, one with no landing pad.
    fn table() -> Vec<u8> {
        vec![
            0xff, // landing pads relative to the function's start
            0x9b, 0x0d, // type table: sdata4 pcrel indirect, at offset 13
            0x01, // call sites: uleb128
            12,   // call-site table length
            // [0x10, 0x18): landing pad 0x40, no action: a cleanup
            0x10, 0x08, 0x40, 0x00, // [0x20, 0x28): landing pad 0x50, action 1: a catch
            0x20, 0x08, 0x50, 0x01, // [0x30, 0x38): no landing pad
            0x30, 0x08, 0x00, 0x00, // action 1: type index 1 (catch-all), no next
            0x01, 0x00,
        ]
    }

    /// Tables that do not hold together, as a misread (another language's format, a
    /// stale pointer) gives them: each reads as unknown or as no landing pad, and nothing
    /// panics, in a build with overflow checks.
    #[test]
    fn hostile_tables_never_panic() {
        let start = usize::MAX - 0x10;
        let mut huge_site = vec![0xff, 0xff, 0x00, 24];
        // A call site starting 8 bytes before the end of the address space, 16 long.
        huge_site.extend((usize::MAX - 8).to_ne_bytes());
        huge_site.extend(16usize.to_ne_bytes());
        huge_site.extend(1usize.to_ne_bytes());
        huge_site.push(0);
        let tables: [(&str, Vec<u8>); 5] = [
            ("a site past the end of the address space", huge_site),
            // A call-site table of 2^63 bytes.
            (
                "a huge table length",
                vec![
                    0xff, 0xff, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
                ],
            ),
            // An action entry of 2^40, pointing far past the table.
            (
                "a far action entry",
                vec![
                    0xff, 0xff, 0x01, 8, 0x00, 0x7f, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
                ],
            ),
            // An unknown call-site encoding.
            ("an unknown encoding", vec![0xff, 0xff, 0x0e, 4, 1, 2, 3, 4]),
            // A LEB128 of 20 bytes: longer than any 64-bit value.
            (
                "an endless leb128",
                [vec![0xff, 0xff, 0x01], vec![0x80; 19], vec![0x00, 0x00]].concat(),
            ),
        ];
        for (what, table) in tables {
            // SAFETY: every read stays inside `table`, whatever it claims (the reader
            // bounds the call-site walk by the claimed length, which each table keeps
            // inside itself or is refused).
            let read = std::panic::catch_unwind(|| unsafe {
                action(table.as_ptr(), start, start.wrapping_add(4))
            });
            assert!(read.is_ok(), "{what}: the reader panicked");
            assert_ne!(read.unwrap(), Some(Action::Catch), "{what}");
        }
    }

    #[test]
    fn calls_read_as_rust_s_personality_reads_them() {
        let table = table();
        let start = 0x1000;
        // SAFETY: a whole table, for the function at `start`.
        let at = |ip| unsafe { action(table.as_ptr(), start, start + ip) };
        assert_eq!(at(0x12), Some(Action::Cleanup));
        assert_eq!(at(0x24), Some(Action::Catch));
        assert_eq!(at(0x30), Some(Action::None));
        assert_eq!(at(0x08), Some(Action::None));
        assert_eq!(at(0x99), Some(Action::None));
        assert_eq!(
            // SAFETY: a null table is no landing pad.
            unsafe { action(std::ptr::null(), start, start) },
            Some(Action::None)
        );
    }
}
