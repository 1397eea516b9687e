#[leakcheck::test]
#[tokio::test(flavour = "multi_thread")]
async fn misspelled() {}

fn main() {}
