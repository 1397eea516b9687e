//! Platform predicates, defined once. Each is a cfg the library's code tests by name, so a
//! predicate is never spelled out twice (and never drifts between copies).
//!
//! - `lc_thread_hook`: the `pthread_create` hook, `/proc` and signal-captured stacks (Linux,
//!   not Miri, which cannot run the hook's FFI).
//! - `lc_name_hook`: `pthread_setname_np` is interposed too (the C library is linked
//!   dynamically: not musl, not `crt-static`).
//! - `lc_process_hook`: `posix_spawn`, `fork`, `kill` and the `exec` calls are interposed,
//!   so child processes are owned by scopes (Linux with a dynamically linked C library, not
//!   Miri: the real functions are found with `dlsym(RTLD_NEXT)`).
//! - `lc_panic_hook`: `_Unwind_RaiseException` and `pthread_join` are interposed, so a panic
//!   that unwinds out of a thread's closure, and the join that observes it, are seen (Linux
//!   with a dynamically linked C library and unwinder, not Miri, and not
//!   `--cfg leakcheck_no_panic_hook`: the way out for a binary that links a static unwinder
//!   whole, whose own `_Unwind_RaiseException` would be a duplicate symbol).
//! - `lc_coarse_clock`: the kernel's coarse monotonic clock, for spawn times (Linux, not
//!   Miri).
//! - `lc_stack_copy`: a spawn keeps a copy of the top of the spawner's stack and its registers,
//!   unwound only if the thread or task is reported (Linux on x86_64 and aarch64, the
//!   architectures whose registers `unwind` reads and `framehop` unwinds; not Miri).
//! - `lc_taskdump`: tokio's task dumps are compiled in: `--cfg tokio_unstable`, the
//!   `taskdump` feature, no `--cfg leakcheck_no_taskdump`, and a target tokio dumps on. The
//!   same target list is in Cargo.toml's target table (cargo cannot read a build script's cfgs).

use std::env;

fn main() {
    for name in [
        "lc_thread_hook",
        "lc_name_hook",
        "lc_process_hook",
        "lc_panic_hook",
        "lc_coarse_clock",
        "lc_stack_copy",
        "lc_taskdump",
    ] {
        println!("cargo::rustc-check-cfg=cfg({name})");
    }
    let has = |cfg: &str| env::var_os(format!("CARGO_CFG_{}", cfg.to_uppercase())).is_some();
    let value =
        |cfg: &str| env::var(format!("CARGO_CFG_{}", cfg.to_uppercase())).unwrap_or_default();
    let linux = value("target_os") == "linux";
    let thread_hook = linux && !has("miri");
    let static_libc = value("target_env") == "musl"
        || value("target_feature")
            .split(',')
            .any(|f| f == "crt-static");
    let copy_arch = matches!(value("target_arch").as_str(), "x86_64" | "aarch64");
    let dump_arch = matches!(
        value("target_arch").as_str(),
        "x86" | "x86_64" | "aarch64" | "s390x"
    );
    let taskdump = has("tokio_unstable")
        && !has("leakcheck_no_taskdump")
        && env::var_os("CARGO_FEATURE_TASKDUMP").is_some()
        && linux
        && dump_arch;
    if thread_hook {
        println!("cargo::rustc-cfg=lc_thread_hook");
        println!("cargo::rustc-cfg=lc_coarse_clock");
    }
    if thread_hook && !static_libc {
        println!("cargo::rustc-cfg=lc_name_hook");
        println!("cargo::rustc-cfg=lc_process_hook");
        if !has("leakcheck_no_panic_hook") {
            println!("cargo::rustc-cfg=lc_panic_hook");
        }
    }
    if thread_hook && copy_arch {
        println!("cargo::rustc-cfg=lc_stack_copy");
    }
    if taskdump {
        println!("cargo::rustc-cfg=lc_taskdump");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
