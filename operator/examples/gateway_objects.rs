//! Prints, as YAML, the gateway objects the operator would keep for a settings file:
//! `cargo run -p tollgate-operator --example gateway_objects -- settings.yaml [namespace]`.
//! CI validates this output against the Kubernetes schemas.

use std::{path::PathBuf, process::ExitCode};

use tollgate_operator::{
    deploy::{Target, objects, selector_labels, settings::GatewayDeployment},
    render::GatewayObjects,
};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gateway_objects SETTINGS.yaml [NAMESPACE]");
        return ExitCode::FAILURE;
    };
    let namespace = args.next().unwrap_or_else(|| "tollgate-system".into());
    let settings = match GatewayDeployment::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(selector) =
        selector_labels("app.kubernetes.io/name=tollgate,app.kubernetes.io/component=gateway")
    else {
        return ExitCode::FAILURE;
    };
    let target = Target {
        objects: GatewayObjects {
            namespace,
            ..GatewayObjects::default()
        },
        selector,
        owner: None,
    };
    for object in objects(&settings, &target) {
        match serde_saphyr::to_string(&object) {
            Ok(text) => print!("---\n{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
