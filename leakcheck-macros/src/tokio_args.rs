//! `#[tokio::test(..)]`'s arguments, taken over by `#[leakcheck::test]` above it: parsed
//! the way tokio parses them, every wrong one reported at once, pointing at itself, with
//! tokio's own words for what tokio refuses.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote_spanned;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, LitStr, Meta, Token};

use crate::Errors;
use crate::stacked;

/// How `#[tokio::test(..)]` asked for the runtime to be built.
pub(crate) struct RuntimeArgs {
    pub(crate) crate_path: syn::Path,
    pub(crate) flavor: Flavor,
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
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
    Local,
}

impl Flavor {
    pub(crate) fn variant(self) -> proc_macro2::Ident {
        let name = match self {
            Flavor::CurrentThread => "CurrentThread",
            Flavor::MultiThread => "MultiThread",
            Flavor::Local => "Local",
        };
        proc_macro2::Ident::new(name, Span::call_site())
    }

    pub(crate) fn constructor(self) -> proc_macro2::Ident {
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
    pub(crate) fn settings(&self, tokio: &syn::Path) -> Vec<TokenStream2> {
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
pub(crate) fn take(function: &mut ItemFn, errors: &mut Errors) -> Option<(RuntimeArgs, Span)> {
    let index = function.attrs.iter().position(is_tokio_test)?;
    let attr = function.attrs.remove(index);
    let span = attr.meta.span();
    let metas = match &attr.meta {
        Meta::Path(_) => Punctuated::new(),
        Meta::List(list) => {
            match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
                Ok(metas) => metas,
                Err(error) => {
                    errors.add(error);
                    return None;
                }
            }
        }
        Meta::NameValue(pair) => {
            errors.add(syn::Error::new(pair.span(), "expected #[tokio::test(..)]"));
            return None;
        }
    };
    let mut runtime = RuntimeArgs::default();
    let mut flavor_given = false;
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            errors.add(syn::Error::new(
                meta.span(),
                "expected `name = value`: flavor, worker_threads, start_paused, crate, \
                 unhandled_panic or name",
            ));
            continue;
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = match &pair.value {
            Expr::Lit(ExprLit { lit, .. }) => lit,
            other => {
                errors.add(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a literal"),
                ));
                continue;
            }
        };
        match (key.as_str(), value) {
            ("flavor", Lit::Str(flavor)) => {
                runtime.flavor = match flavor.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    "local" => Flavor::Local,
                    other => {
                        errors.add(syn::Error::new(
                            flavor.span(),
                            format!(
                                "no such runtime flavor `{other}`: expected \"current_thread\", \
                                 \"multi_thread\" or \"local\""
                            ),
                        ));
                        continue;
                    }
                };
                flavor_given = true;
            }
            ("worker_threads", Lit::Int(threads)) => match threads.base10_parse::<usize>() {
                Ok(0) => errors.add(syn::Error::new(
                    threads.span(),
                    "`worker_threads` may not be 0",
                )),
                Ok(_) => runtime.worker_threads = Some(threads.clone()),
                Err(error) => errors.add(error),
            },
            ("start_paused", Lit::Bool(paused)) => runtime.start_paused = Some(paused.clone()),
            ("crate", Lit::Str(path)) => match path.parse() {
                Ok(path) => runtime.crate_path = path,
                Err(error) => errors.add(error),
            },
            ("unhandled_panic", Lit::Str(policy)) => {
                let variant = match policy.value().as_str() {
                    "ignore" => "Ignore",
                    "shutdown_runtime" => "ShutdownRuntime",
                    other => {
                        errors.add(syn::Error::new(
                            policy.span(),
                            format!(
                                "no such `unhandled_panic` behavior `{other}`: expected \
                                 \"ignore\" or \"shutdown_runtime\""
                            ),
                        ));
                        continue;
                    }
                };
                runtime.unhandled_panic = Some(proc_macro2::Ident::new(variant, policy.span()));
            }
            ("name", Lit::Str(name)) => runtime.name = Some(name.clone()),
            ("flavor" | "crate" | "unhandled_panic" | "name", other) => {
                errors.add(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a string literal"),
                ));
                continue;
            }
            ("worker_threads", other) => {
                errors.add(syn::Error::new(
                    other.span(),
                    "`worker_threads` takes a number",
                ));
                continue;
            }
            ("start_paused", other) => {
                errors.add(syn::Error::new(
                    other.span(),
                    "`start_paused` takes `true` or `false`",
                ));
                continue;
            }
            _ => {
                errors.add(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown #[tokio::test] argument `{key}`: expected flavor, \
                         worker_threads, start_paused, crate, unhandled_panic or name"
                    ),
                ));
                continue;
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
                errors.add(syn::Error::new(
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
            errors.add(syn::Error::new(threads.span(), why));
        }
    }
    Some((runtime, span))
}

/// `#[tokio::test]`, `#[::tokio::test]`, or a renamed tokio's (`#[tokio1::test(crate =
/// "tokio1")]`).
fn is_tokio_test(attr: &syn::Attribute) -> bool {
    stacked::is_tokio_test_meta(&attr.meta)
}
