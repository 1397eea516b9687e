//! [`Frame`], and raw instruction pointers -> frames, and which frames are the user's. Runs
//! only when a check has found something, never on the spawn path; results are cached per
//! address. A leaf: it imports nothing of the crate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

/// One frame of a backtrace, resolved.
///
/// ```
/// use std::time::Duration;
///
/// let scope = leakcheck::Scope::enter_named("frames");
/// let (stop, stopped) = std::sync::mpsc::channel::<()>();
/// std::thread::spawn(move || stopped.recv());
/// let report = scope.find(&leakcheck::Options::new().grace(Duration::ZERO)).unwrap_err();
/// let site = report.leaks()[0].spawn_site().expect("this code spawned it");
/// assert!(site.function().unwrap().contains("main"));
/// // `file.rs:LINE:COLUMN` when the binary has debug info (doctests have none).
/// println!("spawned at {}", site.location().unwrap_or_default());
/// drop(stop); // the thread returns
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    /// Whether the file is a dependency's (cargo's registry or git checkouts).
    dependency: bool,
}

impl Frame {
    pub(crate) fn new(
        function: Option<String>,
        file: Option<String>,
        line: Option<u32>,
        column: Option<u32>,
    ) -> Frame {
        Frame {
            function,
            file,
            line,
            column,
            dependency: false,
        }
    }

    /// The same frame, marked as a dependency's code.
    pub(crate) fn in_dependency(mut self) -> Frame {
        self.dependency = true;
        self
    }

    /// Whether this is a dependency's code (from cargo's registry or a git checkout) rather
    /// than the workspace's own.
    pub fn is_dependency(&self) -> bool {
        self.dependency
    }

    /// The demangled function path, without the hash: `my_crate::pool::start`.
    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    /// The source file, relative to the working directory when it lies below it.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The line in [`Frame::file`].
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The column in [`Frame::file`].
    pub fn column(&self) -> Option<u32> {
        self.column
    }

    /// `file.rs:LINE:COLUMN`, or as much of it as is known.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_owned(),
        })
    }

    /// The function path as an `ignore_spawn` rule: closures stand for their function.
    pub(crate) fn rule_path(&self) -> Option<&str> {
        let function = self.function.as_deref()?;
        Some(function.split("::{{closure}}").next().unwrap_or(function))
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function.as_deref().unwrap_or("<unknown>"))?;
        if let Some(location) = self.location() {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

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

/// C runtime symbols on the path of every thread (besides the `__`-prefixed ones).
const C_RUNTIME: &[&str] = &[
    "pthread_create",
    "start_thread",
    "clone",
    "clone3",
    "_start",
    "main",
];

static CACHE: LazyLock<Mutex<HashMap<usize, Arc<[Frame]>>>> = LazyLock::new(Default::default);

/// Every frame of a captured trace, inlined frames expanded (innermost first).
pub(crate) fn resolve(ips: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(ips.len());
    for &ip in ips {
        let cached = CACHE.lock().get(&ip).cloned();
        let at_ip = cached.unwrap_or_else(|| {
            let resolved: Arc<[Frame]> = resolve_ip(ip).into();
            CACHE.lock().insert(ip, resolved.clone());
            resolved
        });
        frames.extend(at_ip.iter().cloned());
    }
    frames
}

/// [`resolve`], if every address is resolved already; else `None`, at no cost.
pub(crate) fn resolve_cached(ips: &[usize]) -> Option<Vec<Frame>> {
    let cache = CACHE.lock();
    let mut frames = Vec::with_capacity(ips.len());
    for ip in ips {
        frames.extend(cache.get(ip)?.iter().cloned());
    }
    Some(frames)
}

fn resolve_ip(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    // `resolve` looks up `ip - 1`: a captured ip is a return address, one past the call.
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        frames.push(from_symbol(
            symbol.name().map(|name| format!("{name:#}")).as_deref(),
            symbol.filename(),
            symbol.lineno(),
            symbol.colno(),
        ));
    });
    if frames.is_empty() {
        frames.push(Frame::new(None, None, None, None));
    }
    frames
}

/// A resolved symbol as a frame: the demangled name without its hash, the path as the
/// report shows it, and whether it is a dependency's code. Every frame leakcheck shows is
/// made here, whether it comes from a captured trace or from a tokio task dump.
pub(crate) fn from_symbol(
    demangled: Option<&str>,
    file: Option<&std::path::Path>,
    line: Option<u32>,
    column: Option<u32>,
) -> Frame {
    let frame = Frame::new(
        demangled.map(without_hash),
        file.map(display_path),
        line,
        column,
    );
    match file {
        Some(path) if is_dependency_path(path) => frame.in_dependency(),
        _ => frame,
    }
}

/// `name::h0123456789abcdef` -> `name`.
fn without_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            path.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// Paths under the working directory (where cargo runs tests: the package root) are shown
/// relative to it, the way they appear in the user's editor; a dependency's sources from
/// cargo's registry as `crate-version/src/...`.
fn display_path(path: &std::path::Path) -> String {
    static CWD: LazyLock<Option<std::path::PathBuf>> =
        LazyLock::new(|| std::env::current_dir().ok());
    if let Some(relative) = CWD.as_deref().and_then(|cwd| path.strip_prefix(cwd).ok()) {
        return relative.display().to_string();
    }
    let shown = path.display().to_string();
    // `/rustc/<commit>/library/std/src/...`: the standard library's sources.
    if let Some((_, below)) = shown
        .split_once("/library/")
        .filter(|_| shown.starts_with("/rustc/"))
    {
        return below.to_owned();
    }
    // `~/.cargo/registry/src/<index>-<hash>/tokio-1.54.1/src/...`
    match shown.split_once("/registry/src/") {
        Some((_, below)) => below
            .split_once('/')
            .map_or(below, |(_index, rest)| rest)
            .to_owned(),
        None => shown,
    }
}

/// Code the workspace did not write: a crate cargo fetched (registry or git), or a system
/// library built with relative source paths (glibc's `./nptl/pthread_create.c`).
fn is_dependency_path(path: &std::path::Path) -> bool {
    let shown = path.to_string_lossy();
    path.is_relative() || shown.contains("/registry/src/") || shown.contains("/git/checkouts/")
}

/// The spawn site in the user's frames: the innermost frame of the workspace's own code, so
/// that a thread a dependency starts for you (a logging worker, a pool) points at your call;
/// the innermost frame when every frame is a dependency's.
pub(crate) fn spawn_site(user_frames: &[Frame]) -> Option<&Frame> {
    user_frames
        .iter()
        .find(|frame| !frame.is_dependency())
        .or_else(|| user_frames.first())
}

/// A task's spawn site as a frame: tokio's record of the caller's `file:line:column`,
/// with the function from the spawn backtrace when that frame is the same call.
pub(crate) fn location_frame(
    location: &'static std::panic::Location<'static>,
    innermost_user_frame: Option<&Frame>,
) -> Frame {
    let function = innermost_user_frame
        .filter(|frame| {
            frame.line() == Some(location.line())
                && frame.file().is_some_and(|file| {
                    file.ends_with(location.file()) || location.file().ends_with(file)
                })
        })
        .and_then(|frame| frame.function().map(str::to_owned));
    Frame::new(
        function,
        Some(display_path(std::path::Path::new(location.file()))),
        Some(location.line()),
        Some(location.column()),
    )
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
        .take_while(|frame| {
            !frame
                .function()
                .is_some_and(|function| TEST_BOUNDARY.iter().any(|end| function.starts_with(end)))
        })
        .filter(|frame| is_user_frame(frame))
        .cloned()
        .collect()
}

/// The function of leakcheck's signal handler that captures a current stack: its frames,
/// then the signal trampoline, come before the thread's own. (`threads/stack.rs` checks
/// that its handler still has this path.)
pub(crate) const SIGNAL_HANDLER: &str = "leakcheck::threads::stack::on_signal";

/// A thread's current stack, captured in leakcheck's signal handler, as a report shows it:
/// the function it is stopped in, the last library function before the user's code (the
/// `Condvar::wait`, `thread::sleep` or `Receiver::recv` it called), then the user's frames.
/// Also returns `top`: every frame from the top down to the first of the user's, which
/// `ignore_top` rules match.
pub(crate) fn shape_current_stack(frames: &[Frame]) -> CurrentStack {
    // The handler's frames, then the signal trampoline, then the thread's own stack.
    let own = frames
        .iter()
        .position(|frame| {
            frame
                .function()
                .is_some_and(|function| function.contains(SIGNAL_HANDLER))
        })
        .map_or(0, |handler| handler + 2)
        .min(frames.len());
    let stack = &frames[own..];
    let first_user = stack.iter().position(is_user_frame);
    let top_end = first_user.map_or(stack.len(), |at| at + 1);
    let mut shown: Vec<Frame> = Vec::new();
    let mut show = |frame: &Frame| {
        // Inlined frames of one function repeat its name: once is enough.
        let repeated = shown.last().map(Frame::function) == Some(frame.function());
        if !repeated && frame.function().is_some() {
            shown.push(frame.clone());
        }
    };
    if let Some(innermost) = stack.iter().find(|frame| frame.function().is_some()) {
        show(innermost);
    }
    match first_user {
        Some(at) if at > 0 => show(library_call(&stack[..at])),
        Some(_) => {}
        // No code of the user's (a runtime's worker, say): the top few frames say most.
        None => stack
            .iter()
            .filter(|frame| is_named_library_frame(frame))
            .take(TOP_WITHOUT_USER_FRAMES)
            .for_each(&mut show),
    }
    for frame in user_frames(&stack[first_user.unwrap_or(stack.len())..]) {
        show(&frame);
    }
    CurrentStack {
        shown,
        top: stack[..top_end].to_vec(),
    }
}

/// Of the library frames between the top of a stack and the user's code, the one that says
/// what the user called: the outermost of std's own API (not `std::sys` internals, not an
/// adapter such as `Iterator::for_each` around it), else the outermost frame.
fn library_call(library: &[Frame]) -> &Frame {
    library
        .iter()
        .rev()
        .find(|frame| {
            frame.function().is_some_and(|function| {
                crate_of(function) == "std" && !function.contains("std::sys::")
            })
        })
        .unwrap_or(&library[library.len() - 1])
}

/// Frames shown of a current stack that has none of the user's.
const TOP_WITHOUT_USER_FRAMES: usize = 6;

/// A current stack, for the report and for `ignore_top`.
pub(crate) struct CurrentStack {
    pub(crate) shown: Vec<Frame>,
    pub(crate) top: Vec<Frame>,
}

fn is_named_library_frame(frame: &Frame) -> bool {
    frame
        .function()
        .is_some_and(|function| !C_RUNTIME.contains(&function) && !function.starts_with("__"))
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
fn crate_of(function: &str) -> &str {
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
    fn symbols_lose_their_hash_and_dependencies_are_marked() {
        let frame = from_symbol(
            Some("tokio::sync::oneshot::Receiver<T>::poll::h0123456789abcdef"),
            Some(std::path::Path::new(
                "/home/u/.cargo/registry/src/index-1/tokio-1.54.1/src/sync/oneshot.rs",
            )),
            Some(7),
            None,
        );
        assert_eq!(
            frame.function(),
            Some("tokio::sync::oneshot::Receiver<T>::poll")
        );
        assert_eq!(frame.file(), Some("tokio-1.54.1/src/sync/oneshot.rs"));
        assert!(frame.is_dependency());
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
    fn resolves_its_own_caller() {
        let mut ips = Vec::new();
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            ips.len() < 16
        });
        let frames = resolve(&ips);
        assert!(
            frames.iter().any(|frame| frame
                .function()
                .is_some_and(|f| f.contains("resolves_its_own_caller"))),
            "{frames:?}"
        );
    }
}
