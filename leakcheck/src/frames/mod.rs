//! [`Frame`], and raw instruction pointers -> frames, and which frames are the user's. Runs
//! only when a check has found something, never on the spawn path. A leaf: it imports only
//! the foundation (paths, spawn stacks).
//!
//! - `resolve`: addresses to frames with the debug info (functions, inlined ones, files,
//!   lines), cached per address; the frames of a task dump;
//! - `symtab`: addresses to function names from the executable's symbol table alone: no
//!   debug info to load, so rules can match at a check's first look;
//! - `classify`: which frames are the user's, and the spawn site among them;
//! - `current_stack`: a thread's current stack as a report shows it;
//! - `warm`: the debug info loaded on a thread of leakcheck's own while a check waits.

mod classify;
mod current_stack;
mod resolve;
mod symtab;
mod warm;

use std::fmt;

#[cfg(test)]
pub(crate) use classify::TEST_BOUNDARY;
pub(crate) use classify::{
    is_panicking, is_std_or_c, reaches_the_harness, spawn_site, user_frames,
};
#[cfg(all(test, lc_thread_hook))]
pub(crate) use current_stack::SIGNAL_HANDLER;
pub(crate) use current_stack::shape_current_stack;
#[cfg(lc_taskdump)]
pub(crate) use resolve::from_symbol;
pub(crate) use resolve::{
    location_frame, resolve, resolve_cached, resolve_spawn, resolve_spawn_cached,
};
pub(crate) use symtab::names;
#[cfg(lc_thread_hook)]
pub(crate) use symtab::{NamesFoundHeld, hold_names_found};
pub(crate) use warm::warm_symbols;

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

/// The symbol table against the debug info: tested here, where both are in view, so that
/// neither file imports the other.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[inline(never)]
    fn a_function_of_the_executable() -> Vec<usize> {
        let mut ips = Vec::new();
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            ips.len() < 8
        });
        ips
    }

    /// The symbol table names the executable's functions, and the debug info says the same
    /// of the same addresses.
    #[test]
    fn the_symbol_table_names_what_the_debug_info_names() {
        let ips = a_function_of_the_executable();
        let names = super::symtab::names(&ips).expect("the executable's symbol table");
        assert!(
            names.iter().any(|frame| frame
                .function()
                .is_some_and(|name| name.ends_with("a_function_of_the_executable"))),
            "{names:?}"
        );
        let resolved = super::resolve(&ips);
        for name in names.iter().filter_map(super::Frame::function) {
            assert!(
                resolved.iter().any(|frame| frame.function() == Some(name)),
                "{name} is not in {resolved:?}"
            );
        }
    }
}
