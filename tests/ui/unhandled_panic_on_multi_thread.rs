#[leakcheck::test]
#[tokio::test(flavor = "multi_thread", unhandled_panic = "shutdown_runtime")]
async fn shuts_down() {}

fn main() {}
