#[leakcheck::test(grace)]
fn bare() {}

fn main() {}
