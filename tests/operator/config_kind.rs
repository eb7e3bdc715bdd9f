//! A config given to the wrong command says which command runs it.

use std::process::Command;

use crate::support::scratch_dir;

const DIRECTOR: &str = "[director]\nid = \"d\"\ninterface = \"lo\"\ndatapath = \"userspace\"\n\
    admin = \"127.0.20.4:0\"\n\n[[service]]\nvip = \"127.0.20.5:80\"\nmode = \"nat\"\n\
    backends = [{ addr = \"127.0.20.6:8080\" }]\n";

const NODE: &str = "[node]\nid = \"a\"\nlisten = [\"127.0.20.4:0\"]\nadmin = \"127.0.20.4:0\"\n\n\
    [[pool]]\nname = \"p\"\nservers = [{ addr = \"127.0.20.6:8080\" }]\n\n[[route]]\npool = \"p\"\n";

/// `strait <command> --config FILE` with `text` in FILE: (exit code, stderr, FILE).
fn run(command: &str, text: &str) -> (i32, String, String) {
    let file = scratch_dir("kind").join("config.toml");
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args([command, "--config", file.to_str().expect("utf-8 path")])
        .output()
        .expect("run strait");
    let file = file.display().to_string();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        file,
    )
}

#[test]
fn a_director_config_given_to_strait_node_names_strait_director() {
    let (code, err, file) = run("node", DIRECTOR);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{file}:1:1: this is a director config (it has [director], [service]), not a node \
             config; run it with `strait director --config FILE`"
        )),
        "{err}"
    );
}

#[test]
fn a_node_config_given_to_strait_director_names_strait_node() {
    let (code, err, file) = run("director", NODE);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{file}:1:1: this is a cache node config (it has [node], [pool], [route]), not a \
             director config; run it with `strait node --config FILE`"
        )),
        "{err}"
    );
}
