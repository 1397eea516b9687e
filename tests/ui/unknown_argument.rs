#[leakcheck::test(timeout = "1s")]
fn slow() {}

fn main() {}
