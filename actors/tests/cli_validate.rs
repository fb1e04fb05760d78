//! `threds validate` accepts the reference patterns and rejects broken ones with file, JSON path
//! and reason.

use std::path::{Path, PathBuf};
use std::process::Command;

fn threds() -> Command {
    Command::new(env!("CARGO_BIN_EXE_threds"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validate(file: &str) -> (i32, String) {
    let path = repo().join("patterns/tests/invalid").join(file);
    let out = threds()
        .arg("validate")
        .arg("-q")
        .arg(&path)
        .output()
        .expect("run threds");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_rejected(file: &str, path: &str, reason: &str) {
    let (code, stderr) = validate(file);
    assert_eq!(code, 2, "{file} should be rejected; stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(file))
        .unwrap_or_else(|| panic!("no line names {file}: {stderr}"));
    assert!(
        line.contains(&format!(": {path}: ")),
        "expected JSON path {path} in: {line}"
    );
    assert!(
        line.contains(reason),
        "expected reason '{reason}' in: {line}"
    );
}

#[test]
fn bad_json_is_rejected_with_its_position() {
    assert_rejected(
        "bad_json.pattern.json",
        "$",
        "invalid JSON: trailing comma at line 5",
    );
}

#[test]
fn bad_expression_is_rejected_at_its_xpr() {
    assert_rejected(
        "bad_expression.pattern.json",
        "reactions[1].condition.xpr",
        "(S0",
    );
}

#[test]
fn bad_template_expression_is_rejected_at_its_template_path() {
    assert_rejected(
        "bad_template.pattern.json",
        "reactions[0].condition.transform.eventDataTemplate.content.values.n",
        "(S0",
    );
}

#[test]
fn unknown_transition_target_is_rejected() {
    assert_rejected(
        "unknown_transition.pattern.json",
        "reactions[0].condition.transition.name",
        "unknown transition target 'nowhere'",
    );
}

#[test]
fn duplicate_reaction_names_are_rejected() {
    assert_rejected(
        "duplicate_reactions.pattern.json",
        "reactions[1].name",
        "duplicate reaction name 'same'",
    );
}

#[test]
fn missing_name_is_rejected() {
    assert_rejected(
        "missing_name.pattern.json",
        "name",
        "required field is missing",
    );
}

#[test]
fn wrong_condition_type_is_rejected() {
    assert_rejected(
        "wrong_condition_type.pattern.json",
        "reactions[1].condition.type",
        "unknown variant `xor`",
    );
}

#[test]
fn every_reference_pattern_is_valid() {
    let reference = repo().join("../shared/reference/srvthreds");
    if !reference.is_dir() {
        eprintln!(
            "SKIPPED: reference patterns not found at {}",
            reference.display()
        );
        return;
    }
    let out = threds()
        .arg("validate")
        .arg("-q")
        .arg(&reference)
        .output()
        .expect("run threds");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "reference patterns rejected:\n{stderr}"
    );
}
