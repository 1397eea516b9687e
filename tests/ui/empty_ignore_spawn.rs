#[leakcheck::test(ignore_spawn = "  ")]
fn empty() {}

fn main() {}
