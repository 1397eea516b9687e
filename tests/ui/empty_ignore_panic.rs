#[leakcheck::test(ignore_panic = "")]
fn empty() {}

fn main() {}
