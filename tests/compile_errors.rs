//! A wrong `#[leakcheck::test(..)]` or absorbed `#[tokio::test(..)]` argument, or the
//! attribute placed below `#[tokio::test]` (or `#[test_log::test(tokio::test)]`), is a compile
//! error that points at it.

#[test]
fn bad_arguments_are_compile_errors_with_spans() {
    // trybuild builds the cases with cargo.
    let _heavy = leakcheck_suite::heavy();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}
