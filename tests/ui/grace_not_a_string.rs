#[leakcheck::test(grace = 300)]
fn number() {}

fn main() {}
