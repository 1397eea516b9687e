//! `#[leakcheck::test(args)]`'s own arguments, checked by the library's grammar (durations,
//! rules), every wrong one reported at once, each pointing at itself.

use leakcheck_schema::attribute::{ARGUMENTS, expected};
use leakcheck_schema::policy::{self, Policy};
use leakcheck_schema::rules::RuleKind;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::Errors;

/// The arguments, checked.
#[derive(Default)]
pub(crate) struct Args {
    grace: Option<(std::time::Duration, Span)>,
    timeout: Option<(std::time::Duration, Span)>,
    ignore_threads: Vec<LitStr>,
    ignore_spawns: Vec<LitStr>,
    ignore_tops: Vec<LitStr>,
    ignore_processes: Vec<LitStr>,
    ignore_panics: Vec<LitStr>,
    zombies: Option<(Policy, Span)>,
    lost_panics: Option<(Policy, Span)>,
    untracked_tasks: Option<(Policy, Span)>,
    kill_leaked_processes: Option<(bool, Span)>,
}

/// Parses the arguments; every wrong one is an error of `errors`, and the others are kept.
pub(crate) fn parse(args: TokenStream2, errors: &mut Errors) -> Args {
    let mut parsed = Args::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(error) => {
            errors.add(error);
            return parsed;
        }
    };
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            errors.add(syn::Error::new(
                meta.span(),
                format!("expected `name = \"value\"`: {}", expected()),
            ));
            continue;
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !ARGUMENTS.contains(&key.as_str()) {
            errors.add(syn::Error::new(
                pair.path.span(),
                format!("unknown argument `{key}`: expected {}", expected()),
            ));
            continue;
        }
        if key == "kill_leaked_processes" {
            match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(on), ..
                }) if parsed.kill_leaked_processes.is_none() => {
                    parsed.kill_leaked_processes = Some((on.value, on.span()));
                }
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(_), ..
                }) => errors.add(syn::Error::new(
                    pair.span(),
                    format!("`{key}` is given twice"),
                )),
                other => errors.add(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes true or false"),
                )),
            }
            continue;
        }
        let value = match string_value(&pair.value, &key) {
            Ok(value) => value,
            Err(error) => {
                errors.add(error);
                continue;
            }
        };
        match key.as_str() {
            "grace" | "timeout" => {
                let slot = match key.as_str() {
                    "grace" => &mut parsed.grace,
                    _ => &mut parsed.timeout,
                };
                if slot.is_some() {
                    errors.add(syn::Error::new(
                        pair.span(),
                        format!("`{key}` is given twice"),
                    ));
                    continue;
                }
                match leakcheck_schema::duration::parse(&value.value()) {
                    Ok(duration) => *slot = Some((duration, value.span())),
                    Err(error) => errors.add(syn::Error::new(
                        value.span(),
                        format!("`{key}` must be a duration such as \"300ms\" or \"2s\": {error}"),
                    )),
                }
            }
            "zombies" | "lost_panics" | "untracked_tasks" => {
                let (accepted, slot) = match key.as_str() {
                    "zombies" => (policy::ZOMBIES, &mut parsed.zombies),
                    "lost_panics" => (policy::LOST_PANICS, &mut parsed.lost_panics),
                    _ => (policy::UNTRACKED_TASKS, &mut parsed.untracked_tasks),
                };
                if slot.is_some() {
                    errors.add(syn::Error::new(
                        pair.span(),
                        format!("`{key}` is given twice"),
                    ));
                    continue;
                }
                match Policy::parse(&value.value(), accepted) {
                    Some(policy) => *slot = Some((policy, value.span())),
                    None => errors.add(syn::Error::new(
                        value.span(),
                        format!(
                            "`{key}` must be {} (the first is the default)",
                            Policy::expected(accepted)
                        ),
                    )),
                }
            }
            _ => {
                let (kind, rules) = match key.as_str() {
                    "ignore_thread" => (RuleKind::Thread, &mut parsed.ignore_threads),
                    "ignore_spawn" => (RuleKind::Spawn, &mut parsed.ignore_spawns),
                    "ignore_process" => (RuleKind::Process, &mut parsed.ignore_processes),
                    "ignore_panic" => (RuleKind::Panic, &mut parsed.ignore_panics),
                    _ => (RuleKind::Top, &mut parsed.ignore_tops),
                };
                // The library's own grammar: what compiles here is accepted at run time.
                match kind.parse(&value.value()) {
                    Ok(_) => rules.push(value),
                    Err(error) => errors.add(syn::Error::new(value.span(), error)),
                }
            }
        }
    }
    parsed
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

impl Args {
    /// The `leakcheck::Options` expression these arguments build, each call spanned at its
    /// argument.
    pub(crate) fn options(&self) -> TokenStream2 {
        let mut options = quote!(::leakcheck::Options::new());
        if let Some((grace, span)) = self.grace {
            let nanos = grace.as_nanos() as u64;
            options =
                quote_spanned!(span=> #options.grace(::core::time::Duration::from_nanos(#nanos)));
        }
        if let Some((timeout, span)) = self.timeout {
            let nanos = timeout.as_nanos() as u64;
            options =
                quote_spanned!(span=> #options.timeout(::core::time::Duration::from_nanos(#nanos)));
        }
        for pattern in &self.ignore_threads {
            options = quote!(#options.ignore_thread(#pattern));
        }
        for substring in &self.ignore_spawns {
            options = quote!(#options.ignore_spawn(#substring));
        }
        for substring in &self.ignore_tops {
            options = quote!(#options.ignore_top(#substring));
        }
        for pattern in &self.ignore_processes {
            options = quote!(#options.ignore_process(#pattern));
        }
        for substring in &self.ignore_panics {
            options = quote!(#options.ignore_panic(#substring));
        }
        for (method, setting) in [
            ("zombies", self.zombies),
            ("lost_panics", self.lost_panics),
            ("untracked_tasks", self.untracked_tasks),
        ] {
            if let Some((policy, span)) = setting {
                let method = syn::Ident::new(method, span);
                // The variant is the policy's word, capitalised: `warn` is `Policy::Warn`.
                let word = policy.word();
                let variant = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
                let policy = syn::Ident::new(&variant, span);
                options = quote_spanned!(span=> #options.#method(::leakcheck::Policy::#policy));
            }
        }
        if let Some((on, span)) = self.kill_leaked_processes {
            options = quote_spanned!(span=> #options.kill_leaked_processes(#on));
        }
        options
    }
}
