#[leakcheck::test(timeuot = "1s")]
fn slow() {}

fn main() {}
