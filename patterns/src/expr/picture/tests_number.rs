//! `$formatNumber` cases: the official JSONata suite group `function-formatNumber`, then F&O examples.
#![allow(clippy::unwrap_used)]

use super::testkit::Checks;
use super::*;

fn opts(json: &str) -> DecimalFormat {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    DecimalFormat::from_json(value.as_object().unwrap()).unwrap()
}

fn run(cases: impl FnOnce(&mut dyn FnMut(f64, &str, &DecimalFormat, Result<&str, &str>))) {
    let mut checks = Checks::default();
    cases(&mut |value, picture, format, expected| {
        let actual = format_number(value, picture, format);
        let label = format!("$formatNumber({value}, {picture:?})");
        match expected {
            Ok(text) => checks.eq(&label, actual.map_err(|e| e.code), Ok(text.to_string())),
            Err(code) => checks.eq(&label, actual.map_err(|e| e.code), Err(code)),
        }
    });
    checks.finish();
}

#[test]
fn suite_function_format_number() {
    run(|check| {
        let mut ok = |v: f64, p: &str, f: &DecimalFormat, r: &str| check(v, p, f, Ok(r));
        ok(12345.6, "#,###.00", &DecimalFormat::default(), "12,345.60"); // case000
        ok(
            12345678.9,
            "9,999.99",
            &DecimalFormat::default(),
            "12,345,678.90",
        ); // case001
        ok(
            123412345678.9,
            "9,9,99.99",
            &DecimalFormat::default(),
            "123412345,6,78.90",
        ); // case002
        ok(
            1234.56789,
            "9,999.999,999",
            &DecimalFormat::default(),
            "1,234.567,890",
        ); // case003
        ok(123.9, "9999", &DecimalFormat::default(), "0124"); // case004
        ok(0.14, "01%", &DecimalFormat::default(), "14%"); // case005
        ok(0.4857, "###.###‰", &DecimalFormat::default(), "485.7‰"); // case006
        ok(0.14, "###pm", &opts(r#"{"per-mille": "pm"}"#), "140pm"); // case007
        ok(-6.0, "000", &DecimalFormat::default(), "-006"); // case008
        ok(1234.5678, "00.000e0", &DecimalFormat::default(), "12.346e2"); // case009
        ok(
            1234.5678,
            "00.000e000",
            &DecimalFormat::default(),
            "12.346e002",
        ); // case010
        ok(
            1234.5678,
            "①①.①①①e①",
            &opts(r#"{"zero-digit": "⑟"}"#),
            "①②.③④⑥e②",
        ); // case011
        ok(0.234, "0.0e0", &DecimalFormat::default(), "2.3e-1"); // case012
        ok(0.234, "#.00e0", &DecimalFormat::default(), "0.23e0"); // case013
        ok(0.123, "#.e9", &DecimalFormat::default(), "0.1e0"); // case014
        ok(0.234, ".00e0", &DecimalFormat::default(), ".23e0"); // case015
        ok(
            2392.14 * -36.58,
            "000,000.000###;###,###.000###",
            &DecimalFormat::default(),
            "87,504.4812",
        ); // case016
        ok(
            2.14 * 86.58,
            "PREFIX##00.000###SUFFIX",
            &DecimalFormat::default(),
            "PREFIX185.2812SUFFIX",
        ); // case017
        ok(
            1e20,
            "#,######",
            &DecimalFormat::default(),
            "100,000000,000000,000000",
        ); // case018
        ok(2.0, "000.000", &DecimalFormat::default(), "002.000"); // case033
        ok(2.0, "AAA.AAA", &opts(r#"{"zero-digit": "A"}"#), "AAC.AAA"); // case034
        ok(0.1, "AeAAA", &opts(r#"{"zero-digit": "A"}"#), "Be-AAB"); // case035
        ok(0.0, "0e0", &DecimalFormat::default(), "0e0"); // issue785
        ok(-42.0, "0e0", &DecimalFormat::default(), "-4e1"); // issue785
        ok(42.0, "0e0", &DecimalFormat::default(), "4e1"); // issue785
        ok(0.0, "0.00e0", &DecimalFormat::default(), "0.00e0"); // issue785
    });
    run(|check| {
        let mut err = |v: f64, p: &str, f: &DecimalFormat, c: &str| check(v, p, f, Err(c));
        err(20.0, "#;#;#", &DecimalFormat::default(), "D3080"); // case019
        err(20.0, "#.0.0", &DecimalFormat::default(), "D3081"); // case020
        err(20.0, "#0%%", &DecimalFormat::default(), "D3082"); // case021
        err(20.0, "#0‰‰", &DecimalFormat::default(), "D3083"); // case022
        err(20.0, "#0%‰", &DecimalFormat::default(), "D3084"); // case023
        err(20.0, ".e0", &DecimalFormat::default(), "D3085"); // case024
        err(20.0, "0+.e0", &DecimalFormat::default(), "D3086"); // case025
        err(20.0, "0,.e0", &DecimalFormat::default(), "D3087"); // case026
        err(20.0, "0,", &DecimalFormat::default(), "D3088"); // case027
        err(20.0, "0,,0", &DecimalFormat::default(), "D3089"); // case028
        err(20.0, "0#.e0", &DecimalFormat::default(), "D3090"); // case029
        err(20.0, "#0.#0e0", &DecimalFormat::default(), "D3091"); // case030
        err(20.0, "#0.0e0%", &DecimalFormat::default(), "D3092"); // case031
        err(20.0, "#0.0e0,0", &DecimalFormat::default(), "D3093"); // case032
        err(42.0, "%%", &DecimalFormat::default(), "D3086"); // issue786
        err(42.0, "‰‰", &DecimalFormat::default(), "D3086"); // issue786
        err(42.0, "%‰", &DecimalFormat::default(), "D3086"); // issue786
        err(42.0, "---", &DecimalFormat::default(), "D3086"); // issue786
    });
}

#[test]
fn spec_examples_and_edges() {
    run(|check| {
        let d = DecimalFormat::default();
        let mut ok = |v: f64, p: &str, r: &str| check(v, p, &d, Ok(r));
        ok(1234.5678, "#,##0.00", "1,234.57");
        ok(12345.0, "#,##0.00;(#,##0.00)", "12,345.00");
        ok(-12345.0, "#,##0.00;(#,##0.00)", "(12,345.00)");
        ok(-1.0, "#,##0.###", "-1");
        ok(0.5, "#.0", ".5");
        ok(0.0, "#", "0");
        ok(2.5, "0", "2");
        ok(3.5, "0", "4");
        ok(1e300, "0.0e0", "1.0e300");
        ok(5e-324, "0.00", "0.00");
        ok(9.96, "0.0e0", "1.0e1");
        ok(12.0, "#.##", "12.0");
        ok(12.0, "0.##", "12");
        ok(0.25, "#0%", "25%");
        ok(0.0123, "0.0##,#", "0.012,3");
        ok(1234567.0, "#,##0", "1,234,567");
        ok(1234567.0, "Total: #,##0 units", "Total: 1,234,567 units");
        ok(f64::NAN, "#0", "NaN");
        ok(f64::INFINITY, "#0 units", "Infinity units");
        ok(f64::NEG_INFINITY, "#0", "-Infinity");
        ok(-0.0, "0.0", "0.0");
    });
    run(|check| {
        let f = opts(r#"{"decimal-separator": ",", "grouping-separator": "."}"#);
        check(1234.5, "#.##0,00", &f, Ok("1.234,50"));
        let f = opts(r#"{"minus-sign": "~", "NaN": "not a number"}"#);
        check(-5.0, "0", &f, Ok("~5"));
        check(f64::NAN, "0", &f, Ok("not a number"));
        check(1.0, "", &DecimalFormat::default(), Err("D3085"));
        let f = opts(r#"{"zero-digit": "\udbff\udfff"}"#);
        check(12.0, "#", &f, Ok("\u{fffd}\u{fffd}"));
    });
}
