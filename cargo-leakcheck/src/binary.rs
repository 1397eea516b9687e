//! What a test binary is, as far as preloading leakcheck into it goes: whether it links
//! leakcheck itself (it then checks itself, and the preloaded library stands aside), whether
//! the loader can preload anything into it at all (not a static binary), and whether it
//! uses tokio (whose tasks only the attribute can see). Read from its ELF symbol table, once
//! per build of the binary: a cache beside the run's state keys each answer by the file's
//! path, size and modification time, so that nextest's one process a test reads it once.

use std::path::Path;

use object::{Object, ObjectSymbol};

/// What the runner needs to know of a test binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binary {
    /// It links leakcheck: a symbol of the `leakcheck` crate is defined in it.
    pub links_leakcheck: bool,
    /// It is dynamically linked (it has an interpreter): `LD_PRELOAD` reaches it.
    pub dynamic: bool,
    /// A symbol of the `tokio` crate is defined in it.
    pub uses_tokio: bool,
}

impl Binary {
    /// Reads `path`'s symbols; `None` when it is not an object file this can read (a
    /// script a runner starts, say), which is then run as it is.
    pub fn read(path: &Path) -> Option<Binary> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let dynamic = file.format() == object::BinaryFormat::Elf && has_interpreter(&data);
        let mut links_leakcheck = false;
        let mut uses_tokio = false;
        for symbol in file.symbols() {
            if symbol.is_undefined() {
                continue;
            }
            let Ok(name) = symbol.name_bytes() else {
                continue;
            };
            // A crate's name appears length-prefixed in both of rustc's manglings
            // (`_ZN9leakcheck…`, `_RNv…9leakcheck…`); `16leakcheck_macros` and the like
            // are other crates.
            links_leakcheck = links_leakcheck || crate_symbol(name, b"9leakcheck");
            uses_tokio = uses_tokio || crate_symbol(name, b"5tokio");
            if links_leakcheck && uses_tokio {
                break;
            }
        }
        Some(Binary {
            links_leakcheck,
            dynamic,
            uses_tokio,
        })
    }

    /// The cache line for this answer.
    fn encode(self) -> String {
        let flag = |on: bool| if on { '1' } else { '0' };
        [self.links_leakcheck, self.dynamic, self.uses_tokio]
            .into_iter()
            .map(flag)
            .collect()
    }

    fn decode(line: &str) -> Option<Binary> {
        let flags: Vec<bool> = line.trim().chars().map(|flag| flag == '1').collect();
        match flags[..] {
            [links_leakcheck, dynamic, uses_tokio] => Some(Binary {
                links_leakcheck,
                dynamic,
                uses_tokio,
            }),
            _ => None,
        }
    }

    /// [`Binary::read`], through a cache in `cache_dir` keyed by the file's path, size and
    /// modification time.
    pub fn read_cached(path: &Path, cache_dir: &Path) -> Option<Binary> {
        let key = cache_key(path)?;
        let entry = cache_dir.join(key);
        if let Some(binary) = std::fs::read_to_string(&entry)
            .ok()
            .and_then(|line| Binary::decode(&line))
        {
            return Some(binary);
        }
        let binary = Binary::read(path)?;
        let _ = std::fs::create_dir_all(cache_dir);
        let _ = std::fs::write(&entry, binary.encode());
        Some(binary)
    }
}

/// A symbol name of the crate whose length-prefixed name is `prefixed`: the prefix not
/// preceded by another digit (`19leakcheck` is a crate of 19 letters).
fn crate_symbol(name: &[u8], prefixed: &[u8]) -> bool {
    name.windows(prefixed.len())
        .enumerate()
        .any(|(at, window)| window == prefixed && (at == 0 || !name[at - 1].is_ascii_digit()))
}

/// Whether an ELF file asks for an interpreter (the dynamic loader): a program header of
/// type `PT_INTERP`.
fn has_interpreter(data: &[u8]) -> bool {
    use object::read::elf::{FileHeader, ProgramHeader};
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(data) else {
        return false;
    };
    let Ok(endian) = header.endian() else {
        return false;
    };
    header.program_headers(endian, data).is_ok_and(|headers| {
        headers
            .iter()
            .any(|program| program.p_type(endian) == object::elf::PT_INTERP)
    })
}

/// The cache's file name for `path` as it is now.
fn cache_key(path: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    metadata.len().hash(&mut hasher);
    modified.hash(&mut hasher);
    Some(format!("{:016x}", hasher.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_are_told_apart_by_their_length_prefix() {
        assert!(crate_symbol(b"_ZN9leakcheck7threads4hook", b"9leakcheck"));
        assert!(crate_symbol(b"_RNvCs1_9leakcheck4init", b"9leakcheck"));
        assert!(!crate_symbol(b"_ZN16leakcheck_macros4test", b"9leakcheck"));
        assert!(!crate_symbol(
            b"_ZN19leakcheckXXXXXXXXXX3foo",
            b"9leakcheck"
        ));
        assert!(crate_symbol(b"_ZN5tokio7runtime", b"5tokio"));
        assert!(!crate_symbol(b"_ZN15tokio_stream", b"5tokio"));
    }

    #[test]
    fn this_test_binary_is_read() {
        let me = std::env::current_exe().unwrap();
        let binary = Binary::read(&me).unwrap();
        assert!(binary.dynamic);
        assert!(!binary.links_leakcheck);
        assert!(!binary.uses_tokio);
        let cache =
            std::env::temp_dir().join(format!("cargo-leakcheck-cache-{}", std::process::id()));
        assert_eq!(Binary::read_cached(&me, &cache), Some(binary));
        assert_eq!(Binary::read_cached(&me, &cache), Some(binary));
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
