//! The marker a child inherits in its environment, `LEAKCHECK_SPAWNED_BY=<pid>.<start>.<key>`:
//! the test process that started it (its pid and start time, since pids are reused) and the
//! record of the spawn. A descendant keeps it when its parent exits and it is reparented
//! away from the test process, so the check still finds it and blames the spawn line it
//! came from. A test binary started by a test puts its own in place of the one it
//! inherited; a process that runs no leak check adds none (its children start exactly as
//! they would without leakcheck); `env_clear()` drops it; `LEAKCHECK_MARK_CHILDREN=0` turns
//! it off.

use std::ffi::{CString, c_char};

/// The variable's name (the environment's reader knows it: not an unknown variable).
pub(crate) const VAR: &str = crate::config::SPAWNED_BY_VAR;

/// Who started a process, as its marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The test process.
    pub(crate) pid: u32,
    /// Its start time, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub(crate) start_time: u64,
    /// The spawn record's key.
    pub(crate) key: u64,
}

impl Marker {
    /// `LEAKCHECK_SPAWNED_BY=<pid>.<start>.<key>`, as an environment entry.
    pub(crate) fn entry(self) -> CString {
        let Marker {
            pid,
            start_time,
            key,
        } = self;
        let mut entry = Vec::with_capacity(VAR.len() + 48);
        entry.extend_from_slice(VAR.as_bytes());
        entry.push(b'=');
        for (at, number) in [u64::from(pid), start_time, key].into_iter().enumerate() {
            if at > 0 {
                entry.push(b'.');
            }
            push_digits(&mut entry, number);
        }
        CString::new(entry).expect("digits and dots hold no NUL")
    }

    /// The marker in an environment entry (`NAME=value`), if it is one.
    pub(crate) fn from_entry(entry: &[u8]) -> Option<Marker> {
        let value = entry.strip_prefix(VAR.as_bytes())?.strip_prefix(b"=")?;
        let mut fields = std::str::from_utf8(value).ok()?.split('.');
        let marker = Marker {
            pid: fields.next()?.parse().ok()?,
            start_time: fields.next()?.parse().ok()?,
            key: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(marker)
    }

    /// The marker in a whole environment as `/proc/<pid>/environ` holds it (entries each
    /// ended by a NUL).
    pub(crate) fn in_environ(environ: &[u8]) -> Option<Marker> {
        environ
            .split(|&byte| byte == 0)
            .find_map(Marker::from_entry)
    }
}

/// `number` in decimal, without the formatting machinery (this runs on every spawn).
fn push_digits(out: &mut Vec<u8>, mut number: u64) {
    let start = out.len();
    loop {
        out.push(b'0' + (number % 10) as u8);
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out[start..].reverse();
}

/// Whether an environment entry (a C string's bytes) is a marker, of any process.
#[cfg(test)]
pub(crate) fn is_marker_entry(entry: &[u8]) -> bool {
    entry
        .strip_prefix(VAR.as_bytes())
        .is_some_and(|rest| rest.first() == Some(&b'='))
}

/// [`is_marker_entry`] of a C string, read only as far as it matches (no `strlen` of each
/// entry of an environment): no allocation, for a fork child too.
///
/// # Safety
///
/// `entry` is a C string.
pub(crate) unsafe fn is_marker_c_entry(entry: *const c_char) -> bool {
    for (at, &expected) in VAR.as_bytes().iter().chain(b"=").enumerate() {
        // SAFETY: read up to the first byte that differs, a NUL at the latest.
        if unsafe { *entry.add(at) } as u8 != expected {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_from_its_entry_and_from_an_environment() {
        let marker = Marker {
            pid: 4242,
            start_time: 987_654,
            key: 7,
        };
        let entry = marker.entry();
        assert_eq!(
            entry.to_str().unwrap(),
            "LEAKCHECK_SPAWNED_BY=4242.987654.7"
        );
        assert_eq!(Marker::from_entry(entry.as_bytes()), Some(marker));
        let environ = b"PATH=/bin\0LEAKCHECK_SPAWNED_BY=4242.987654.7\0HOME=/root\0";
        assert_eq!(Marker::in_environ(environ), Some(marker));
        assert!(is_marker_entry(entry.as_bytes()));
        // SAFETY: C strings.
        unsafe {
            assert!(is_marker_c_entry(entry.as_ptr()));
            assert!(!is_marker_c_entry(c"LEAKCHECK_SPAWNED".as_ptr()));
            assert!(!is_marker_c_entry(c"LEAKCHECK_SPAWNED_BYE=1".as_ptr()));
            assert!(!is_marker_c_entry(c"".as_ptr()));
        }
    }

    #[test]
    fn anything_else_is_no_marker() {
        for entry in [
            &b"LEAKCHECK_SPAWNED_BY_NOT=1.2.3"[..],
            b"LEAKCHECK_SPAWNED_BY=1.2",
            b"LEAKCHECK_SPAWNED_BY=1.2.3.4",
            b"LEAKCHECK_SPAWNED_BY=a.b.c",
            b"PATH=/bin",
        ] {
            assert_eq!(Marker::from_entry(entry), None, "{entry:?}");
        }
        assert!(!is_marker_entry(b"LEAKCHECK_SPAWNED_BYX=1"));
    }
}
