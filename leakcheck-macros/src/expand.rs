//! What `#[leakcheck::test]` emits: the test fn, with one `#[test]`, whose body calls the
//! library (`leakcheck::__private::run_test` or `run_async_test`), and how it fits with the
//! other attributes it is stacked with (`stacked`).

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::{Errors, args, stacked, tokio_args};

/// Where the attribute stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// `#[leakcheck::test]` as the user wrote it.
    AsWritten,
    /// Below another runtime's test attribute, where `#[leakcheck::test]` moved itself (as
    /// `#[leakcheck::__checked]`): it gets that attribute's expansion, a sync fn already
    /// registered as a test or about to be.
    BelowForeignTest,
}

/// The expansion, or every error found in the arguments and the item.
pub(crate) fn expand(
    args: TokenStream2,
    item: TokenStream2,
    placement: Placement,
) -> syn::Result<TokenStream2> {
    let mut errors = Errors::default();
    let parsed = args::parse(args.clone(), &mut errors);
    let mut function: ItemFn = syn::parse2(item)?;
    if placement == Placement::AsWritten {
        // rstest or test-case below: they make one test fn a case, so leakcheck goes on
        // each.
        let leakcheck = stacked::leakcheck_attribute(&args);
        if stacked::move_below_case_generator(&mut function, leakcheck) {
            return errors.or(quote!(#function));
        }
        // Another runtime's test attribute below, on an async fn: its expansion runs the body,
        // and leakcheck checks that.
        if stacked::move_below_foreign_test(&mut function, &args) {
            return errors.or(quote!(#function));
        }
    }
    if !function.sig.inputs.is_empty() {
        errors.add(syn::Error::new(
            function.sig.inputs.span(),
            "a test takes no arguments (a parametrised test goes with #[rstest] or \
             #[test_case(..)], above or below #[leakcheck::test])",
        ));
    }
    if placement == Placement::AsWritten {
        reject_expanded_test(&function, &mut errors);
    }
    stacked::unwrap_test_log_tokio(&mut function);
    let tokio_test = tokio_args::take(&mut function, &mut errors);
    if function.sig.asyncness.is_none() {
        if let Some((_, span)) = &tokio_test {
            errors.add(syn::Error::new(*span, "#[tokio::test] needs an `async fn`"));
        }
    } else if placement == Placement::BelowForeignTest {
        errors.add(syn::Error::new(
            function.sig.ident.span(),
            "the test attribute above #[leakcheck::test] left an `async fn`: leakcheck runs \
             an async test on tokio (alone, or above #[tokio::test]), or checks the sync test \
             another runtime's attribute makes of it",
        ));
    }
    errors.finish()?;

    // One `#[test]`, whoever writes it (the ecosystem's convention, as tokio's and
    // test-log's): a plain `#[test]` below is dropped for leakcheck's own; none is added
    // when test-case has registered the case already, or another test attribute below
    // (`#[test_log::test]`) will. Below another runtime's attribute, which registered the
    // test above, one is put back only if it was below.
    let had_test = function.attrs.iter().any(stacked::is_builtin_test);
    function
        .attrs
        .retain(|attr| !stacked::is_builtin_test(attr));
    let add_test = match placement {
        Placement::AsWritten => {
            !stacked::registered_by_test_case(&function)
                && !function.attrs.iter().any(stacked::is_test_attribute_macro)
        }
        Placement::BelowForeignTest => had_test,
    };
    let should_panic = function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"));
    let options = parsed.options();

    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = function;
    let name = sig.ident.clone();
    let body_type = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let spec = quote! {
        &::leakcheck::__private::TestSpec {
            module_path: ::core::module_path!(),
            fn_name: ::core::stringify!(#name),
            should_panic: #should_panic,
            manifest_dir: ::core::option_env!("CARGO_MANIFEST_DIR"),
        }
    };
    let call = if sig.asyncness.take().is_some() {
        let runtime = tokio_test.map(|(runtime, _)| runtime).unwrap_or_default();
        let tokio = &runtime.crate_path;
        let flavor = runtime.flavor.variant();
        let constructor = runtime.flavor.constructor();
        let settings = runtime.settings(tokio);
        quote! {
            let mut builder = #tokio::runtime::Builder::#constructor();
            #(#settings)*
            let body = async #block;
            let body = ::core::pin::pin!(body);
            let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #body_type>> = body;
            ::leakcheck::__private::run_async_test(
                #spec,
                &#options,
                builder,
                ::leakcheck::__private::Flavor::#flavor,
                body,
            )
        }
    } else {
        quote! {
            ::leakcheck::__private::run_test(#spec, &#options, move || -> #body_type #block)
        }
    };
    let test = add_test.then(|| quote!(#[::core::prelude::v1::test]));
    Ok(quote! {
        #(#attrs)*
        #test
        #vis #sig {
            #call
        }
    })
}

/// Placed below `#[tokio::test]`, this attribute sees tokio's expansion: a sync fn that
/// builds a runtime and drops it, cancelling the test's tasks before anything could check
/// them. Below another runtime's test attribute (async-std's), it sees a sync fn that
/// attribute has registered as a test already: leakcheck's own `#[test]` would run it twice.
/// Both are errors that say where leakcheck goes.
fn reject_expanded_test(function: &ItemFn, errors: &mut Errors) {
    if stacked::is_expanded_tokio_test(function) {
        errors.add(syn::Error::new(
            Span::call_site(),
            "put #[leakcheck::test] above #[tokio::test] (and above \
             #[test_log::test(tokio::test)]): below it, leakcheck gets tokio's expanded test, \
             whose runtime cancels the test's tasks before they can be checked",
        ));
    }
    if let Some(runtime) = stacked::expanded_foreign_test(function) {
        errors.add(syn::Error::new(
            Span::call_site(),
            format!(
                "put #[leakcheck::test] above #[{runtime}::test]: below it, leakcheck gets \
                 {runtime}'s expanded test, which that attribute has registered as a test \
                 already (leakcheck would register it a second time). If you wrote this \
                 `{runtime}` block_on yourself, bind its result first: `let done = \
                 ..block_on(..); done`"
            ),
        ));
    }
}
