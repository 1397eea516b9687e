#[leakcheck::test(ignore_top = "  ")]
fn empty() {}

fn main() {}
