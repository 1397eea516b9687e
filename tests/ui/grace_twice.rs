#[leakcheck::test(grace = "1s", grace = "2s")]
fn twice() {}

fn main() {}
