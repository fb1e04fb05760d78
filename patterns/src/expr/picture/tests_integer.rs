//! `$formatInteger` / `$parseInteger` cases: the official JSONata suite groups
//! `function-formatInteger` and `function-parseInteger`, then F&O 3.1 examples and edge cases.
#![allow(clippy::unwrap_used)]

use super::testkit::Checks;
use super::*;

struct Run(Checks);

impl Run {
    fn fi(&mut self, value: f64, picture: &str, expected: &str) {
        let label = format!("$formatInteger({value}, {picture:?})");
        let actual = format_integer(value, picture).map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(expected.to_string()));
    }
    fn fi_err(&mut self, value: f64, picture: &str, code: &'static str) {
        let label = format!("$formatInteger({value}, {picture:?})");
        self.0.eq(
            &label,
            format_integer(value, picture).map_err(|e| e.code),
            Err(code),
        );
    }
    fn pi(&mut self, text: &str, picture: &str, expected: f64) {
        let label = format!("$parseInteger({text:?}, {picture:?})");
        let actual = parse_integer(text, picture).map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(Some(expected)));
    }
    fn pi_none(&mut self, text: &str, picture: &str) {
        let label = format!("$parseInteger({text:?}, {picture:?})");
        self.0.eq(
            &label,
            parse_integer(text, picture).map_err(|e| e.code),
            Ok(None),
        );
    }
    fn pi_err(&mut self, text: &str, picture: &str, code: &'static str) {
        let label = format!("$parseInteger({text:?}, {picture:?})");
        self.0.eq(
            &label,
            parse_integer(text, picture).map_err(|e| e.code),
            Err(code),
        );
    }
}

#[test]
fn suite_function_format_integer() {
    let mut r = Run(Checks::default());
    r.fi(123.0, "000", "123");
    r.fi(123.0, "0000", "0123");
    r.fi(-3.0, "0000", "-0003");
    r.fi(1234.0, "0;c", "1234");
    r.fi(1234.0, "###0", "1234");
    r.fi(12.0, "###0", "12");
    r.fi(12.6, "###0", "12");
    r.fi(123.0, "000;o", "123rd");
    r.fi(1.0, "0;o", "1st");
    r.fi(28.0, "#0;o", "28th");
    r.fi(1234.0, "###0;o", "1234th");
    r.fi(12.0, "###0;o", "12th");
    r.fi(12340.0, "###١", "١٢٣٤٠");
    r.fi(12340.0, "###０", "１２３４０");
    r.fi_err(12340.0, "##0０", "D3131");
    r.fi(12.0, "#,##0", "12");
    r.fi(1200.0, "#,##0", "1,200");
    r.fi(120000.0, "#,##0", "120,000");
    r.fi(12345678.0, "#,##0", "12,345,678");
    r.fi(1234567890.0, "#,##0", "1,234,567,890");
    r.fi(1234567890.0, "#,###,##0", "1,234,567,890");
    r.fi(1234567890.0, "#:###,##0", "1234:567,890");
    r.fi(1234567890.0, "##,##,##0", "12345,67,890");
    r.fi(0.0, "I", "");
    r.fi(1984.0, "I", "MCMLXXXIV");
    r.fi(99.0, "i", "xcix");
    r.fi(12.0, "w", "twelve");
    r.fi(20.0, "w", "twenty");
    r.fi(34.0, "w", "thirty-four");
    r.fi(99.0, "W", "NINETY-NINE");
    r.fi(100.0, "w", "one hundred");
    r.fi(555.0, "W", "FIVE HUNDRED AND FIFTY-FIVE");
    r.fi(555.0, "Ww", "Five Hundred and Fifty-Five");
    r.fi(919.0, "w", "nine hundred and nineteen");
    r.fi(730.0, "w", "seven hundred and thirty");
    r.fi(1000.0, "w", "one thousand");
    r.fi(3730.0, "w", "three thousand, seven hundred and thirty");
    r.fi(
        327730.0,
        "w",
        "three hundred and twenty-seven thousand, seven hundred and thirty",
    );
    r.fi(
        4327730.0,
        "w",
        "four million, three hundred and twenty-seven thousand, seven hundred and thirty",
    );
    r.fi(1000000000001.0, "w", "one trillion and one");
    r.fi(1234567890123.0, "w", "one trillion, two hundred and thirty-four billion, five hundred and sixty-seven million, eight hundred and ninety thousand, one hundred and twenty-three");
    r.fi(1000000000000000.0, "w", "one thousand trillion");
    r.fi(1e46, "w", "ten billion trillion trillion trillion");
    r.fi(1234567890123456.0, "w", "one thousand, two hundred and thirty-four trillion, five hundred and sixty-seven billion, eight hundred and ninety million, one hundred and twenty-three thousand, four hundred and fifty-six");
    r.fi(12.0, "w;o", "twelfth");
    r.fi(20.0, "w;o", "twentieth");
    r.fi(34.0, "w;o", "thirty-fourth");
    r.fi(99.0, "W;o", "NINETY-NINTH");
    r.fi(100.0, "w;o", "one hundredth");
    r.fi(555.0, "W;o", "FIVE HUNDRED AND FIFTY-FIFTH");
    r.fi(919.0, "w;o", "nine hundred and nineteenth");
    r.fi(730.0, "w;o", "seven hundred and thirtieth");
    r.fi(1000.0, "w;o", "one thousandth");
    r.fi(
        3731.0,
        "w;o",
        "three thousand, seven hundred and thirty-first",
    );
    r.fi(
        327713.0,
        "w;o",
        "three hundred and twenty-seven thousand, seven hundred and thirteenth",
    );
    r.fi(
        4327732.0,
        "w;o",
        "four million, three hundred and twenty-seven thousand, seven hundred and thirty-second",
    );
    r.fi(1000000000001.0, "w;o", "one trillion and first");
    r.fi(1.0, "A", "A");
    r.fi(12.0, "a", "l");
    r.fi(26.0, "a", "z");
    r.fi(27.0, "a", "aa");
    r.fi(300.0, "A", "KN");
    r.fi(123456.0, "A", "FZPH");
    r.fi_err(123456.0, "α", "D3130");
    r.0.finish();
}

#[test]
fn suite_function_parse_integer() {
    let mut r = Run(Checks::default());
    r.pi("123", "000", 123.0);
    r.pi("0123", "0000", 123.0);
    r.pi("1234", "0", 1234.0);
    r.pi("1234", "###0", 1234.0);
    r.pi("12", "###0", 12.0);
    r.pi("123rd", "000;o", 123.0);
    r.pi("1st", "0;o", 1.0);
    r.pi("28th", "#0;o", 28.0);
    r.pi("1234th", "###0;o", 1234.0);
    r.pi("12th", "###0;o", 12.0);
    r.pi("١٢٣٤٠", "###١", 12340.0);
    r.pi("１２３４０", "###０", 12340.0);
    r.pi("12", "#,##0", 12.0);
    r.pi("1,200", "#,##0", 1200.0);
    r.pi("12,345,678", "#,##0", 12345678.0);
    r.pi("1,234,567,890", "#,##0", 1234567890.0);
    r.pi("1,234,567,890", "#,###,##0", 1234567890.0);
    r.pi("1234:567,890", "#:###,##0", 1234567890.0);
    r.pi("12345,67,890", "##,##,##0", 1234567890.0);
    r.pi("", "I", 0.0);
    r.pi("MCMLXXXIV", "I", 1984.0);
    r.pi("xcix", "i", 99.0);
    r.pi("twelve", "w", 12.0);
    r.pi("twenty", "w", 20.0);
    r.pi("thirty-four", "w", 34.0);
    r.pi("NINETY-NINE", "W", 99.0);
    r.pi("one hundred", "w", 100.0);
    r.pi("FIVE HUNDRED AND FIFTY-FIVE", "W", 555.0);
    r.pi("Five Hundred and Fifty-Five", "Ww", 555.0);
    r.pi("nine hundred and nineteen", "w", 919.0);
    r.pi("seven hundred and thirty", "w", 730.0);
    r.pi("one thousand", "w", 1000.0);
    r.pi("three thousand, seven hundred and thirty", "w", 3730.0);
    r.pi(
        "three hundred and twenty-seven thousand, seven hundred and thirty",
        "w",
        327730.0,
    );
    r.pi(
        "four million, three hundred and twenty-seven thousand, seven hundred and thirty",
        "w",
        4327730.0,
    );
    r.pi("one trillion and one", "w", 1000000000001.0);
    r.pi("one trillion, two hundred and thirty-four billion, five hundred and sixty-seven million, eight hundred and ninety thousand, one hundred and twenty-three", "w", 1234567890123.0);
    r.pi("one thousand trillion", "w", 1000000000000000.0);
    r.pi("ten billion trillion trillion trillion", "w", 1e46);
    r.pi("twelfth", "w;o", 12.0);
    r.pi("twentieth", "w;o", 20.0);
    r.pi("thirty-fourth", "w;o", 34.0);
    r.pi("NINETY-NINTH", "W;o", 99.0);
    r.pi("one hundredth", "w;o", 100.0);
    r.pi("FIVE HUNDRED AND FIFTY-FIFTH", "W;o", 555.0);
    r.pi("nine hundred and nineteenth", "w;o", 919.0);
    r.pi("seven hundred and thirtieth", "w;o", 730.0);
    r.pi("Seven Hundred and Thirty-Third", "Ww;o", 733.0);
    r.pi("one thousandth", "w;o", 1000.0);
    r.pi(
        "three thousand, seven hundred and thirty-first",
        "w;o",
        3731.0,
    );
    r.pi(
        "three hundred and twenty-seven thousand, seven hundred and thirteenth",
        "w;o",
        327713.0,
    );
    r.pi(
        "four million, three hundred and twenty-seven thousand, seven hundred and thirty-second",
        "w;o",
        4327732.0,
    );
    r.pi("one trillion and first", "w;o", 1000000000001.0);
    r.pi("A", "A", 1.0);
    r.pi("l", "a", 12.0);
    r.pi("z", "a", 26.0);
    r.pi("aa", "a", 27.0);
    r.pi("KN", "A", 300.0);
    r.pi("FZPH", "A", 123456.0);
    r.pi_err("50", "#", "D3130");
    r.0.finish();
}

#[test]
fn spec_examples_and_edges() {
    let mut r = Run(Checks::default());
    // F&O 3.1 §4.6.1 examples.
    r.fi(123.0, "0000", "0123");
    r.fi(123.0, "w", "one hundred and twenty-three");
    r.fi(21.0, "1;o", "21st");
    r.fi(7.0, "a", "g");
    r.fi(57.0, "I", "LVII");
    r.fi(1234.0, "#;##0;", "1;234");
    // Edges.
    r.fi(-12.6, "0", "-13");
    r.fi(-0.0, "0", "0");
    r.fi(0.0, "w", "zero");
    r.fi(-5.0, "w", "-five");
    r.fi(11.0, "w;o", "eleventh");
    r.fi(1e21, "#,##0", "1,000,000,000,000,000,000,000");
    r.fi(1e300, "I", &format!("1{}", "0".repeat(300)));
    r.fi(f64::NAN, "0", "NaN");
    r.fi(f64::INFINITY, "0", "Infinity");
    r.fi(12.0, "0;c", "12");
    r.fi(-4.0, "i", "-iv");
    r.fi(28.0, "a", "ab");
    r.fi_err(1.0, "", "D3130");
    r.fi_err(1.0, "Nn", "D3130");
    r.pi("-42", "0", -42.0);
    r.pi("ONE HUNDRED", "w", 100.0);
    r.pi("", "A", 0.0);
    r.pi_none("12a", "0");
    r.pi_none("twelve bananas", "w");
    r.pi_none("MCMQ", "I");
    r.pi_none("", "0");
    r.pi_err("1", "##0٠", "D3131");
    r.0.finish();
}
