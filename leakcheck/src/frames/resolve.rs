//! Addresses to frames, with the debug info: every function at an address (inlined ones
//! first), its file and line. The first lookup of a process loads the debug info (a tenth
//! of a second to a second in a debug test binary); every address is resolved once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use super::Frame;
use super::classify::{TEST_BOUNDARY, crate_of};

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

/// A spawn path as reports and rules read it: the frames from the spawner's call to the test
/// harness (the harness's own frame too, into which the test's body may be inlined)
/// resolved with the debug info; the spawn machinery inside the call (std's and
/// leakcheck's hook) and what lies past the harness (libtest's, std's thread start, the C
/// library's `start_thread`) by the symbol table's names alone. Neither is shown or matched
/// by a line, and resolving them cost the most: in a debug test binary, 0.35 s of a
/// zombie's 0.43 s report went to the C library's debug info (Debian's is compressed) and
/// libtest's, on a check that had no grace period to hide it in.
pub(crate) fn resolve_spawn(ips: &[usize]) -> Vec<Frame> {
    let Some((inner, call, past)) = around_the_call(ips) else {
        return resolve(ips);
    };
    let mut frames = inner;
    frames.extend(resolve(call));
    frames.extend(past);
    frames
}

/// [`resolve_spawn`], if every address it resolves is resolved already.
pub(crate) fn resolve_spawn_cached(ips: &[usize]) -> Option<Vec<Frame>> {
    let Some((inner, call, past)) = around_the_call(ips) else {
        return resolve_cached(ips);
    };
    let mut frames = inner;
    frames.extend(resolve_cached(call)?);
    frames.extend(past);
    Some(frames)
}

/// The symbol table's frames of the spawn machinery, the addresses from the spawner's call
/// up to and with the harness's frame (else the outermost frame the table names), and the
/// symbol table's frames past it; `None` when the table cannot be read.
fn around_the_call(ips: &[usize]) -> Option<(Vec<Frame>, &[usize], Vec<Frame>)> {
    let names = super::symtab::names(ips)?;
    // Only what the table names as std's or leakcheck's: code it does not name may be
    // anyone's.
    let machinery = names
        .iter()
        .take_while(|frame| {
            frame.function().is_some_and(|function| {
                matches!(crate_of(function), "std" | "core" | "alloc" | "leakcheck")
            })
        })
        .count();
    // Without a harness (a runtime's worker, the exit check's threads), the outermost frames
    // the table does not name: the C library's thread start.
    let harness = names
        .iter()
        .position(|frame| {
            frame
                .function()
                .is_some_and(|function| TEST_BOUNDARY.iter().any(|end| function.starts_with(end)))
        })
        .or_else(|| names.iter().rposition(|frame| frame.function().is_some()))
        .map_or(ips.len(), |at| at + 1);
    // The outermost of them is resolved with the debug info too: in a release build the
    // user's closure (the spawn's caller) may be inlined into a std function there
    // (`Iterator::for_each`), and only the debug info sees it.
    let machinery = machinery.saturating_sub(1).min(harness);
    Some((
        names[..machinery].to_vec(),
        &ips[machinery..harness],
        names[harness..].to_vec(),
    ))
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
        file.map(crate::paths::display),
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

/// Code the workspace did not write: a crate cargo fetched (registry or git), or a system
/// library built with relative source paths (glibc's `./nptl/pthread_create.c`).
fn is_dependency_path(path: &std::path::Path) -> bool {
    let shown = path.to_string_lossy();
    path.is_relative() || shown.contains("/registry/src/") || shown.contains("/git/checkouts/")
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
        Some(crate::paths::display(std::path::Path::new(location.file()))),
        Some(location.line()),
        Some(location.column()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
