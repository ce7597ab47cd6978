//! `wasi-probe`: reports what the WASI sandbox grants, as
//! `{"env":[<names of all environment variables>],"args":[..],"rootDir":"ok:<n entries>"|"err:<msg>","tcp":"ok"|"err:<msg>"}`
//! where `rootDir` is the outcome of listing `/` and `tcp` of connecting to `127.0.0.1:9`.
//! It never fails; a locked-down host shows no env, no args, `err:` for both probes.

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::json;
use sluice::platform::types::{Event, StageResult};

struct Stage;

impl Guest for Stage {
    fn handle(_event: Event) -> StageResult {
        let env: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let root_dir = match std::fs::read_dir("/") {
            Ok(entries) => format!("ok:{}", entries.count()),
            Err(e) => format!("err:{e}"),
        };
        let tcp = match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("err:{e}"),
        };
        let out = json!({ "env": env, "args": args, "rootDir": root_dir, "tcp": tcp });
        Ok(serde_json::to_vec(&out).expect("serialising a Value cannot fail"))
    }
}

export!(Stage);
