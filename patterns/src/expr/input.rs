//! Does an expression read its input document? A conservative compile-time analysis: `false` only
//! for expressions built from literals, named variables, field paths that start from a named
//! variable or a call, operators and constructors, and calls of functions that never take the
//! context implicitly. Hosts whose input is costly to build (the pattern machine's `{event,
//! context}`) skip building it when the answer is `false`.

use super::ast::{Kind, Node};

/// Functions that never read the context when called with at least this many arguments.
const EXPLICIT: &[(&str, usize)] = &[
    // Pattern host functions.
    ("valueNamed", 1),
    ("local", 1),
    ("setLocal", 1),
    ("isResponseFor", 1),
    ("log", 0),
    // Builtins whose context-taking parameter is their first, supplied explicitly here.
    ("string", 1),
    ("number", 1),
    ("boolean", 1),
    ("not", 1),
    ("exists", 1),
    ("count", 1),
    ("length", 1),
    ("uppercase", 1),
    ("lowercase", 1),
    ("trim", 1),
    ("now", 0),
    ("millis", 0),
];

/// True when evaluating `node` at the top level might read the input document.
pub fn reads_input(node: &Node) -> bool {
    if !node.predicates.is_empty()
        || !node.stages.is_empty()
        || node.group.is_some()
        || node.focus.is_some()
        || node.index.is_some()
        || node.ancestor.is_some()
    {
        return true;
    }
    match &node.kind {
        Kind::Str(_) | Kind::Num(..) | Kind::Bool(_) | Kind::Null | Kind::Regex(_) => false,
        Kind::Variable(name) => name.is_empty() || name == "$",
        Kind::Path(steps) => {
            let Some((first, rest)) = steps.split_first() else {
                return true;
            };
            let first_ok =
                matches!(first.kind, Kind::Variable(_) | Kind::Call { .. }) && !reads_input(first);
            !(first_ok && rest.iter().all(plain_field))
        }
        Kind::Binary(_, a, b) | Kind::Elvis(a, b) | Kind::Coalesce(a, b) => {
            reads_input(a) || reads_input(b)
        }
        Kind::Neg(a) | Kind::Bind(_, a) => reads_input(a),
        Kind::Condition(c, t, e) => {
            reads_input(c) || reads_input(t) || e.as_deref().is_some_and(reads_input)
        }
        Kind::Array(items) | Kind::Block(items) => items.iter().any(reads_input),
        Kind::Object(pairs) => pairs.iter().any(|(k, v)| reads_input(k) || reads_input(v)),
        Kind::Call {
            proc,
            args,
            partial,
        } => {
            let Kind::Variable(name) = &proc.kind else {
                return true;
            };
            let explicit = EXPLICIT
                .iter()
                .any(|(f, min)| f == name && args.len() >= *min);
            *partial || !explicit || args.iter().any(reads_input)
        }
        _ => true,
    }
}

/// A path step that only selects a field of the previous step's result.
fn plain_field(step: &Node) -> bool {
    matches!(step.kind, Kind::Name(_))
        && step.predicates.is_empty()
        && step.stages.is_empty()
        && step.group.is_none()
        && step.focus.is_none()
        && step.index.is_none()
        && step.ancestor.is_none()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::expr::Expression;

    fn reads(src: &str) -> bool {
        Expression::compile(src).unwrap().reads_input()
    }

    #[test]
    fn pattern_expressions_do_not_read_the_input() {
        assert!(!reads(
            "$event.type = 'org.wt.echo' and $valueNamed('count') > 10"
        ));
        assert!(!reads(
            "$setLocal('echoTimes', $local('echoTimes') ? $local('echoTimes') + 1 : 1)"
        ));
        assert!(!reads(
            "'Location ' & $valueNamed('locationId') & ': ' & $local('d').latitude"
        ));
        assert!(!reads(
            "{'sourceId': $event.source.id, 'seq': $valueNamed('seqId')}"
        ));
        assert!(!reads("$string($valueNamed('confidence'))"));
    }

    #[test]
    fn anything_that_might_read_it_says_so() {
        for src in [
            "type = 'x'",
            "event.type",
            "$",
            "$$.a",
            "$string()",
            "$substring($x, 1)",
            "$event.data[0]",
            "$event.items.(price * 2)",
            "$map($x, function($v){ $v })",
            "$x ~> $uppercase",
            "a.%.b",
            "*",
        ] {
            assert!(reads(src), "{src} reads its input");
        }
    }
}
