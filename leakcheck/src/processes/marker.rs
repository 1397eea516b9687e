//! The marker a child inherits in its environment, `LEAKCHECK_SPAWNED_BY=<pid>.<start>.<key>`:
//! the test process that started it (its pid and start time, since pids are reused) and the
//! record of the spawn. A descendant keeps it when its parent exits and it is reparented
//! away from the test process, so the check still finds it and blames the spawn line it
//! came from. A test binary started by a test puts its own in place of the one it
//! inherited; a process that runs no leak check adds none (its children start exactly as
//! they would without leakcheck); a child whose caller built or cut its environment
//! (`env_clear()`, `env_remove(..)`) gets none ([`inherits`]), and neither does one that sets
//! the variable itself (`.env("LEAKCHECK_SPAWNED_BY", "")`); `LEAKCHECK_MARK_CHILDREN=0`
//! turns it off.

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

/// Whether a child given the environment `envp` inherited its parent's (`inherited`, the
/// C library's `environ` where it was spawned): it holds every variable of it by name,
/// maybe with others added or changed, and sets no marker of its own. Only such a child
/// gets the marker. One whose caller built or cut its environment (`env_clear()`,
/// `env_remove(..)`) gets exactly what was built; one whose caller set the marker's
/// variable (`.env("LEAKCHECK_SPAWNED_BY", "")`, to opt a command out) keeps that value.
/// No allocation: a fork child asks it before its `exec`.
///
/// # Safety
///
/// `envp` and `inherited` are null or null-terminated arrays of C strings.
pub(crate) unsafe fn inherits(envp: *const *const c_char, inherited: *const *const c_char) -> bool {
    if envp == inherited {
        return true;
    }
    // SAFETY: the caller's arrays of C strings.
    unsafe {
        let inherited_marker = find(inherited, |entry| is_marker_c_entry(entry));
        let own_marker = find(envp, |entry| is_marker_c_entry(entry));
        if let Some(own) = own_marker {
            if inherited_marker.is_none_or(|parent| !same_c_str(own, parent)) {
                return false;
            }
        }
        entries(inherited).all(|variable| {
            is_marker_c_entry(variable) || find(envp, |entry| same_name(variable, entry)).is_some()
        })
    }
}

/// The entries of a null-terminated array of C strings (none for null).
///
/// # Safety
///
/// `array` is null or a null-terminated array of C strings that outlives the iterator.
unsafe fn entries(array: *const *const c_char) -> impl Iterator<Item = *const c_char> {
    (0..).map_while(move |at| {
        // SAFETY: read up to the terminator, which ends the iteration.
        let entry = (!array.is_null()).then(|| unsafe { *array.add(at) })?;
        (!entry.is_null()).then_some(entry)
    })
}

/// The first entry of `array` that `matches`.
///
/// # Safety
///
/// As [`entries`].
unsafe fn find(
    array: *const *const c_char,
    matches: impl Fn(*const c_char) -> bool,
) -> Option<*const c_char> {
    // SAFETY: as the caller's.
    unsafe { entries(array) }.find(|&entry| matches(entry))
}

/// Whether two `NAME=value` entries name the same variable.
///
/// # Safety
///
/// Both are C strings.
unsafe fn same_name(a: *const c_char, b: *const c_char) -> bool {
    for at in 0.. {
        // SAFETY: read up to the first difference, a NUL or `=` at the latest.
        let (x, y) = unsafe { (*a.add(at) as u8, *b.add(at) as u8) };
        if x != y {
            return false;
        }
        if x == b'=' || x == 0 {
            return true;
        }
    }
    unreachable!("an unbounded range")
}

/// Whether two C strings are equal.
///
/// # Safety
///
/// Both are C strings.
unsafe fn same_c_str(a: *const c_char, b: *const c_char) -> bool {
    for at in 0.. {
        // SAFETY: read up to the first difference or the NUL.
        let (x, y) = unsafe { (*a.add(at), *b.add(at)) };
        if x != y {
            return false;
        }
        if x == 0 {
            return true;
        }
    }
    unreachable!("an unbounded range")
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

    /// Arrays of C strings as `environ` is, terminated.
    fn array(entries: &[&std::ffi::CStr]) -> Vec<*const c_char> {
        entries
            .iter()
            .map(|entry| entry.as_ptr())
            .chain([std::ptr::null()])
            .collect()
    }

    #[test]
    fn only_an_inherited_environment_gets_the_marker() {
        let parent = array(&[c"PATH=/bin", c"HOME=/root", c"LEAKCHECK_SPAWNED_BY=1.2.3"]);
        let inherits = |child: &[&std::ffi::CStr]| {
            let child = array(child);
            // SAFETY: terminated arrays of C strings.
            unsafe { inherits(child.as_ptr(), parent.as_ptr()) }
        };
        // SAFETY: the same array.
        assert!(unsafe { super::inherits(parent.as_ptr(), parent.as_ptr()) });
        // Added and changed variables: still inherited.
        assert!(inherits(&[c"HOME=/home", c"PATH=/bin", c"EXTRA=1"]));
        assert!(inherits(&[
            c"PATH=/bin",
            c"HOME=/root",
            c"LEAKCHECK_SPAWNED_BY=1.2.3"
        ]));
        // Cleared, or one removed: built by the caller.
        assert!(!inherits(&[]));
        assert!(!inherits(&[c"ONLY=1"]));
        assert!(!inherits(&[c"PATH=/bin"]));
        assert!(!inherits(&[c"PATH=/bin", c"HOMER=/root"]));
        // The marker's variable set by the caller: theirs.
        assert!(!inherits(&[
            c"PATH=/bin",
            c"HOME=/root",
            c"LEAKCHECK_SPAWNED_BY="
        ]));
        // SAFETY: null is an empty environment.
        assert!(!unsafe { super::inherits(std::ptr::null(), parent.as_ptr()) });
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
