//! Build script: compiles the XDP director (`ebpf/director.bpf.c`) into
//! `$OUT_DIR/director.bpf.o`, and the benchmark's control programs (`ebpf/bench/xdp_tx.bpf.c`,
//! used by `benches/xdp.rs`) into `$OUT_DIR/xdp_tx.bpf.o`, the benchmark's reference program
//! (`ebpf/bench/xdp_lru.bpf.c`, a per-CPU kernel LRU balancer; never shipped) into
//! `$OUT_DIR/xdp_lru.bpf.o`, and the TUN decapsulation program of the nodes
//! (`ebpf/decap.bpf.c`) into `$OUT_DIR/decap.bpf.o`.
//!
//! Contract: `clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -I ebpf/include`
//! (BTF included through `-g`), `rerun-if-changed` for every file under `ebpf/`. When clang
//! cannot be started (not installed), the build does not fail: it warns and sets
//! `cfg(strait_no_bpf)`, under which the code that embeds the objects is left out. A clang that
//! runs but rejects a program fails the build. `$CLANG` overrides the compiler's name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn watch(dir: &Path) -> std::io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            watch(&path)?;
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}

/// Compiles `src` into `out`: `Ok(false)` when clang cannot be started, an error when it fails.
fn compile(clang: &str, include: &Path, src: &Path, out: &Path) -> Result<bool, String> {
    let status = Command::new(clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-I")
        .arg(include)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out)
        .status();
    match status {
        Err(e) => {
            println!(
                "cargo:warning=clang not found ({clang}: {e}); building without the XDP objects"
            );
            Ok(false)
        }
        Ok(s) if s.success() => Ok(true),
        Ok(s) => Err(format!("{clang} failed on {}: {s}", src.display())),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rustc-check-cfg=cfg(strait_no_bpf)");
    println!("cargo:rerun-if-env-changed=CLANG");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let ebpf = manifest.join("..").join("ebpf");
    watch(&ebpf)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let include = ebpf.join("include");
    let objects = [
        (ebpf.join("director.bpf.c"), out_dir.join("director.bpf.o")),
        (
            ebpf.join("bench").join("xdp_tx.bpf.c"),
            out_dir.join("xdp_tx.bpf.o"),
        ),
        (
            ebpf.join("bench").join("xdp_lru.bpf.c"),
            out_dir.join("xdp_lru.bpf.o"),
        ),
        (ebpf.join("decap.bpf.c"), out_dir.join("decap.bpf.o")),
    ];
    for (src, out) in &objects {
        if !compile(&clang, &include, src, out)? {
            println!("cargo:rustc-cfg=strait_no_bpf");
            return Ok(());
        }
    }
    Ok(())
}
