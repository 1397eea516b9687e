//! Function names from the executable's symbol table: what a rule that names a function
//! (`ignore_spawn = "my_crate::telemetry::start"`, the default allowlist, `ignore_top`) needs,
//! without the debug info that `resolve` loads. The executable is mapped
//! (only the pages of its symbol and string tables are read), and a look at addresses not
//! seen before is one pass over the table: ~2 ms in a debug test binary of 17,000 functions,
//! where loading its debug info takes a tenth of a second and more; nothing for a test whose
//! check finds nothing.
//!
//! What it cannot see: inlined functions (the table names the function the code was
//! inlined into), files and lines, and code outside the executable. A name found here is on
//! the path; a name not found may still be, and only `resolve` can tell.

use super::Frame;

/// Each address's function, as far as the symbol table tells (`None` where it does not), or
/// `None` when the table cannot be read.
pub(crate) fn names(ips: &[usize]) -> Option<Vec<Frame>> {
    let names = table::functions_at(ips)?;
    Some(
        names
            .into_iter()
            .map(|name| Frame::new(name, None, None, None))
            .collect(),
    )
}

/// The names' lock, held by a forking thread across the fork (`registry::fork`): a child
/// forked while another thread of the parent looked names up would find it held for ever.
/// The names themselves stay valid in the child, which runs the same executable.
#[cfg(lc_thread_hook)]
pub(crate) fn hold_names_found() -> NamesFoundHeld {
    table::hold()
}

/// The names' lock, held.
#[cfg(lc_thread_hook)]
pub(crate) type NamesFoundHeld = table::Held;

#[cfg(target_os = "linux")]
mod table {
    use std::collections::HashMap;
    use std::ffi::{c_int, c_void};
    use std::sync::{LazyLock, OnceLock};

    use object::elf::{ET_DYN, STT_FUNC};
    use object::read::elf::{ElfFile64, FileHeader, Sym, SymbolTable};
    use object::{Endianness, read::StringTable};

    use crate::lock::Lock;

    /// The executable's symbol table, as mapped.
    struct Table {
        /// Where the executable is loaded: its addresses plus this are this process's.
        bias: usize,
        endian: Endianness,
        symbols: SymbolTable<'static, object::elf::FileHeader64<Endianness>>,
    }

    /// Names found so far, by address: a check looks at the same spawn paths again.
    static FOUND: LazyLock<Lock<HashMap<usize, Option<String>>>> = LazyLock::new(Default::default);

    /// [`super::hold_names_found`].
    #[cfg(lc_thread_hook)]
    pub(super) fn hold() -> Held {
        FOUND.lock()
    }

    #[cfg(lc_thread_hook)]
    pub(crate) type Held = std::sync::MutexGuard<'static, HashMap<usize, Option<String>>>;

    fn get() -> Option<&'static Table> {
        static TABLE: OnceLock<Option<Table>> = OnceLock::new();
        TABLE.get_or_init(read).as_ref()
    }

    /// The function at each address (a return address: the call is just before it). One pass
    /// over the table for the addresses not seen before: it is not sorted, and sorting its
    /// tens of thousands of entries would cost more, in a debug build, than a pass a check.
    pub(super) fn functions_at(ips: &[usize]) -> Option<Vec<Option<String>>> {
        let table = get()?;
        let mut found = FOUND.lock();
        let mut wanted: Vec<u64> = ips
            .iter()
            .filter(|ip| !found.contains_key(ip))
            .filter_map(|&ip| Some(ip.checked_sub(table.bias)?.checked_sub(1)? as u64))
            .collect();
        if !wanted.is_empty() {
            wanted.sort_unstable();
            wanted.dedup();
            let mut names: Vec<Option<&'static [u8]>> = vec![None; wanted.len()];
            let strings: StringTable<'static> = table.symbols.strings();
            for symbol in table.symbols.symbols() {
                let size = symbol.st_size(table.endian);
                if symbol.st_type() != STT_FUNC || size == 0 {
                    continue;
                }
                let start = symbol.st_value(table.endian);
                let first = wanted.partition_point(|&address| address < start);
                for at in first..wanted.len() {
                    if wanted[at] >= start + size {
                        break;
                    }
                    names[at] = symbol.name(table.endian, strings).ok();
                }
            }
            for &ip in ips {
                if found.contains_key(&ip) {
                    continue;
                }
                let Some(address) = ip.checked_sub(table.bias + 1) else {
                    found.insert(ip, None);
                    continue;
                };
                let name = wanted
                    .binary_search(&(address as u64))
                    .ok()
                    .and_then(|at| names[at])
                    .map(demangle);
                found.insert(ip, name);
            }
        }
        Some(
            ips.iter()
                .map(|ip| found.get(ip).cloned().flatten())
                .collect(),
        )
    }

    fn demangle(name: &[u8]) -> String {
        let name = String::from_utf8_lossy(name);
        match rustc_demangle::try_demangle(&name) {
            Ok(demangled) => format!("{demangled:#}"),
            Err(_) => name.into_owned(),
        }
    }

    fn read() -> Option<Table> {
        let bytes = map("/proc/self/exe")?;
        let file = ElfFile64::<Endianness>::parse(bytes).ok()?;
        let endian = file.endian();
        let position_independent = file.elf_header().e_type(endian) == ET_DYN;
        let bias = if position_independent {
            load_bias()?
        } else {
            0
        };
        let symbols = *file.elf_symbol_table();
        (!symbols.is_empty()).then_some(Table {
            bias,
            endian,
            symbols,
        })
    }

    /// The file, mapped read-only for the rest of the process (nothing is read until used).
    fn map(path: &str) -> Option<&'static [u8]> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a private read-only mapping of a file we opened; it is never unmapped, so
        // the slice below lives as long as the process. The executable is not written while
        // it runs (the kernel refuses writes to a running executable: ETXTBSY).
        unsafe {
            let address = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            );
            if address == libc::MAP_FAILED {
                return None;
            }
            Some(std::slice::from_raw_parts(address.cast::<u8>(), len))
        }
    }

    /// Where the loader put the executable: the first module it lists.
    fn load_bias() -> Option<usize> {
        unsafe extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: the loader's info for the first module, and `load_bias`'s `Option`.
            unsafe { *data.cast::<Option<usize>>() = Some((*info).dlpi_addr as usize) };
            1
        }
        let mut bias: Option<usize> = None;
        // SAFETY: the callback writes `bias` during this call only.
        unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut bias).cast()) };
        bias
    }
}

#[cfg(not(target_os = "linux"))]
mod table {
    /// Elsewhere the executable's format is not read: rules match with debug info.
    pub(super) fn functions_at(_ips: &[usize]) -> Option<Vec<Option<String>>> {
        None
    }
}
