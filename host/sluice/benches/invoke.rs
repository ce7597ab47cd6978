//! The benchmark of `POST /v1/stages/{name}/invoke` (being written).

fn main() {}
