#[leakcheck::test(grace = "soon", ignore_spawn = "", colour = "red")]
#[tokio::test(flavor = "sideways")]
async fn every_error_at_once() {}

fn main() {}
