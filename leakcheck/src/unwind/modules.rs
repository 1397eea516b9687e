//! At report time: a kept stack unwound with `framehop`, through the unwind tables
//! (`.eh_frame_hdr` and `.eh_frame`, found by `PT_GNU_EH_FRAME`) of every module the
//! dynamic loader lists. The whole unwind runs inside `dl_iterate_phdr`'s callback, which
//! holds the loader's lock: no module can be unloaded, and its tables unmapped, while they
//! are read.

use std::ffi::{CStr, c_int, c_void};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use framehop::{
    CacheNative, ExplicitModuleSectionInfo, MayAllocateDuringUnwind, Module, UnwindRegsNative,
    Unwinder, UnwinderNative,
};

use super::MAX_FRAMES;
use super::copy::REGISTERS;
use super::record::Unwound;

/// The loader's lock, held: the callback of `dl_iterate_phdr` (which holds it) makes one,
/// and what it maps lives only as long as it (`mapped`), so that no module's tables can be
/// read after the lock is released and the module unloaded.
struct LoaderLocked(());

/// The modules' unwind tables, read while the loader's lock is held (`'locked`).
type Tables<'locked> = UnwinderNative<&'locked [u8], MayAllocateDuringUnwind>;

/// The instruction pointers of a record's backtrace (`copy`'s words), innermost first:
/// where the spawn was, then return addresses. Empty if the modules cannot be listed.
pub(super) fn unwind(words: &[u64]) -> Unwound {
    let mut job = Job {
        words,
        ips: Vec::new(),
        ran_out: false,
    };
    // SAFETY: the callback gets `job` back as `data`, for the duration of this call only.
    unsafe { libc::dl_iterate_phdr(Some(unwind_in_callback), (&raw mut job).cast()) };
    Unwound {
        ips: job.ips.into_boxed_slice(),
        ran_out: job.ran_out,
    }
}

struct Job<'a> {
    words: &'a [u64],
    ips: Vec<usize>,
    /// Whether the walk read past the kept stack.
    ran_out: bool,
}

/// What the inner listing fills: the tables, for as long as the lock is held.
struct Adding<'locked> {
    locked: &'locked LoaderLocked,
    tables: Tables<'locked>,
}

/// The first module's callback does all the work, with the loader's lock held (glibc's is
/// recursive: the inner listing takes it again), then stops the outer listing.
unsafe extern "C" fn unwind_in_callback(
    _info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `unwind` passes its `Job`, which outlives the listing.
    let job = unsafe { &mut *data.cast::<Job<'_>>() };
    // This callback runs with the loader's lock held, until it returns.
    let locked = LoaderLocked(());
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut adding = Adding {
            locked: &locked,
            tables: Tables::new(),
        };
        // SAFETY: the callback gets `adding` back as `data`, during this call only.
        unsafe { libc::dl_iterate_phdr(Some(add_module), (&raw mut adding).cast()) };
        (job.ips, job.ran_out) = walk(&adding.tables, job.words);
    }));
    1
}

/// Adds one module's unwind tables, when it has them.
unsafe extern "C" fn add_module(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `unwind_in_callback` passes its `Adding`; the loader passes a valid `info`
    // whose program headers and mapped memory stay valid while its lock is held, which it is
    // for as long as `adding.locked` lives.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        let adding = &mut *data.cast::<Adding<'_>>();
        if let Some(module) = module(&*info, adding.locked) {
            adding.tables.add_module(module);
        }
    }));
    0
}

/// The module's code range and unwind tables, as addresses in this process, for as long as
/// the loader's lock is held.
///
/// # Safety
///
/// `info` is the loader's, given while `locked` is: the memory it describes stays mapped.
unsafe fn module<'locked>(
    info: &libc::dl_phdr_info,
    locked: &'locked LoaderLocked,
) -> Option<Module<&'locked [u8]>> {
    let bias = info.dlpi_addr;
    // SAFETY: the loader's program headers for this module.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let range = |header: &libc::Elf64_Phdr| header.p_vaddr..header.p_vaddr + header.p_memsz;
    // The code: from the first executable segment's start to the last one's end (linkers
    // may split it).
    let code = headers
        .iter()
        .filter(|header| header.p_type == libc::PT_LOAD && header.p_flags & libc::PF_X != 0)
        .map(range);
    let text =
        code.clone().map(|segment| segment.start).min()?..code.map(|segment| segment.end).max()?;
    let hdr = headers
        .iter()
        .find(|header| header.p_type == libc::PT_GNU_EH_FRAME)
        .map(range)?;
    // SAFETY: `.eh_frame_hdr` is mapped where its program header says.
    let hdr_bytes = unsafe { mapped(locked, bias, &hdr) };
    let eh_frame_start = eh_frame_address(hdr.start, hdr_bytes)?;
    // `.eh_frame`'s length is in no program header: to the end of the segment holding it
    // (the unwinder reads only the entries the header's table points at).
    let eh_frame = headers
        .iter()
        .filter(|header| header.p_type == libc::PT_LOAD)
        .map(range)
        .find(|segment| segment.contains(&eh_frame_start))
        .map(|segment| eh_frame_start..segment.end)?;
    // SAFETY: inside a loaded segment.
    let eh_frame_bytes = unsafe { mapped(locked, bias, &eh_frame) };
    // SAFETY: the loader's name for the module, a C string (empty for the executable).
    let name = unsafe { CStr::from_ptr(info.dlpi_name) }
        .to_string_lossy()
        .into_owned();
    let sections = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text.clone()),
        eh_frame_svma: Some(eh_frame),
        eh_frame: Some(eh_frame_bytes),
        eh_frame_hdr_svma: Some(hdr),
        eh_frame_hdr: Some(hdr_bytes),
        ..Default::default()
    };
    Some(Module::new(
        name,
        bias + text.start..bias + text.end,
        bias,
        sections,
    ))
}

/// The bytes of `range` (addresses as the module states them) in this process, while the
/// loader's lock is held: no module is unloaded then.
///
/// # Safety
///
/// The range is in a loaded module's mapped segments.
unsafe fn mapped<'locked>(
    _locked: &'locked LoaderLocked,
    bias: u64,
    range: &Range<u64>,
) -> &'locked [u8] {
    // SAFETY: the caller's promise.
    unsafe {
        std::slice::from_raw_parts(
            (bias + range.start) as usize as *const u8,
            (range.end - range.start) as usize,
        )
    }
}

/// Where `.eh_frame` starts, from `.eh_frame_hdr` (at `hdr_start`): its second byte says
/// how the pointer at byte 4 is encoded; linkers write it PC-relative, 4 bytes signed.
fn eh_frame_address(hdr_start: u64, hdr: &[u8]) -> Option<u64> {
    const PCREL_SDATA4: u8 = 0x1b;
    if hdr.first() != Some(&1) || hdr.get(1) != Some(&PCREL_SDATA4) {
        return None;
    }
    let offset = i32::from_le_bytes(hdr.get(4..8)?.try_into().ok()?);
    (hdr_start + 4).checked_add_signed(offset.into())
}

/// Unwinds the kept stack: reads come from the copy only, and stop the unwind outside it.
/// Also says whether a read went past the copy's end.
fn walk(tables: &Tables<'_>, words: &[u64]) -> (Vec<usize>, bool) {
    let [pc, sp, fp, lr] = match words.get(..REGISTERS) {
        Some(&[pc, sp, fp, lr]) => [pc, sp, fp, lr],
        _ => return (Vec::new(), false),
    };
    let stack = &words[REGISTERS..];
    let mut ran_out = false;
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        let offset = address.checked_sub(sp).ok_or(())?;
        if offset % 8 != 0 {
            return Err(());
        }
        let at = usize::try_from(offset / 8).map_err(|_| ())?;
        let word = stack.get(at).copied();
        ran_out |= word.is_none();
        word.ok_or(())
    };
    #[cfg(target_arch = "x86_64")]
    let registers = {
        let _ = lr;
        UnwindRegsNative::new(pc, sp, fp)
    };
    // Return addresses signed by pointer authentication carry a hash in their high bits,
    // above every code address the modules have.
    #[cfg(target_arch = "aarch64")]
    let registers = UnwindRegsNative::new_with_ptr_auth_mask(
        framehop::aarch64::PtrAuthMask::from_max_known_address(tables.max_known_code_address()),
        lr,
        sp,
        fp,
    );
    let mut cache = CacheNative::<MayAllocateDuringUnwind>::new();
    let mut frames = tables.iter_frames(pc, registers, &mut cache, &mut read_stack);
    let mut ips = Vec::new();
    while ips.len() < MAX_FRAMES {
        match frames.next() {
            Ok(Some(frame)) => ips.push(frame.address() as usize),
            Ok(None) | Err(_) => break,
        }
    }
    (ips, ran_out)
}

#[cfg(test)]
mod tests {
    use super::super::copy::{Registers, THREAD, capture};

    #[inline(never)]
    fn spawn_site_here() -> crate::unwind::SpawnStack {
        capture(Registers::here(), THREAD)
    }

    #[test]
    fn a_kept_stack_unwinds_to_what_the_system_unwinder_sees() {
        // The test thread's bounds are learnt on its first capture.
        let kept = spawn_site_here();
        let mut live = Vec::new();
        backtrace::trace(|frame| {
            live.push(frame.ip() as usize);
            true
        });
        let unwound = kept.unwind();
        // Every function at an address, inlined ones first, as one string.
        let name = |ip: usize| {
            let mut names = Vec::new();
            backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
                names.push(symbol.name().map(|n| format!("{n:#}")).unwrap_or_default());
            });
            names.join(" < ")
        };
        let unwound: Vec<String> = unwound.iter().map(|&ip| name(ip)).collect();
        assert!(
            unwound[0].contains("spawn_site_here"),
            "starts where the registers were read: {unwound:#?}"
        );
        // From the test function up, the same frames as the live stack's, as far as the
        // copy reaches.
        let from_test = |names: &[String]| -> Vec<String> {
            let at = names
                .iter()
                .position(|name| name.contains("a_kept_stack_unwinds"))
                .expect("the test's own frame");
            names[at..].to_vec()
        };
        let live: Vec<String> = live.iter().map(|&ip| name(ip)).collect();
        let (unwound, live) = (from_test(&unwound), from_test(&live));
        assert!(unwound.len() >= 3, "{unwound:#?}");
        assert_eq!(unwound[..], live[..unwound.len()]);
    }
}
