//! A panic's message, read off the exception being raised: what leakcheck's panic hook
//! notes, for where that hook never ran. A library preloaded by `cargo leakcheck` has a std
//! of its own, whose hook is not the test's; a test may replace the hook. The exception is
//! the test's own: std raises a panic as its `panic_unwind` `Exception` (`repr(C)`: the
//! unwinder's header, a canary, then the payload, a `Box<dyn Any + Send>`), and a `panic!`'s
//! payload is a `&'static str` or a `String` by then.
//!
//! Read with care, as a misread here would crash the test inside the unwinder: only on
//! 64-bit x86 and Arm, whose unwinder header is four words; only when the canary, the
//! vtable and its `type_id` lie in a loaded object (`dladdr`); the payload's type is asked
//! of its vtable only when that vtable's size and alignment are a `String`'s or a
//! `&str`'s, and compared with this crate's `TypeId`s, which are the test's where both were
//! built by one compiler (as `cargo leakcheck` builds the library). A payload of another
//! size reads as `Box<dyn Any>`, as std's hook prints it; anything unsure, as no message.

use std::ffi::c_void;

/// The message of the Rust panic `exception` (already known to be Rust's by its class):
/// its payload if a string, else [`NOT_A_STRING`]; `None` where the exception could not be
/// read.
pub(crate) fn message(exception: *mut c_void) -> Option<String> {
    layout::message(exception)
}

/// What std's own panic hook prints for a payload that is not a string (`panic_any`).
pub(crate) const NOT_A_STRING: &str = "Box<dyn Any>";

#[cfg(all(
    target_pointer_width = "64",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod layout {
    use std::any::TypeId;

    use super::*;

    /// std's `Exception` for a panic, as `panic_unwind` lays it out on these targets: the
    /// `_Unwind_Exception` header is the class, the cleanup function and two words the
    /// unwinder keeps (`unwinder_private_data_size` is 2 on both).
    #[repr(C)]
    struct Exception {
        class: u64,
        cleanup: usize,
        private: [usize; 2],
        canary: *const u8,
        payload: *const (),
        vtable: *const AnyVtable,
    }

    /// The head of a `dyn Any` vtable: drop, size, alignment, then `Any::type_id`.
    #[repr(C)]
    struct AnyVtable {
        drop: usize,
        size: usize,
        align: usize,
        type_id: unsafe fn(*const ()) -> TypeId,
    }

    pub(super) fn message(exception: *mut c_void) -> Option<String> {
        let exception = exception.cast::<Exception>();
        if !exception.is_aligned() {
            return None;
        }
        // SAFETY: a Rust panic's exception is std's `Exception`, laid out as above.
        let exception = unsafe { &*exception };
        let (payload, vtable) = (exception.payload, exception.vtable);
        if payload.is_null()
            || !vtable.is_aligned()
            || !in_a_loaded_object(exception.canary.cast())
            || !in_a_loaded_object(vtable.cast())
        {
            return None;
        }
        // SAFETY: the payload box's vtable: aligned, in a loaded object's image.
        let vtable = unsafe { &*vtable };
        let is_string = (vtable.size, vtable.align) == (size_of::<String>(), align_of::<String>());
        let is_str = (vtable.size, vtable.align) == (size_of::<&str>(), align_of::<&str>());
        if !(is_string || is_str) {
            return Some(NOT_A_STRING.to_owned());
        }
        if !payload.cast::<usize>().is_aligned()
            || !in_a_loaded_object(vtable.type_id as *const c_void)
        {
            return None;
        }
        // SAFETY: `Any::type_id` of the payload, with the payload: a function of a loaded
        // object, named by the payload's vtable.
        let type_id = unsafe { (vtable.type_id)(payload) };
        if is_string && type_id == TypeId::of::<String>() {
            // SAFETY: the payload is a `String`, said its type; read, not taken.
            Some(unsafe { &*payload.cast::<String>() }.clone())
        } else if is_str && type_id == TypeId::of::<&'static str>() {
            // SAFETY: as above, a `&'static str`.
            Some((*unsafe { &*payload.cast::<&str>() }).to_owned())
        } else {
            // A string's size but not its type: another type, or a string of another
            // compiler's std. Unsure.
            None
        }
    }

    /// Whether `address` lies in the image of a loaded object (the executable or a shared
    /// library): where std's statics, vtables and functions are.
    fn in_a_loaded_object(address: *const c_void) -> bool {
        if address.is_null() {
            return false;
        }
        // SAFETY: `Dl_info` is plain pointers, for which all zeroes is valid.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: dladdr only looks `address` up, and writes `info`.
        unsafe { libc::dladdr(address, &mut info) != 0 }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// An exception laid out as std lays one out, around `payload`.
        fn raise_like_std(payload: Box<dyn std::any::Any + Send>) -> Option<String> {
            static CANARY: u8 = 0;
            let (data, vtable) =
                // SAFETY: a fat pointer is its data and its vtable.
                unsafe { std::mem::transmute::<*mut (dyn std::any::Any + Send), (*const (), *const AnyVtable)>(Box::into_raw(payload)) };
            let mut exception = Exception {
                class: u64::from_ne_bytes(*b"MOZ\0RUST"),
                cleanup: 0,
                private: [0; 2],
                canary: &CANARY,
                payload: data,
                vtable,
            };
            let read = message((&raw mut exception).cast());
            // SAFETY: the box taken apart above, put back together to be dropped.
            drop(unsafe {
                Box::from_raw(std::mem::transmute::<
                    (*const (), *const AnyVtable),
                    *mut (dyn std::any::Any + Send),
                >((data, vtable)))
            });
            read
        }

        #[test]
        fn a_panic_s_string_or_str_is_its_message_and_nothing_else_is() {
            assert_eq!(raise_like_std(Box::new("boom")).as_deref(), Some("boom"));
            assert_eq!(
                raise_like_std(Box::new(String::from("boom 2"))).as_deref(),
                Some("boom 2")
            );
            // Another payload is never taken for a string: of a string's size, unsure; of
            // another size, what std's hook prints.
            assert_eq!(raise_like_std(Box::new([7usize; 3])), None);
            assert_eq!(raise_like_std(Box::new((7u64, 8u64))), None);
            assert_eq!(
                raise_like_std(Box::new(42u32)).as_deref(),
                Some(NOT_A_STRING)
            );
            assert_eq!(
                raise_like_std(Box::new([1u8; 5])).as_deref(),
                Some(NOT_A_STRING)
            );
        }
    }
}

#[cfg(not(all(
    target_pointer_width = "64",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod layout {
    use super::*;

    /// Elsewhere the header's size is not known here: no message.
    pub(super) fn message(_exception: *mut c_void) -> Option<String> {
        None
    }
}
