//! `#[leakcheck::test]`: parse and check the arguments, then emit a `#[test]` fn whose body
//! calls `leakcheck::__private::run_test`. All behaviour lives in the library.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, LitStr, Meta, Token};

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
    ignore_threads: Vec<LitStr>,
    ignore_spawns: Vec<LitStr>,
}

fn parse_args(args: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut parsed = Args::default();
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `name = \"value\"`: grace, ignore_thread or ignore_spawn",
            ));
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = string_value(&pair.value, &key)?;
        match key.as_str() {
            "grace" => {
                if parsed.grace.is_some() {
                    return Err(syn::Error::new(pair.span(), "`grace` is given twice"));
                }
                let grace = humantime::parse_duration(&value.value()).map_err(|error| {
                    syn::Error::new(
                        value.span(),
                        format!("`grace` must be a duration such as \"300ms\" or \"2s\": {error}"),
                    )
                })?;
                parsed.grace = Some((grace, value.span()));
            }
            "ignore_thread" => {
                if let Err(error) = glob::Pattern::new(&value.value()) {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("`ignore_thread` must be a glob such as \"pool-*\": {error}"),
                    ));
                }
                parsed.ignore_threads.push(value);
            }
            "ignore_spawn" => {
                if value.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        value.span(),
                        "`ignore_spawn` must be a non-empty part of a function path or file, \
                         such as \"my_crate::telemetry::start\"",
                    ));
                }
                parsed.ignore_spawns.push(value);
            }
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown argument `{key}`: expected grace, ignore_thread or ignore_spawn"
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
    let args = parse_args(args)?;
    let mut function: ItemFn = syn::parse2(item)?;
    if let Some(asyncness) = function.sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "async tests are not supported by this version of leakcheck yet",
        ));
    }
    if !function.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "a test takes no arguments",
        ));
    }
    // A `#[test]` the user also wrote would register the test twice.
    function.attrs.retain(|attr| !attr.path().is_ident("test"));
    let should_panic = function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"));

    let mut options = quote!(::leakcheck::Options::new());
    if let Some((grace, span)) = args.grace {
        let nanos = grace.as_nanos() as u64;
        options = quote_spanned!(span=> #options.grace(::core::time::Duration::from_nanos(#nanos)));
    }
    for pattern in &args.ignore_threads {
        options = quote!(#options.ignore_thread(#pattern));
    }
    for substring in &args.ignore_spawns {
        options = quote!(#options.ignore_spawn(#substring));
    }

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let output = &sig.output;
    let body_type = match output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis #sig {
            ::leakcheck::__private::run_test(
                &::leakcheck::__private::TestSpec {
                    module_path: ::core::module_path!(),
                    fn_name: ::core::stringify!(#name),
                    should_panic: #should_panic,
                },
                &#options,
                move || -> #body_type #block,
            )
        }
    })
}
