#[leakcheck::test]
fn takes(value: u32) {
    let _ = value;
}

fn main() {}
