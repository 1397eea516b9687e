//! Expansion snapshots: what `#[leakcheck::test]` turns each kind of test into.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;

use crate::expand::{Placement, expand as expand_with};

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    expand_with(args, item, Placement::AsWritten)
}

/// `#[leakcheck::test(args)] item`, expanded and formatted as Rust source.
fn expanded(args: TokenStream2, item: TokenStream2) -> String {
    let tokens = expand(args, item).expect("the macro accepts this test");
    let file = syn::parse2::<syn::File>(tokens).expect("the expansion is a Rust file");
    prettyplease::unparse(&file)
}

/// A sync test runs its body in a `move` closure passed to `run_test`.
#[test]
fn sync_test() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            fn pool_shuts_down() {
                let pool = Pool::new(4);
                pool.shutdown();
            }
        },
    ));
}

/// An `async fn` alone gets tokio's default runtime: current_thread, no settings.
#[test]
fn async_test_defaults_to_current_thread() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            async fn client_closes() {}
        },
    ));
}

/// `#[tokio::test(..)]` below is consumed: its flavor and worker_threads go to the builder.
#[test]
fn tokio_multi_thread_with_worker_threads() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn server_stops() {
                let server = Server::start().await;
                server.stop().await;
            }
        },
    ));
}

/// `-> Result<(), String>` is kept as the signature and as the closure's return type.
#[test]
fn result_return_type() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            fn config_loads() -> Result<(), String> {
                load_config()?;
                Ok(())
            }
        },
    ));
}

/// `#[should_panic(expected = "boom")]` stays on the fn and sets `should_panic: true`.
#[test]
fn should_panic_expected() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[should_panic(expected = "boom")]
            fn worker_panics() {
                panic!("boom");
            }
        },
    ));
}

/// `crate = "tokio1"` makes the runtime builder's path `tokio1::runtime::Builder`.
#[test]
fn tokio_crate_renamed() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[tokio::test(crate = "tokio1")]
            async fn renamed_tokio_runs() {
                tokio1::task::yield_now().await;
            }
        },
    ));
}

/// grace, ignore_thread and ignore_spawn become `Options` builder calls, in order.
#[test]
fn leakcheck_args() {
    insta::assert_snapshot!(expanded(
        quote!(
            grace = "300ms",
            ignore_thread = "metrics-*",
            ignore_spawn = "my_crate::telemetry::start",
            ignore_process = "sleep",
            zombies = "fail",
            lost_panics = "warn",
            kill_leaked_processes = true
        ),
        quote! {
            fn exporter_stops() {
                start_exporter();
            }
        },
    ));
}

/// Above `#[rstest]`, leakcheck re-emits itself below it, after the last `#[case]` (rstest
/// gives attributes written before a `#[case]` to that case alone) and above the
/// `#[tokio::test]`, with its arguments: every generated case is leak-checked on its own.
#[test]
fn above_rstest() {
    insta::assert_snapshot!(expanded(
        quote!(grace = "300ms"),
        quote! {
            #[rstest]
            #[case(1)]
            #[case::two(2)]
            #[tokio::test(flavor = "multi_thread")]
            async fn parses(#[case] input: u32) {
                assert!(input > 0);
            }
        },
    ));
}

/// Above `#[test_case(..)]`, leakcheck goes right below the first one, so test-case puts it
/// on every case.
#[test]
fn above_test_case() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[test_case(1)]
            #[test_case(2)]
            fn parses(input: u32) {
                assert!(input > 0);
            }
        },
    ));
}

/// Below `#[test_case(..)]` on a sync fn, leakcheck gets a case test-case has registered as
/// a test already: no second `#[test]`.
#[test]
fn below_test_case() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[allow(clippy::bool_assert_comparison)]
            #[allow(unknown_lints, clippy::redundant_test_prefix)]
            fn test_case_1_1() {
                let _result = super::parses(1);
                _result
            }
        },
    ));
}

/// Above `#[test_log::test(tokio::test(..))]`, leakcheck builds tokio's runtime and leaves
/// `#[test_log::test]`, which sets the logger up and adds the `#[test]`.
#[test]
fn above_test_log_tokio_test() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
            async fn logs() {
                log::info!("hello");
            }
        },
    ));
}

/// Below `#[test_log::test]`, leakcheck gets test-log's `#[::core::prelude::v1::test]` and
/// keeps one test attribute, its own.
#[test]
fn below_test_log() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            #[::core::prelude::v1::test]
            fn logs() {
                log::info!("hello");
            }
        },
    ));
}

/// A test may return `ExitCode`, as libtest allows: the closure returns it.
#[test]
fn exit_code_return_type() {
    insta::assert_snapshot!(expanded(
        quote!(),
        quote! {
            fn exits() -> std::process::ExitCode {
                std::process::ExitCode::SUCCESS
            }
        },
    ));
}

/// Only a current_thread runtime can start paused, as tokio says.
#[test]
fn start_paused_needs_current_thread() {
    let error = expand(
        quote!(),
        quote! {
            #[tokio::test(flavor = "multi_thread", start_paused = true)]
            async fn paused() {}
        },
    )
    .expect_err("an error");
    assert_eq!(
        error.to_string(),
        "The `start_paused` option requires the `current_thread` runtime flavor. Use \
         `#[tokio::test(flavor = \"current_thread\")]`"
    );
}

/// Above another runtime's test attribute on an `async fn`, leakcheck moves itself below it,
/// as `__checked`, with its arguments.
#[test]
fn above_async_std_test() {
    insta::assert_snapshot!(expanded(
        quote!(grace = "1s"),
        quote! {
            #[async_std::test]
            async fn serves() {
                let server = Server::start().await;
                server.stop().await;
            }
        },
    ));
}

/// What `__checked` makes of async-std's expansion: a sync test, whose `#[test]` async-std
/// put above (so none is added).
#[test]
fn checked_below_async_std_test() {
    let tokens = expand_with(
        quote!(grace = "1s"),
        quote! {
            fn serves() {
                async_std::task::block_on(async {
                    let server = Server::start().await;
                    server.stop().await;
                })
            }
        },
        Placement::BelowForeignTest,
    )
    .expect("the macro accepts this test");
    let file = syn::parse2::<syn::File>(tokens).expect("the expansion is a Rust file");
    insta::assert_snapshot!(prettyplease::unparse(&file));
}

/// Below `#[async_std::test]`, leakcheck sees its expansion, already registered: an error
/// that says where leakcheck goes.
#[test]
fn below_async_std_test_is_refused() {
    let error = expand(
        quote!(),
        quote! {
            fn serves() {
                async_std::task::block_on(async { serve().await })
            }
        },
    )
    .expect_err("an error");
    assert!(
        error
            .to_string()
            .starts_with("put #[leakcheck::test] above #[async_std::test]"),
        "{error}"
    );
}

/// Every wrong argument is reported at once, each at its place.
#[test]
fn every_error_is_reported_at_once() {
    let error = expand(
        quote!(grace = "soon", ignore_spawn = "", colour = "red"),
        quote! {
            #[tokio::test(flavor = "sideways", worker_threads = 0)]
            async fn wrong() {}
        },
    )
    .expect_err("errors");
    let messages: Vec<String> = error.into_iter().map(|error| error.to_string()).collect();
    assert_eq!(messages.len(), 5, "{messages:#?}");
    for expected in [
        "`grace` must be a duration",
        "`ignore_spawn`: an empty rule",
        "unknown argument `colour`",
        "no such runtime flavor `sideways`",
        "`worker_threads` may not be 0",
    ] {
        assert!(
            messages.iter().any(|message| message.contains(expected)),
            "{expected}: {messages:#?}"
        );
    }
}
