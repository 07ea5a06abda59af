//! Prints every CRD generated from the sriov-api types as one multi-document YAML stream, or with
//! `--dir DIR` writes one file per CRD (how `deploy/crds/` is regenerated:
//! `cargo run -p sriov-api --bin crdgen -- --dir deploy/crds`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files = match sriov_api::crd::crd_files() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crdgen: cannot serialize CRDs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        [] => {
            let docs: Vec<&str> = files.iter().map(|(_, yaml)| yaml.as_str()).collect();
            print!("{}", docs.join("---\n"));
            ExitCode::SUCCESS
        }
        [flag, dir] if flag == "--dir" => {
            for (name, yaml) in &files {
                let path = std::path::Path::new(dir).join(name);
                if let Err(e) = std::fs::write(&path, yaml) {
                    eprintln!("crdgen: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: crdgen [--dir DIR]");
            ExitCode::from(2)
        }
    }
}
