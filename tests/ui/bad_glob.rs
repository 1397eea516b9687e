#[leakcheck::test(ignore_thread = "pool-[0-9")]
fn unclosed() {}

fn main() {}
