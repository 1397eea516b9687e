#[test_log::test(tokio::test)]
#[leakcheck::test]
async fn placed_below() {}

fn main() {}
