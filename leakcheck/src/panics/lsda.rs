//! A function's exception table (its LSDA, `.gcc_except_table`), read as the personality
//! routine reads it for a Rust panic: whether the call at an address has a landing pad that
//! catches (`catch_unwind`), only cleans up (drops), or is not covered. The same answer the
//! unwinder's search phase will get, known before it runs.
//!
//! Rust's and C++'s tables share this format. Rust catches with a catch-all handler only
//! (a null type), and its personality reads the first action; C++'s walks the whole chain,
//! and matches a foreign exception such as a panic only with `catch (...)`, never with a
//! typed handler. So a chain is read as C++'s personality reads it for a panic: a catch-all
//! catches, a typed handler does not, and an exception specification (C++'s, which Rust
//! never writes) is left unknown.

/// What the landing pad of a call does with an unwinding panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// No landing pad: unwinding goes through the frame.
    None,
    /// Drops run, then unwinding goes on.
    Cleanup,
    /// The panic is caught here (`catch_unwind`, C++'s `catch (...)`).
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
        // The type table, which grows down from its base: where a handler's type is.
        let types = match reader.u8() {
            OMIT => None,
            encoding => {
                let offset = usize::try_from(reader.uleb128()).ok()?;
                if offset > MAX_TABLE {
                    return None;
                }
                Some(Types {
                    base: reader.0.wrapping_add(offset),
                    entry_size: entry_size(encoding)?,
                })
            }
        };
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
                return chain(action_table, action_entry - 1, types);
            }
        }
    }
    // Not in the table: the unwinder would terminate here (a `nounwind` call); nothing
    // catches.
    Some(Action::None)
}

/// Where a table's handler types are: entry `n` (from 1) ends `n` entries below `base`.
#[derive(Clone, Copy)]
struct Types {
    base: *const u8,
    entry_size: usize,
}

/// The size of a type-table entry in `encoding`; `None` for a variable-length one, which
/// no compiler writes there.
fn entry_size(encoding: u8) -> Option<usize> {
    match encoding & 0x0f {
        0x00 => Some(size_of::<usize>()),
        0x02 | 0x0a => Some(2),
        0x03 | 0x0b => Some(4),
        0x04 | 0x0c => Some(8),
        _ => None,
    }
}

/// The longest action chain followed: a longer one is a table misread (a loop).
const MAX_CHAIN: usize = 64;

/// The action chain that starts `first` bytes into the action table at `actions`: the
/// first handler that catches a panic (a null type: a catch-all), or a cleanup when none
/// does. Records and types are read only within `MAX_TABLE` bytes of the action table, and
/// types below their base only.
///
/// # Safety
///
/// As `action`'s: the action table and the types are the function's table's.
unsafe fn chain(actions: *const u8, first: usize, types: Option<Types>) -> Option<Action> {
    let mut record = actions.wrapping_add(first);
    for _ in 0..MAX_CHAIN {
        let inside = (record as usize)
            .checked_sub(actions as usize)
            .is_some_and(|offset| offset < MAX_TABLE);
        if !inside {
            return None;
        }
        let mut reader = Reader(record);
        // SAFETY: the record is inside the table (the caller's contract).
        let (filter, field, displacement) = unsafe {
            let filter = reader.sleb128();
            let field = reader.0;
            (filter, field, reader.sleb128())
        };
        match filter {
            // A cleanup: drops run, and the chain goes on.
            0 => {}
            // An exception specification: C++'s only, and not read here.
            ..0 => return None,
            index => {
                let types = types?;
                let index = usize::try_from(index)
                    .ok()
                    .filter(|&index| index <= MAX_TABLE)?;
                let entry = types
                    .base
                    .wrapping_sub(index.wrapping_mul(types.entry_size));
                if (entry as usize) < (actions as usize) || entry >= types.base {
                    return None;
                }
                // SAFETY: the handler's type is inside the table (the caller's contract).
                // A null type is all zeros whatever the entry's encoding.
                let catch_all = unsafe { Reader(entry).is_zero(types.entry_size) };
                if catch_all {
                    return Some(Action::Catch);
                }
                // A typed handler (C++'s): a panic goes through it.
            }
        }
        if displacement == 0 {
            return Some(Action::Cleanup);
        }
        // The next record is counted from the displacement's own field.
        record = field.wrapping_offset(displacement as isize);
    }
    None
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

    /// Whether the next `length` bytes are all zero.
    unsafe fn is_zero(&mut self, length: usize) -> bool {
        // SAFETY: as above.
        (0..length).all(|_| unsafe { self.u8() } == 0)
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
            0x9b, 0x14, // type table: sdata4 pcrel indirect, its base 20 bytes on
            0x01, // call sites: uleb128
            12,   // call-site table length
            // [0x10, 0x18): landing pad 0x40, no action: a cleanup
            0x10, 0x08, 0x40, 0x00, // [0x20, 0x28): landing pad 0x50, action 1: a catch
            0x20, 0x08, 0x50, 0x01, // [0x30, 0x38): no landing pad
            0x30, 0x08, 0x00, 0x00, // action 1: type index 1 (catch-all), no next
            0x01, 0x00, // type 1: null (a catch-all), then the type table's base
            0x00, 0x00, 0x00, 0x00,
        ]
    }

    /// A table as a C++ compiler writes one, with action chains: typed handlers, a
    /// catch-all after them, an exception specification, and (misread) a chain that loops.
    fn cpp_table() -> Vec<u8> {
        vec![
            0xff, // landing pads relative to the function's start
            0x03, 42,   // type table: udata4, its base 42 bytes on
            0x01, // call sites: uleb128
            20,   // call-site table length
            // [0x10, 0x18): action 1 (A); [0x20, 0x28): action 5 (C); [0x30, 0x38):
            // action 7 (D); [0x40, 0x48): action 9 (E); [0x50, 0x58): action 11 (F)
            0x10, 0x08, 0x40, 1, 0x20, 0x08, 0x40, 5, 0x30, 0x08, 0x40, 7, 0x40, 0x08, 0x40, 9,
            0x50, 0x08, 0x40, 11,
            // A: type 2 (typed), next B; B: type 1 (catch-all), end; C: type 2, end;
            // D: exception specification -1, end; E: cleanup, next C (-5); F: type 2, next F.
            0x02, 0x01, 0x01, 0x00, 0x02, 0x00, 0x7f, 0x00, 0x00, 0x7b, 0x02, 0x7f,
            // type 2: a type's address; type 1: null; then the base
            0x10, 0x20, 0x30, 0x40, 0x00, 0x00, 0x00, 0x00,
        ]
    }

    #[test]
    fn chains_read_as_a_panic_meets_them_typed_handlers_let_it_through() {
        let table = cpp_table();
        let start = 0x1000;
        // SAFETY: a whole table, for the function at `start`.
        let at = |ip| unsafe { action(table.as_ptr(), start, start + ip) };
        assert_eq!(
            at(0x12),
            Some(Action::Catch),
            "a catch-all after a typed handler"
        );
        assert_eq!(at(0x22), Some(Action::Cleanup), "typed handlers only");
        assert_eq!(at(0x32), None, "an exception specification");
        assert_eq!(
            at(0x42),
            Some(Action::Cleanup),
            "a cleanup, then a typed handler"
        );
        assert_eq!(at(0x52), None, "a chain that loops");
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
