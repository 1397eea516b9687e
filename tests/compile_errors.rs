//! A wrong `#[leakcheck::test(..)]` argument is a compile error that points at it.

#[test]
fn bad_arguments_are_compile_errors_with_spans() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}
