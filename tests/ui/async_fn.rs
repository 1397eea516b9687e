#[leakcheck::test]
async fn not_yet() {}

fn main() {}
