//! `#[leakcheck::test]`: parse and check the arguments (`args`, `tokio_args`), fit with the
//! other attributes of the test (`stacked`), then emit a `#[test]` fn whose body calls the
//! library (`expand`). All behaviour lives in the library.

mod args;
mod expand;
mod stacked;
mod tokio_args;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

use expand::Placement;

/// Leak-checks a test. See the `leakcheck` crate for the arguments.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    output(expand::expand(
        args.into(),
        item.into(),
        Placement::AsWritten,
    ))
}

/// `#[leakcheck::test]` below another runtime's test attribute, where it moved itself (a
/// name that does not end in `test`, so that the other attribute, if it follows the
/// ecosystem's convention, still registers the test). Not to be written by hand.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn checked(args: TokenStream, item: TokenStream) -> TokenStream {
    output(expand::expand(
        args.into(),
        item.into(),
        Placement::BelowForeignTest,
    ))
}

fn output(expanded: syn::Result<TokenStream2>) -> TokenStream {
    match expanded {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Every error found, so that a user sees them all at once (as rstest does).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Err` with every error, if there is one.
    pub(crate) fn finish(&mut self) -> syn::Result<()> {
        self.0.take().map_or(Ok(()), Err)
    }

    /// `tokens`, unless there was an error.
    pub(crate) fn or(mut self, tokens: TokenStream2) -> syn::Result<TokenStream2> {
        self.finish().map(|()| tokens)
    }
}

#[cfg(test)]
mod tests;
