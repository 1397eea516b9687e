//! The other attributes a test is written with, told apart by their paths (never by token
//! text), and how `#[leakcheck::test]` fits with each.
//!
//! The ecosystem's convention, which leakcheck keeps: an attribute adds `#[test]` only when
//! no test attribute is already there (tokio-macros >= 2.3, test-log); rstest takes the
//! first attribute whose path ends in `test` as the test attribute and adds none then.
//!
//! - rstest, test-case below leakcheck: they turn one fn with arguments into a test per
//!   case, so leakcheck moves itself below them and goes on every case they generate.
//! - test-case above leakcheck: on a sync fn it has registered the case as a test already
//!   (its `#[test]` comes first and is expanded before leakcheck runs): leakcheck adds none.
//! - another runtime's test attribute below leakcheck on an `async fn` (`#[async_std::test]`):
//!   leakcheck goes below it, and checks the sync test it makes; above leakcheck, its
//!   expansion is recognised where it can be (async-std's), and refused with the order that
//!   works.
//! - test-log above leakcheck adds a plain `#[test]` below it, which leakcheck replaces;
//!   test-log below leakcheck adds its own, so leakcheck adds none. Below leakcheck,
//!   `#[test_log::test(tokio::test(..))]` becomes `#[test_log::test]` and leakcheck takes
//!   the tokio attribute over, as it takes a plain `#[tokio::test]` over.

use proc_macro2::TokenStream as TokenStream2;
use syn::{Attribute, Expr, ItemFn, Meta, Pat, Path, Stmt};

/// A path as names: `::tokio::test` -> `["tokio", "test"]`.
fn names(path: &Path) -> Vec<String> {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect()
}

fn last_name(path: &Path) -> Option<String> {
    path.segments
        .last()
        .map(|segment| segment.ident.to_string())
}

/// libtest's own test attribute, as users and macros write it: `#[test]`,
/// `#[core::prelude::v1::test]`, `#[::std::prelude::rust_2024::test]`.
pub(crate) fn is_builtin_test(attr: &Attribute) -> bool {
    let Meta::Path(path) = &attr.meta else {
        return false;
    };
    if path
        .segments
        .iter()
        .any(|segment| !segment.arguments.is_none())
    {
        return false;
    }
    match names(path).as_slice() {
        [test] => path.leading_colon.is_none() && test == "test",
        [krate, prelude, _edition, test] => {
            (krate == "core" || krate == "std") && prelude == "prelude" && test == "test"
        }
        _ => false,
    }
}

/// Another crate's test attribute (`#[test_log::test]`, `#[sqlx::test]`): a path ending in
/// `test` that is neither libtest's nor tokio's (which leakcheck takes over). By the
/// convention it adds `#[test]` itself.
pub(crate) fn is_test_attribute_macro(attr: &Attribute) -> bool {
    last_name(attr.path()).as_deref() == Some("test")
        && !is_builtin_test(attr)
        && !is_tokio_test_meta(&attr.meta)
}

/// `tokio::test`, `::tokio::test(..)`, or a renamed tokio's, `tokio1::test(crate =
/// "tokio1", ..)`.
pub(crate) fn is_tokio_test_meta(meta: &Meta) -> bool {
    match names(meta.path()).as_slice() {
        [krate, test] if test == "test" => krate == "tokio" || names_its_crate(meta),
        _ => false,
    }
}

/// Whether `#[x::test(..)]` has a `crate = ".."` argument.
fn names_its_crate(meta: &Meta) -> bool {
    let Meta::List(list) = meta else {
        return false;
    };
    list.parse_args_with(syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated)
        .map(|args| {
            args.iter()
                .any(|arg| matches!(arg, Meta::NameValue(pair) if pair.path.is_ident("crate")))
        })
        .unwrap_or(false)
}

/// test-case's attributes, as test-case itself recognises them (`case` is its alias; it is
/// rstest's only where `#[rstest]` is there too).
fn is_test_case(attr: &Attribute, rstest_present: bool) -> bool {
    let path = attr.path();
    if path.leading_colon.is_some() {
        return false;
    }
    match names(path).as_slice() {
        [name] => {
            name == "test_case" || name == "test_matrix" || (name == "case" && !rstest_present)
        }
        [krate, name] => {
            krate == "test_case" && ["test_case", "test_matrix", "case"].contains(&name.as_str())
        }
        _ => false,
    }
}

fn is_rstest(attr: &Attribute) -> bool {
    last_name(attr.path()).as_deref() == Some("rstest")
}

/// Below leakcheck, an attribute that generates one test per case (`#[rstest]`, or the
/// first `#[test_case(..)]`/`#[test_matrix(..)]`): leakcheck (`leakcheck`, itself with its
/// arguments) goes right below it, so that each generated case gets it, above the case's
/// other attributes (a `#[tokio::test]` it takes over). rstest gives the attributes written
/// before a `#[case]` to that case alone: there, leakcheck goes after the last `#[case]`.
/// Returns whether there was one.
pub(crate) fn move_below_case_generator(function: &mut ItemFn, leakcheck: Attribute) -> bool {
    let rstest_present = function.attrs.iter().any(is_rstest);
    let Some(index) = function
        .attrs
        .iter()
        .position(|attr| is_rstest(attr) || is_test_case(attr, rstest_present))
    else {
        return false;
    };
    let generator = function.attrs.remove(index);
    let below = if is_rstest(&generator) {
        function
            .attrs
            .iter()
            .rposition(|attr| {
                attr.path()
                    .segments
                    .first()
                    .is_some_and(|first| first.ident == "case")
            })
            .map_or(0, |last_case| last_case + 1)
    } else {
        0
    };
    function.attrs.insert(below, leakcheck);
    function.attrs.insert(0, generator);
    true
}

/// Whether test-case generated this fn, a case of a sync test, and so registered it as a
/// test already: test-case puts `#[test]` first on it, expanded before leakcheck, and
/// leaves no trace of it on the fn. Its marks: the `#[allow(clippy::bool_assert_comparison)]`
/// test-case adds to every case, and a body that starts `let _result = super::test_fn(..)`.
pub(crate) fn registered_by_test_case(function: &ItemFn) -> bool {
    let allows_bool_assert = function.attrs.iter().any(|attr| {
        attr.path().is_ident("allow")
            && attr
                .parse_args_with(
                    syn::punctuated::Punctuated::<Path, syn::Token![,]>::parse_terminated,
                )
                .is_ok_and(|lints| {
                    lints
                        .iter()
                        .any(|lint| names(lint) == ["clippy", "bool_assert_comparison"])
                })
    });
    let calls_the_test_fn = match function.block.stmts.first() {
        Some(Stmt::Local(local)) => {
            let binds_result =
                matches!(&local.pat, Pat::Ident(binding) if binding.ident == "_result");
            let calls_super = local.init.as_ref().is_some_and(|init| {
                matches!(&*init.expr, Expr::Call(call) if matches!(&*call.func,
                    Expr::Path(callee) if callee.path.segments.first()
                        .is_some_and(|first| first.ident == "super")))
            });
            binds_result && calls_super
        }
        _ => false,
    };
    function.sig.asyncness.is_none() && allows_bool_assert && calls_the_test_fn
}

/// Whether this is `#[tokio::test]`'s expansion: a sync fn with the `#[test]` tokio adds,
/// whose body starts `let body = async { .. }` (the test's body, which tokio then
/// `block_on`s on a runtime it drops).
pub(crate) fn is_expanded_tokio_test(function: &ItemFn) -> bool {
    let first_is_async_body = match function.block.stmts.first() {
        Some(Stmt::Local(local)) => {
            matches!(&local.pat, Pat::Ident(binding) if binding.ident == "body")
                && local
                    .init
                    .as_ref()
                    .is_some_and(|init| matches!(&*init.expr, Expr::Async(_)))
        }
        _ => false,
    };
    function.sig.asyncness.is_none()
        && function.attrs.iter().any(is_builtin_test)
        && first_is_async_body
}

/// `#[test_log::test(tokio::test(..))]` below leakcheck: becomes `#[test_log::test]`
/// (test-log still sets up the logger, and adds the `#[test]`), and the tokio attribute is
/// put below it for leakcheck to take over, as it takes `#[tokio::test(..)]` over.
pub(crate) fn unwrap_test_log_tokio(function: &mut ItemFn) {
    let Some(index) = function.attrs.iter().position(|attr| {
        last_name(attr.path()).as_deref() == Some("test")
            && !is_tokio_test_meta(&attr.meta)
            && wrapped_tokio_test(attr).is_some()
    }) else {
        return;
    };
    let attr = &mut function.attrs[index];
    let inner = wrapped_tokio_test(attr).expect("checked above");
    let mut tokio = attr.clone();
    tokio.meta = inner;
    attr.meta = Meta::Path(attr.path().clone());
    function.attrs.insert(index + 1, tokio);
}

/// The `tokio::test(..)` in `#[x::test(tokio::test(..))]`.
fn wrapped_tokio_test(attr: &Attribute) -> Option<Meta> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let inner: Meta = syn::parse2::<Meta>(list.tokens.clone()).ok()?;
    is_tokio_test_meta(&inner).then_some(inner)
}

/// Below leakcheck on an `async fn`, another runtime's test attribute (`#[async_std::test]`,
/// `#[sqlx::test]`: a path ending in `test` that is neither libtest's, tokio's, nor
/// test-log's, which leakcheck takes over or goes above): it turns the async fn into a sync
/// test that runs the body on its runtime. leakcheck goes right below it, as
/// `#[leakcheck::__checked(args)]`, and checks that sync test's threads. The name does not
/// end in `test`, so an attribute that adds `#[test]` only when no test attribute follows
/// still adds it. Returns whether there was one.
pub(crate) fn move_below_foreign_test(function: &mut ItemFn, args: &TokenStream2) -> bool {
    if function.sig.asyncness.is_none() {
        return false;
    }
    let Some(index) = function
        .attrs
        .iter()
        .position(|attr| is_test_attribute_macro(attr) && !is_test_log(attr))
    else {
        return false;
    };
    let checked: Attribute = if args.is_empty() {
        syn::parse_quote!(#[::leakcheck::__checked])
    } else {
        syn::parse_quote!(#[::leakcheck::__checked(#args)])
    };
    function.attrs.insert(index + 1, checked);
    true
}

fn is_test_log(attr: &Attribute) -> bool {
    names(attr.path())
        .first()
        .is_some_and(|krate| krate == "test_log")
}

/// Runtimes whose test attribute, above leakcheck, leaves a body leakcheck can tell:
/// `KRATE::...::block_on(async { .. })` alone (async-std's, through async-attributes).
const RUNTIMES_THAT_BLOCK_ON: &[&str] = &["async_std"];

/// Whether this is another runtime's expanded test (the runtime's crate): a sync fn whose
/// body is one call of `KRATE::...::block_on` with an async block, as `#[async_std::test]`
/// writes it, after registering it with a `#[test]` of its own above leakcheck.
pub(crate) fn expanded_foreign_test(function: &ItemFn) -> Option<String> {
    if function.sig.asyncness.is_some() || function.attrs.iter().any(is_builtin_test) {
        return None;
    }
    let [Stmt::Expr(Expr::Call(call), None)] = function.block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let path = names(&callee.path);
    let runtime = path.first()?;
    let blocks_on = path.last().is_some_and(|last| last == "block_on");
    let on_async = matches!(call.args.first(), Some(Expr::Async(_))) && call.args.len() == 1;
    (blocks_on && on_async && RUNTIMES_THAT_BLOCK_ON.contains(&runtime.as_str()))
        .then(|| runtime.clone())
}

/// `#[leakcheck::test(args)]` as leakcheck re-emits itself.
pub(crate) fn leakcheck_attribute(args: &TokenStream2) -> Attribute {
    if args.is_empty() {
        syn::parse_quote!(#[::leakcheck::test])
    } else {
        syn::parse_quote!(#[::leakcheck::test(#args)])
    }
}
