//! Expansion snapshots: what `#[leakcheck::test]` turns each kind of test into.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;

use crate::expand;

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
            ignore_spawn = "my_crate::telemetry::start"
        ),
        quote! {
            fn exporter_stops() {
                start_exporter();
            }
        },
    ));
}
