#[leakcheck::test(grace = "soon")]
fn soon() {}

fn main() {}
