//! The environment contract between the operator and the binaries it runs, checked against clap's
//! own argument lists:
//! - every variable the operator sets on the API's and the workers' containers is read by the
//!   subcommand that container runs, or is spliced as `$(NAME)` into another variable of the same
//!   container, or is read by a library (Tesseract's OpenMP);
//! - every variable any binary reads, and every one the operator writes, is named in
//!   `finagent_core::names::env`, and every name there is read or written by someone.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;
use finagent_operator::build::{Inputs, build_all};
use serde_json::Value;

use super::sample;

/// Read by a library inside our images, not by our code.
const LIBRARY_VARIABLES: [&str; 1] = ["OMP_THREAD_LIMIT"];

/// The variables a command reads: its own arguments' and, for `Some(subcommand)`, that
/// subcommand's; for `None`, every subcommand's.
fn reads(command: &clap::Command, subcommand: Option<&str>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |command: &clap::Command| {
        for argument in command.get_arguments() {
            if let Some(name) = argument.get_env() {
                names.insert(name.to_string_lossy().into_owned());
            }
        }
    };
    add(command);
    match subcommand {
        Some(name) => add(command.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}"))),
        None => command.get_subcommands().for_each(&mut add),
    }
    names
}

/// The names declared in `finagent_core::names::env` (every `pub const X: &str = "X"`).
fn declared() -> BTreeSet<String> {
    let source = include_str!("../../../core/src/names.rs");
    let start = source.find("pub mod env {").expect("the env module");
    let module = &source[start..start + source[start..].find("\n}\n").expect("its end")];
    module
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = ")?;
            (value.trim_end_matches(';').trim_matches('"') == name).then(|| name.to_owned())
        })
        .collect()
}

/// Every container and init container of the platform's workloads, by the binary its image runs.
fn containers(object: &Value) -> Vec<&Value> {
    let spec = &object["spec"]["template"]["spec"];
    ["initContainers", "containers"].iter().filter_map(|list| spec[*list].as_array()).flatten().collect()
}

fn variables(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|var| {
            (var["name"].as_str().expect("a name").to_owned(), var["value"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[test]
fn every_variable_the_operator_sets_is_read_by_the_binary_it_runs() {
    let binaries: BTreeMap<&str, clap::Command> =
        [("api-server", finagent_api_server::Cli::command()), ("ocr-worker", finagent_ocr_worker::Cli::command())]
            .into_iter()
            .collect();
    let mut checked = 0;
    for name in ["minimal", "production", "scale-to-zero"] {
        let children = build_all(&sample(name), &Inputs::default());
        for workload in [&children.api, &children.worker] {
            let object = serde_json::to_value(workload).expect("json");
            for container in containers(&object) {
                let image = container["image"].as_str().expect("an image");
                let binary = image.rsplit('/').next().and_then(|last| last.split([':', '@']).next()).expect("a name");
                let command = binaries.get(binary).unwrap_or_else(|| panic!("{name}: an image of ours, not {image}"));
                let subcommand = container["args"][0].as_str().expect("a subcommand");
                let read = reads(command, Some(subcommand));
                let vars = variables(container);
                for (variable, _) in &vars {
                    let spliced = vars.iter().any(|(_, value)| value.contains(&format!("$({variable})")));
                    assert!(
                        read.contains(variable) || spliced || LIBRARY_VARIABLES.contains(&variable.as_str()),
                        "{name}: `{binary} {subcommand}` does not read {variable}, which the operator sets"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} variables checked");
}

#[test]
fn every_variable_is_named_once_in_core_and_every_name_there_is_used() {
    let declared = declared();
    let mut read = BTreeSet::new();
    for command in
        [finagent_api_server::Cli::command(), finagent_ocr_worker::Cli::command(), finagent_operator::Cli::command()]
    {
        read.extend(reads(&command, None));
    }
    for variable in &read {
        assert!(declared.contains(variable), "{variable} is read but not named in finagent_core::names::env");
    }
    let mut written = BTreeSet::new();
    for name in ["minimal", "production", "scale-to-zero"] {
        for object in build_all(&sample(name), &Inputs::default()).objects {
            for container in containers(&object) {
                written.extend(variables(container).into_iter().map(|(variable, _)| variable));
            }
        }
    }
    for variable in &written {
        assert!(
            declared.contains(variable),
            "the operator writes {variable}, which finagent_core::names::env does not name"
        );
    }
    for name in &declared {
        assert!(read.contains(name) || written.contains(name), "{name} is named in core but neither read nor written");
    }
}
