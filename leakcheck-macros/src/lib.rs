//! `#[leakcheck::test]`: parse and check the arguments, then emit a `#[test]` fn whose body
//! calls `leakcheck::__private::run_test`. All behaviour lives in the library.

use leakcheck_schema::rules::RuleKind;
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, LitStr, Meta, Token};

mod stacked;

/// Leak-checks a test. See the `leakcheck` crate for the arguments.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// The arguments, checked.
#[derive(Default)]
struct Args {
    grace: Option<(std::time::Duration, Span)>,
    timeout: Option<(std::time::Duration, Span)>,
    ignore_threads: Vec<LitStr>,
    ignore_spawns: Vec<LitStr>,
    ignore_tops: Vec<LitStr>,
}

fn parse_args(args: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut parsed = Args::default();
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `name = \"value\"`: grace, timeout, ignore_thread, ignore_spawn or \
                 ignore_top",
            ));
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = string_value(&pair.value, &key)?;
        match key.as_str() {
            "grace" | "timeout" => {
                let slot = match key.as_str() {
                    "grace" => &mut parsed.grace,
                    _ => &mut parsed.timeout,
                };
                if slot.is_some() {
                    return Err(syn::Error::new(
                        pair.span(),
                        format!("`{key}` is given twice"),
                    ));
                }
                let duration =
                    leakcheck_schema::duration::parse(&value.value()).map_err(|error| {
                        syn::Error::new(
                            value.span(),
                            format!(
                                "`{key}` must be a duration such as \"300ms\" or \"2s\": {error}"
                            ),
                        )
                    })?;
                *slot = Some((duration, value.span()));
            }
            "ignore_thread" | "ignore_spawn" | "ignore_top" => {
                let (kind, rules) = match key.as_str() {
                    "ignore_thread" => (RuleKind::Thread, &mut parsed.ignore_threads),
                    "ignore_spawn" => (RuleKind::Spawn, &mut parsed.ignore_spawns),
                    _ => (RuleKind::Top, &mut parsed.ignore_tops),
                };
                // The library's own grammar: what compiles here is accepted at run time.
                if let Err(error) = kind.parse(&value.value()) {
                    return Err(syn::Error::new(value.span(), error));
                }
                rules.push(value);
            }
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown argument `{key}`: expected grace, timeout, ignore_thread, \
                         ignore_spawn or ignore_top"
                    ),
                ));
            }
        }
    }
    Ok(parsed)
}

fn string_value(value: &Expr, key: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(string),
            ..
        }) => Ok(string.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string literal, such as {key} = \"...\""),
        )),
    }
}

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let parsed = parse_args(args.clone())?;
    let mut function: ItemFn = syn::parse2(item)?;
    // rstest or test-case below: they make one test fn a case, so leakcheck goes on each.
    if stacked::move_below_case_generator(&mut function, stacked::leakcheck_attribute(&args)) {
        return Ok(quote!(#function));
    }
    if !function.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "a test takes no arguments (a parametrised test goes with #[rstest] or \
             #[test_case(..)], above or below #[leakcheck::test])",
        ));
    }
    reject_expanded_tokio_test(&function)?;
    stacked::unwrap_test_log_tokio(&mut function);
    let tokio_test = take_tokio_test(&mut function)?;
    if function.sig.asyncness.is_none() {
        if let Some((_, span)) = tokio_test {
            return Err(syn::Error::new(span, "#[tokio::test] needs an `async fn`"));
        }
    }
    // One `#[test]`, whoever writes it (the ecosystem's convention, as tokio's and
    // test-log's): a plain `#[test]` below is dropped for leakcheck's own; none is added
    // when test-case has registered the case already, or another test attribute below
    // (`#[test_log::test]`) will.
    function
        .attrs
        .retain(|attr| !stacked::is_builtin_test(attr));
    let add_test = !stacked::registered_by_test_case(&function)
        && !function.attrs.iter().any(stacked::is_test_attribute_macro);
    let should_panic = function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"));

    let mut options = quote!(::leakcheck::Options::new());
    if let Some((grace, span)) = parsed.grace {
        let nanos = grace.as_nanos() as u64;
        options = quote_spanned!(span=> #options.grace(::core::time::Duration::from_nanos(#nanos)));
    }
    if let Some((timeout, span)) = parsed.timeout {
        let nanos = timeout.as_nanos() as u64;
        options =
            quote_spanned!(span=> #options.timeout(::core::time::Duration::from_nanos(#nanos)));
    }
    for pattern in &parsed.ignore_threads {
        options = quote!(#options.ignore_thread(#pattern));
    }
    for substring in &parsed.ignore_spawns {
        options = quote!(#options.ignore_spawn(#substring));
    }
    for substring in &parsed.ignore_tops {
        options = quote!(#options.ignore_top(#substring));
    }

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
/// them. Checking only threads there would silently do less, so it is an error.
fn reject_expanded_tokio_test(function: &ItemFn) -> syn::Result<()> {
    if stacked::is_expanded_tokio_test(function) {
        return Err(syn::Error::new(
            Span::call_site(),
            "put #[leakcheck::test] above #[tokio::test] (and above \
             #[test_log::test(tokio::test)]): below it, leakcheck gets tokio's expanded test, \
             whose runtime cancels the test's tasks before they can be checked",
        ));
    }
    Ok(())
}

/// How `#[tokio::test(..)]` asked for the runtime to be built.
struct RuntimeArgs {
    crate_path: syn::Path,
    flavor: Flavor,
    worker_threads: Option<syn::LitInt>,
    start_paused: Option<syn::LitBool>,
    unhandled_panic: Option<syn::Ident>,
    name: Option<LitStr>,
}

impl Default for RuntimeArgs {
    fn default() -> Self {
        RuntimeArgs {
            crate_path: syn::parse_quote!(::tokio),
            flavor: Flavor::CurrentThread,
            worker_threads: None,
            start_paused: None,
            unhandled_panic: None,
            name: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread,
    Local,
}

impl Flavor {
    fn variant(self) -> proc_macro2::Ident {
        let name = match self {
            Flavor::CurrentThread => "CurrentThread",
            Flavor::MultiThread => "MultiThread",
            Flavor::Local => "Local",
        };
        proc_macro2::Ident::new(name, Span::call_site())
    }

    fn constructor(self) -> proc_macro2::Ident {
        let name = match self {
            Flavor::CurrentThread | Flavor::Local => "new_current_thread",
            Flavor::MultiThread => "new_multi_thread",
        };
        proc_macro2::Ident::new(name, Span::call_site())
    }
}

impl RuntimeArgs {
    /// The builder calls, each spanned at the argument that asked for it, so that an
    /// error from tokio (say `start_paused` without its `test-util` feature) points there.
    fn settings(&self, tokio: &syn::Path) -> Vec<TokenStream2> {
        let mut settings = Vec::new();
        if let Some(threads) = &self.worker_threads {
            settings.push(quote_spanned!(threads.span()=> builder.worker_threads(#threads);));
        }
        if let Some(paused) = &self.start_paused {
            settings.push(quote_spanned!(paused.span()=> builder.start_paused(#paused);));
        }
        if let Some(policy) = &self.unhandled_panic {
            settings.push(quote_spanned!(policy.span()=>
                builder.unhandled_panic(#tokio::runtime::UnhandledPanic::#policy);
            ));
        }
        if let Some(name) = &self.name {
            settings.push(quote_spanned!(name.span()=> builder.name(#name);));
        }
        settings
    }
}

/// Removes `#[tokio::test(..)]` from the function and parses its arguments the way tokio
/// does, with errors pointing at the argument.
fn take_tokio_test(function: &mut ItemFn) -> syn::Result<Option<(RuntimeArgs, Span)>> {
    let Some(index) = function.attrs.iter().position(is_tokio_test) else {
        return Ok(None);
    };
    let attr = function.attrs.remove(index);
    let span = attr.meta.span();
    let metas = match &attr.meta {
        Meta::Path(_) => Punctuated::new(),
        Meta::List(list) => {
            list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?
        }
        Meta::NameValue(pair) => {
            return Err(syn::Error::new(pair.span(), "expected #[tokio::test(..)]"));
        }
    };
    let mut runtime = RuntimeArgs::default();
    let mut flavor_given = false;
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `name = value`: flavor, worker_threads, start_paused, crate, \
                 unhandled_panic or name",
            ));
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = match &pair.value {
            Expr::Lit(ExprLit { lit, .. }) => lit,
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a literal"),
                ));
            }
        };
        match (key.as_str(), value) {
            ("flavor", Lit::Str(flavor)) => {
                runtime.flavor = match flavor.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    "local" => Flavor::Local,
                    other => {
                        return Err(syn::Error::new(
                            flavor.span(),
                            format!(
                                "no such runtime flavor `{other}`: expected \"current_thread\", \
                                 \"multi_thread\" or \"local\""
                            ),
                        ));
                    }
                };
                flavor_given = true;
            }
            ("worker_threads", Lit::Int(threads)) => {
                if threads.base10_parse::<usize>()? == 0 {
                    return Err(syn::Error::new(
                        threads.span(),
                        "`worker_threads` may not be 0",
                    ));
                }
                runtime.worker_threads = Some(threads.clone());
            }
            ("start_paused", Lit::Bool(paused)) => runtime.start_paused = Some(paused.clone()),
            ("crate", Lit::Str(path)) => runtime.crate_path = path.parse()?,
            ("unhandled_panic", Lit::Str(policy)) => {
                let variant = match policy.value().as_str() {
                    "ignore" => "Ignore",
                    "shutdown_runtime" => "ShutdownRuntime",
                    other => {
                        return Err(syn::Error::new(
                            policy.span(),
                            format!(
                                "no such `unhandled_panic` behavior `{other}`: expected \
                                 \"ignore\" or \"shutdown_runtime\""
                            ),
                        ));
                    }
                };
                runtime.unhandled_panic = Some(proc_macro2::Ident::new(variant, policy.span()));
            }
            ("name", Lit::Str(name)) => runtime.name = Some(name.clone()),
            ("flavor" | "crate" | "unhandled_panic" | "name", other) => {
                return Err(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a string literal"),
                ));
            }
            ("worker_threads", other) => {
                return Err(syn::Error::new(
                    other.span(),
                    "`worker_threads` takes a number",
                ));
            }
            ("start_paused", other) => {
                return Err(syn::Error::new(
                    other.span(),
                    "`start_paused` takes `true` or `false`",
                ));
            }
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown #[tokio::test] argument `{key}`: expected flavor, \
                         worker_threads, start_paused, crate, unhandled_panic or name"
                    ),
                ));
            }
        }
    }
    // tokio's own rules, with tokio's words: only a current_thread runtime can start paused
    // or shut down on a task's panic.
    if runtime.flavor == Flavor::MultiThread {
        let macro_name = attr
            .path()
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect::<Vec<_>>()
            .join("::");
        let current_thread_only = [
            (
                "start_paused",
                runtime.start_paused.as_ref().map(Spanned::span),
            ),
            (
                "unhandled_panic",
                runtime.unhandled_panic.as_ref().map(Spanned::span),
            ),
        ];
        for (option, span) in current_thread_only {
            if let Some(span) = span {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "The `{option}` option requires the `current_thread` runtime flavor. \
                         Use `#[{macro_name}(flavor = \"current_thread\")]`"
                    ),
                ));
            }
        }
    }
    if let Some(threads) = &runtime.worker_threads {
        if runtime.flavor != Flavor::MultiThread {
            let why = if flavor_given {
                "`worker_threads` needs `flavor = \"multi_thread\"`"
            } else {
                "`worker_threads` needs `flavor = \"multi_thread\"` (the default is current_thread)"
            };
            return Err(syn::Error::new(threads.span(), why));
        }
    }
    Ok(Some((runtime, span)))
}

/// `#[tokio::test]`, `#[::tokio::test]`, or a renamed tokio's (`#[tokio1::test(crate =
/// "tokio1")]`).
fn is_tokio_test(attr: &syn::Attribute) -> bool {
    stacked::is_tokio_test_meta(&attr.meta)
}

#[cfg(test)]
mod tests;
