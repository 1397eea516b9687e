//! Which frames are the user's: not std's, tokio's, leakcheck's or the C runtime's, and not
//! past the test harness; the spawn site is the innermost of them in the workspace's own
//! code.

use super::Frame;

/// Crates whose frames are machinery, not the place a user spawned from.
const MACHINERY: &[&str] = &[
    "std",
    "core",
    "alloc",
    "test",
    "tokio",
    "leakcheck",
    "backtrace",
    "parking_lot",
];

/// C runtime symbols on the path of every thread (besides the `__`-prefixed ones), and the
/// C library's process functions, which leakcheck's hooks override under their names.
const C_RUNTIME: &[&str] = &[
    "pthread_create",
    "start_thread",
    "clone",
    "clone3",
    "_start",
    "main",
    "posix_spawn",
    "posix_spawnp",
    "fork",
    "popen",
];

/// The spawn site in the user's frames: the innermost frame of the workspace's own code, so
/// that a thread a dependency starts for you (a logging worker, a pool) points at your call;
/// the innermost frame when every frame is a dependency's.
pub(crate) fn spawn_site(user_frames: &[Frame]) -> Option<&Frame> {
    user_frames
        .iter()
        .find(|frame| !frame.is_dependency())
        .or_else(|| user_frames.first())
}

/// Where a spawn backtrace stops being interesting: the harness that called the test body.
/// What lies beyond is the attribute's wrapper and libtest. (`harness.rs` checks that its
/// functions still have these paths.)
pub(crate) const TEST_BOUNDARY: &[&str] = &[
    "leakcheck::harness::__rust_begin_short_backtrace",
    "leakcheck::harness::run_test",
    "leakcheck::harness::run_async_test",
    "test::__rust_begin_short_backtrace",
];

/// The user's frames, innermost first, machinery removed and cut at the test harness:
/// the first is the spawn site.
pub(crate) fn user_frames(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .take_while(|frame| !is_the_harness(frame))
        .filter(|frame| is_user_frame(frame))
        .cloned()
        .collect()
}

/// Whether a backtrace reaches the test harness: then every frame a report shows of it is
/// there, however far beyond the harness it was cut.
pub(crate) fn reaches_the_harness(frames: &[Frame]) -> bool {
    frames.iter().any(is_the_harness)
}

fn is_the_harness(frame: &Frame) -> bool {
    frame
        .function()
        .is_some_and(|function| TEST_BOUNDARY.iter().any(|end| function.starts_with(end)))
}

pub(super) fn is_named_library_frame(frame: &Frame) -> bool {
    frame
        .function()
        .is_some_and(|function| !C_RUNTIME.contains(&function) && !function.starts_with("__"))
}

/// Whether a function is std's (or core's, alloc's) or the C library's: what a thread's
/// stack shows between its own code and the system call it waits in.
pub(crate) fn is_std_or_c(function: &str) -> bool {
    C_RUNTIME.contains(&function)
        || function.starts_with("__")
        || !function.contains("::")
        || matches!(crate_of(function), "std" | "core" | "alloc")
}

pub(crate) fn is_user_frame(frame: &Frame) -> bool {
    let Some(function) = frame.function() else {
        return false;
    };
    // `__libc_start_call_main`, `__rust_try`, `__clone3`: runtime internals.
    if C_RUNTIME.contains(&function) || function.starts_with("__") {
        return false;
    }
    // A C function of a system library (`syscall`, `read`): no source of the user's.
    if !function.contains("::") && (frame.file().is_none() || frame.is_dependency()) {
        return false;
    }
    !MACHINERY.contains(&crate_of(function))
}

/// The crate a demangled function belongs to. For `<T as Trait>::f` that is `T`'s crate,
/// or the trait's when `T` is a bare type parameter (`<F as core::ops::FnOnce>::call_once`).
pub(super) fn crate_of(function: &str) -> &str {
    let path = match function
        .strip_prefix('<')
        .and_then(|q| q.split_once(" as "))
    {
        Some((self_type, trait_path)) => {
            let self_type = self_type
                .trim_start_matches("&mut ")
                .trim_start_matches('&');
            let names_a_crate = self_type
                .split("::")
                .next()
                .is_some_and(|first| first.chars().all(|c| c.is_alphanumeric() || c == '_'));
            if self_type.contains("::") && names_a_crate {
                self_type
            } else {
                trait_path
            }
        }
        None => function.trim_start_matches('<'),
    };
    path.split("::").next().unwrap_or(path)
}

/// std's and the unwinder's panic machinery, which a thread's current stack shows while a
/// panic formats its message, runs the panic hook, or starts to unwind. (Not `catch_unwind`:
/// every std thread runs inside one.)
const PANIC_MACHINERY: &[&str] = &[
    "std::panicking::begin_panic",
    "std::panicking::panic_handler",
    "std::panicking::panic_with_hook",
    "std::panicking::rust_panic_with_hook",
    "std::panicking::default_hook",
    "core::panicking::panic",
    "rust_begin_unwind",
    "__rust_start_panic",
    "_Unwind_RaiseException",
];

/// Whether a current stack is in the middle of a panic (before it unwinds: its message, its
/// hook, its backtrace).
pub(crate) fn is_panicking(stack: &[Frame]) -> bool {
    stack.iter().any(|frame| {
        frame.function().is_some_and(|function| {
            // `__rustc::rust_begin_unwind`: the symbol's path varies with the release.
            let function = function.trim_start_matches("__rustc::");
            PANIC_MACHINERY
                .iter()
                .any(|machinery| function.starts_with(machinery))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str) -> Frame {
        Frame::new(Some(function.into()), None, None, None)
    }

    #[test]
    fn machinery_is_not_the_users() {
        for function in [
            "std::thread::spawn",
            "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once",
            "<F as core::ops::function::FnOnce<()>>::call_once",
            "<fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once",
            "__rust_try",
            "core::ops::function::FnOnce::call_once{{vtable.shim}}",
            "test::run_test::{{closure}}",
            "leakcheck::harness::run_test",
            "leakcheck::harness::run_async_test",
            "tokio::runtime::task::spawn",
            "start_thread",
            "posix_spawnp",
            "fork",
        ] {
            assert!(!is_user_frame(&frame(function)), "{function}");
        }
        assert!(!is_user_frame(&Frame::new(None, None, None, None)));
    }

    #[test]
    fn user_code_is() {
        for function in [
            "threads::leaks_on_channel",
            "threads::leaks_on_channel::{{closure}}",
            "<my_crate::Pool as core::ops::drop::Drop>::drop",
            "testing::helper",
            "my_tokio_app::serve",
        ] {
            assert!(is_user_frame(&frame(function)), "{function}");
        }
    }

    #[test]
    fn cut_at_the_test_harness() {
        let frames = [
            frame("std::thread::spawn"),
            frame("my_tests::leaky::{{closure}}"),
            frame("leakcheck::harness::run_test"),
            frame("my_tests::leaky"),
        ];
        let kept: Vec<_> = user_frames(&frames)
            .iter()
            .map(|f| f.function().unwrap().to_owned())
            .collect();
        assert_eq!(kept, ["my_tests::leaky::{{closure}}"]);
    }

    #[test]
    fn a_panic_s_machinery_is_seen_and_catch_unwind_is_not() {
        let named = |functions: &[&str]| -> Vec<Frame> {
            functions.iter().map(|function| frame(function)).collect()
        };
        let formatting = named(&[
            "<my::Slow as core::fmt::Display>::fmt",
            "std::panicking::panic_with_hook",
            "__rustc::rust_begin_unwind",
            "my::worker",
        ]);
        assert!(is_panicking(&formatting));
        let working = named(&[
            "my::worker",
            "std::panicking::catch_unwind::do_call",
            "std::panicking::catch_unwind",
        ]);
        assert!(!is_panicking(&working));
    }
}
