//! `$fromMillis` / `$toMillis` cases: the official JSONata suite groups `function-fromMillis`
//! (including `isoWeekDate`) and `function-tomillis`, then F&O 3.1 §9.8.5 examples and edges.
#![allow(clippy::unwrap_used)]

use super::testkit::Checks;
use super::*;

/// 2024-06-15T10:20:30.000Z, a fixed "now" for defaulting tests.
const NOW: i64 = 1_718_446_830_000;

struct Run(Checks);

impl Run {
    fn fm(&mut self, millis: i64, picture: Option<&str>, tz: Option<&str>, expected: &str) {
        let label = format!("$fromMillis({millis}, {picture:?}, {tz:?})");
        let actual = format_datetime(millis, picture, tz).map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(expected.to_string()));
    }
    fn fm_err(&mut self, millis: i64, picture: Option<&str>, tz: Option<&str>, code: &'static str) {
        let label = format!("$fromMillis({millis}, {picture:?}, {tz:?})");
        let actual = format_datetime(millis, picture, tz).map_err(|e| e.code);
        self.0.eq(&label, actual, Err(code));
    }
    fn tm(&mut self, text: &str, picture: Option<&str>, expected: i64) {
        let label = format!("$toMillis({text:?}, {picture:?})");
        let actual = parse_datetime_at(text, picture, NOW).map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(Some(expected)));
    }
    fn tm_none(&mut self, text: &str, picture: Option<&str>) {
        let label = format!("$toMillis({text:?}, {picture:?})");
        let actual = parse_datetime_at(text, picture, NOW).map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(None));
    }
    fn tm_err(&mut self, text: &str, picture: Option<&str>, code: &'static str) {
        let label = format!("$toMillis({text:?}, {picture:?})");
        let actual = parse_datetime_at(text, picture, NOW).map_err(|e| e.code);
        self.0.eq(&label, actual, Err(code));
    }
    /// `$toMillis(text, picture) ~> $fromMillis()`.
    fn tm_iso(&mut self, text: &str, picture: Option<&str>, expected: &str) {
        let label = format!("$toMillis({text:?}, {picture:?}) ~> $fromMillis()");
        let actual = parse_datetime_at(text, picture, NOW)
            .and_then(|m| format_datetime(m.unwrap_or(i64::MIN), None, None))
            .map_err(|e| e.code);
        self.0.eq(&label, actual, Ok(expected.to_string()));
    }
    /// `$fromMillis($toMillis(date, '[Y]-[M]-[D]'), picture)`.
    fn week(&mut self, date: &str, picture: &str, expected: &str) {
        let millis = parse_datetime(date, Some("[Y]-[M]-[D]")).unwrap().unwrap();
        self.fm(millis, Some(picture), None, expected);
    }
}

#[test]
fn suite_function_from_millis() {
    let mut r = Run(Checks::default());
    r.fm(1, None, None, "1970-01-01T00:00:00.001Z");
    r.fm(1509380732935, None, None, "2017-10-30T16:25:32.935Z");
    r.fm(1521801216617, Some("Hello"), None, "Hello");
    r.fm(1521801216617, Some("Year: [Y0001]"), None, "Year: 2018");
    r.fm(1521801216617, Some("Year: <[Y0001]>"), None, "Year: <2018>");
    r.fm(
        1521801216617,
        Some("Year: <[Y9,999,*]>"),
        None,
        "Year: <2,018>",
    );
    r.fm(
        1521801216617,
        Some("[[Year: <[Y0001]>"),
        None,
        "[Year: <2018>",
    );
    r.fm(
        1521801216617,
        Some("Year]]: <[Y0001]>"),
        None,
        "Year]: <2018>",
    );
    r.fm(
        1521801216617,
        Some("[[Year]]: [[[Y0001]]]"),
        None,
        "[Year]: [2018]",
    );
    r.fm(
        1521801216617,
        Some("[D#1]/[M#1]/[Y0001]"),
        None,
        "23/3/2018",
    );
    r.fm(1522616700000, Some("[F0] [FNn]"), None, "7 Sunday");
    r.fm(1522703100000, Some("[F0] [FNn]"), None, "1 Monday");
    r.fm(
        1521801216617,
        Some("[Y0001]-[M01]-[D01]"),
        None,
        "2018-03-23",
    );
    r.fm(
        1521801216617,
        Some("[M01]/[D01]/[Y0001] at [H01]:[m01]:[s01]"),
        None,
        "03/23/2018 at 10:33:36",
    );
    r.fm(
        1521801216617,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z01:01t]"),
        None,
        "2018-03-23T10:33:36.617Z",
    );
    r.fm(
        1521801216617,
        Some("[Y]-[ M01]-[D 01]T[H01 ]:[ m   ]:[s].[f0  01][Z01:\n 01t]"),
        None,
        "2018-03-23T10:33:36.617Z",
    );
    r.fm(
        1521801216617,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z0101t]"),
        Some("+0100"),
        "2018-03-23T11:33:36.617+0100",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z01:01]"),
        None,
        "2018-07-11T12:00:00+00:00",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z01:01t]"),
        None,
        "2018-07-11T12:00:00Z",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z]"),
        Some("-0500"),
        "2018-07-11T07:00:00-05:00",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z0]"),
        Some("-0500"),
        "2018-07-11T07:00:00-5",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z]"),
        Some("+1000"),
        "2018-07-11T22:00:00+10:00",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z0]"),
        Some("+1000"),
        "2018-07-11T22:00:00+10",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][Z0]"),
        Some("+0530"),
        "2018-07-11T17:30:00+5:30",
    );
    r.fm(
        1531310400000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s][z]"),
        Some("-0500"),
        "2018-07-11T07:00:00GMT-05:00",
    );
    r.fm(
        1204405500000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z0101t]"),
        Some("+0530"),
        "2008-03-02T02:35:00.000+0530",
    );
    r.fm(
        1230757500000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z0101t]"),
        Some("+0530"),
        "2009-01-01T02:35:00.000+0530",
    );
    r.fm_err(
        1230757500000,
        Some("[Y]-[M01]-[D01]T[H01]:[m]:[s].[f001][Z010101t]"),
        Some("+0530"),
        "D3134",
    );
    r.fm(
        1521801216617,
        Some("[D#1,2]/[M1,2]/[Y,2]"),
        None,
        "23/03/18",
    );
    r.fm(
        1521801216617,
        Some("[D#1,2]/[M1,2]/[Y0001,2]"),
        None,
        "23/03/2018",
    );
    r.fm(
        1521801216617,
        Some("[D#1,2]/[M1,2]/[Y##01,2-2]"),
        None,
        "23/03/18",
    );
    r.fm(
        1521801216617,
        Some("[D#1,2]/[M1,2]/[Y0001,2-2]"),
        None,
        "23/03/18",
    );
    r.fm(
        1521801216617,
        Some("[D1] [M01] [YI]"),
        None,
        "23 03 MMXVIII",
    );
    r.fm(1521801216617, Some("[Da] [MA] [Yi]"), None, "w C mmxviii");
    r.fm(1521801216617, Some("[D1o] [M01] [Y]"), None, "23rd 03 2018");
    r.fm(
        1521801216617,
        Some("[Yw]"),
        None,
        "two thousand and eighteen",
    );
    r.fm(
        1521801216617,
        Some("[Dwo] [M01] [Y]"),
        None,
        "twenty-third 03 2018",
    );
    r.fm(
        1521801216617,
        Some("[D1o] [MNn] [Y]"),
        None,
        "23rd March 2018",
    );
    r.fm(
        1521801216617,
        Some("[D1o] [MN] [Y]"),
        None,
        "23rd MARCH 2018",
    );
    r.fm(
        1521801216617,
        Some("[FNn], [D1o] [MNn] [Y]"),
        None,
        "Friday, 23rd March 2018",
    );
    r.fm(
        1521801216617,
        Some("[FNn], the [Dwo] of [MNn] [Y] [E]"),
        None,
        "Friday, the twenty-third of March 2018 ISO",
    );
    r.fm(
        1521801216617,
        Some("[FNn,3-3], [D1o] [MNn,3-3] [Y] [C]"),
        None,
        "Fri, 23rd Mar 2018 ISO",
    );
    r.fm(
        1521801216617,
        Some("[F], [D]/[M]/[Y] [h]:[m]:[s] [P]"),
        None,
        "friday, 23/3/2018 10:33:36 am",
    );
    r.fm(
        1204405500000,
        Some("[F], [D]/[M]/[Y] [h]:[m]:[s] [P]"),
        None,
        "saturday, 1/3/2008 9:05:00 pm",
    );
    r.fm(
        1199664000000,
        Some("[F], [D]/[M]/[Y] [h]:[m]:[s] [P]"),
        None,
        "monday, 7/1/2008 12:00:00 am",
    );
    r.fm(
        1514808000000,
        Some("[dwo] day of the year"),
        None,
        "first day of the year",
    );
    r.fm(
        1546257600000,
        Some("[d] days in [Y0001]"),
        None,
        "365 days in 2018",
    );
    r.fm(
        1483185600000,
        Some("[d] days in [Y0001]"),
        None,
        "366 days in 2016",
    );
    r.fm(1514808000000, Some("Week: [W]"), None, "Week: 1");
    r.fm(1515326400000, Some("Week: [W]"), None, "Week: 1");
    r.fm(1545739200000, Some("Week: [W]"), None, "Week: 52");
    r.fm(1388577600000, Some("Week: [W]"), None, "Week: 1");
    r.fm(1419854400000, Some("Week: [W]"), None, "Week: 1");
    r.fm(1419768000000, Some("Week: [W]"), None, "Week: 52");
    r.fm(1419336000000, Some("Week: [W]"), None, "Week: 52");
    r.fm(1420113600000, Some("Week: [W]"), None, "Week: 1");
    r.fm(1420459200000, Some("Week: [W]"), None, "Week: 2");
    r.fm(1451304000000, Some("Week: [W]"), None, "Week: 53");
    r.fm(1451563200000, Some("Week: [W]"), None, "Week: 53");
    r.fm(1451736000000, Some("Week: [W]"), None, "Week: 53");
    r.fm(
        1359460800000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 5 of January",
    );
    r.fm(
        1359633600000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 5 of January",
    );
    r.fm(
        1359720000000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 5 of January",
    );
    r.fm(
        1514808000000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 1 of January",
    );
    r.fm(
        1483272000000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 5 of December",
    );
    r.fm(
        1533038400000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 1 of August",
    );
    r.fm(
        1419940800000,
        Some("Week: [w] of [xNn]"),
        None,
        "Week: 1 of January",
    );
    r.fm(
        1521801216617,
        Some("[F], [D]/[M]/[Y] [h]:[m]:[s] [PN]"),
        None,
        "friday, 23/3/2018 10:33:36 AM",
    );
    r.fm(
        1521801216617,
        Some("[F], [D]/[M]/[Y] [h]:[m]:[s] [Pn]"),
        None,
        "friday, 23/3/2018 10:33:36 am",
    );
    r.fm_err(1419940800000, Some("[YN]-[M]-[D]"), None, "D3133");
    r.fm_err(1419940800000, Some("[YN]-[M"), None, "D3135");
    // `$toMillis('2018-10-21T13:05:00Z').[$fromMillis(), $fromMillis($, (),'-0500'), $fromMillis($, (),'0000')]`
    let m = parse_datetime("2018-10-21T13:05:00Z", None)
        .unwrap()
        .unwrap();
    r.fm(m, None, None, "2018-10-21T13:05:00.000Z");
    r.fm(m, None, Some("-0500"), "2018-10-21T08:05:00.000-05:00");
    r.fm(m, None, Some("0000"), "2018-10-21T13:05:00.000Z");
    r.0.finish();
}

#[test]
fn suite_iso_week_date() {
    let mut r = Run(Checks::default());
    r.week("2005-01-01", "[X0001]-W[W01]-[F1]", "2004-W53-6");
    r.week("2005-01-02", "[X0001]-W[W01]-[F1]", "2004-W53-7");
    r.week("2005-12-31", "[X0001]-W[W01]-[F1]", "2005-W52-6");
    r.week("2006-01-01", "[X0001]-W[W01]-[F1]", "2005-W52-7");
    r.week("2006-01-02", "[X0001]-W[W01]-[F1]", "2006-W01-1");
    r.week("2006-12-31", "[X0001]-W[W01]-[F1]", "2006-W52-7");
    r.week("2007-01-01", "[X0001]-W[W01]-[F1]", "2007-W01-1");
    r.week("2007-12-30", "[X0001]-W[W01]-[F1]", "2007-W52-7");
    r.week("2007-12-31", "[X0001]-W[W01]-[F1]", "2008-W01-1");
    r.week("2008-01-01", "[X0001]-W[W01]-[F1]", "2008-W01-2");
    r.week("2008-12-28", "[X0001]-W[W01]-[F1]", "2008-W52-7");
    r.week("2008-12-29", "[X0001]-W[W01]-[F1]", "2009-W01-1");
    r.week("2008-12-30", "[X0001]-W[W01]-[F1]", "2009-W01-2");
    r.week("2008-12-31", "[X0001]-W[W01]-[F1]", "2009-W01-3");
    r.week("2009-01-01", "[X0001]-W[W01]-[F1]", "2009-W01-4");
    r.week("2009-12-31", "[X0001]-W[W01]-[F1]", "2009-W53-4");
    r.week("2010-01-01", "[X0001]-W[W01]-[F1]", "2009-W53-5");
    r.week("2010-01-02", "[X0001]-W[W01]-[F1]", "2009-W53-6");
    r.week("2010-01-03", "[X0001]-W[W01]-[F1]", "2009-W53-7");
    r.0.finish();
}

#[test]
fn suite_function_to_millis() {
    let mut r = Run(Checks::default());
    r.tm("1970-01-01T00:00:00.001Z", None, 1);
    r.tm("2018-02-01T09:42:13.123+0000", None, 1517478133123);
    r.tm("2017-10-30", None, 1509321600000);
    r.tm("2017-10-30T15:28:34Z", None, 1509377314000);
    r.tm("2018", None, 1514764800000);
    r.tm_err("foo", None, "D3110");
    r.tm_err("01-02-2018", None, "D3110");
    r.tm_err("2018-02-03 11:15:33", None, "D3110");
    r.tm("201802", Some("[Y0001][M01]"), 1517443200000);
    r.tm("201802", Some("[Y,*-4][M01]"), 1517443200000);
    r.tm("20180205", Some("[Y0001][M01][D01]"), 1517788800000);
    r.tm_none("Hello", Some("Hello"));
    r.tm("2018", Some("[Y1]"), 1514764800000);
    r.tm("2018-03-27", Some("[Y1]-[M01]-[D01]"), 1522108800000);
    r.tm(
        "2018-03-27T14:03:00.123Z",
        Some("[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001]Z"),
        1522159380123,
    );
    r.tm("27th 3 1976", Some("[D1o] [M#1] [Y0001]"), 196732800000);
    r.tm("21st 12 1881", Some("[D1o] [M01] [Y0001]"), -2777932800000);
    r.tm("2nd 12 2012", Some("[D1o] [M01] [Y0001]"), 1354406400000);
    r.tm("MCMLXXXIV", Some("[YI]"), 441763200000);
    r.tm("27 03 MMXVIII", Some("[D1] [M01] [YI]"), 1522108800000);
    r.tm("27 iii MMXVIII", Some("[D1] [Mi] [YI]"), 1522108800000);
    r.tm("w C mmxviii", Some("[Da] [MA] [Yi]"), 1521763200000);
    r.tm("ae C mmxviii", Some("[Da] [MA] [Yi]"), 1522454400000);
    r.tm(
        "27th April 2008",
        Some("[D1o] [MNn] [Y0001]"),
        1209254400000,
    );
    r.tm("21 August 2017", Some("[D1] [MNn] [Y0001]"), 1503273600000);
    r.tm("2 Feb 2012", Some("[D1] [MNn,3-3] [Y0001]"), 1328140800000);
    r.tm(
        "one thousand, nine hundred and eighty-four",
        Some("[Yw]"),
        441763200000,
    );
    r.tm(
        "nineteen hundred and eighty-four",
        Some("[Yw]"),
        441763200000,
    );
    r.tm(
        "twenty-seven April 2008",
        Some("[Dw] [MNn] [Y0001]"),
        1209254400000,
    );
    r.tm(
        "twenty-seventh April 2008",
        Some("[Dw] [MNn] [Y0001]"),
        1209254400000,
    );
    r.tm(
        "twenty-first August two thousand and seventeen",
        Some("[Dw] [MNn] [Yw]"),
        1503273600000,
    );
    r.tm(
        "TWENTY-SECOND August two thousand and seventeen",
        Some("[DW] [MNn] [Yw]"),
        1503360000000,
    );
    r.tm(
        "Twentieth of August, two thousand and seventeen",
        Some("[DW] of [MNn], [Yw]"),
        1503187200000,
    );
    r.tm(
        "4/4/2018 12:06 am",
        Some("[D1]/[M1]/[Y0001] [h]:[m] [P]"),
        1522800360000,
    );
    r.tm(
        "4/4/2018 06:30 am",
        Some("[D1]/[M1]/[Y0001] [h]:[m] [P]"),
        1522823400000,
    );
    r.tm(
        "4/4/2018 12:06 pm",
        Some("[D1]/[M1]/[Y0001] [h]:[m] [P]"),
        1522843560000,
    );
    r.tm(
        "4/4/2018 11:30 pm",
        Some("[D1]/[M1]/[Y0001] [h]:[m] [P]"),
        1522884600000,
    );
    r.tm("2018-094", Some("[Y0001]-[d001]"), 1522800000000);
    r.tm_iso(
        "Wednesday, 14th November 2018",
        Some("[FNn], [D1o] [MNn] [Y]"),
        "2018-11-14T00:00:00.000Z",
    );
    r.tm_iso(
        "Mon, Twelfth November 2018",
        Some("[FNn,*-3], [DWwo] [MNn] [Y]"),
        "2018-11-12T00:00:00.000Z",
    );
    r.tm_iso("2018--180", Some("[Y]--[d]"), "2018-06-29T00:00:00.000Z");
    r.tm_iso(
        "three hundred and sixty-fifth day of 2018",
        Some("[dwo] day of [Y]"),
        "2018-12-31T00:00:00.000Z",
    );
    r.tm_none("irrelevent string", Some("[Y]-[M]-[D]"));
    r.tm_err("2018-05-22", Some("[Y]-[M]-[q]"), "D3132");
    r.tm_err("2018-05-22", Some("[YN]-[M]-[D]"), "D3133");
    r.tm_err("2018-22", Some("[Y]-[D]"), "D3136");
    r.tm_err("5-22 23:59", Some("[M]-[D] [m]:[s]"), "D3136");
    r.tm_err("2018-3-2-5", Some("[X]-[x]-[w]-[F1]"), "D3136");
    r.tm_err("2018-32-5", Some("[X]-[W]-[F1]"), "D3136");
    r.tm_iso(
        "2020-09-09 08:00:00 +02:00",
        Some("[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z]"),
        "2020-09-09T06:00:00.000Z",
    );
    r.tm_iso(
        "2020-09-09 08:00:00 GMT-05:00",
        Some("[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [z]"),
        "2020-09-09T13:00:00.000Z",
    );
    r.tm_iso(
        "2020-09-09 12:00:00 +05:30",
        Some("[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z]"),
        "2020-09-09T06:30:00.000Z",
    );
    r.tm_iso(
        "2020-09-09 12:00:00 GMT-5",
        Some("[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [z01]"),
        "2020-09-09T17:00:00.000Z",
    );
    r.tm_iso(
        "2020-09-09 12:00:00 +0530",
        Some("[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z0001]"),
        "2020-09-09T06:30:00.000Z",
    );
    r.tm_iso(
        "2026-04-08T19:05:04.01987",
        Some("[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f1]"),
        "2026-04-08T19:05:04.019Z",
    );
    // `$toMillis('2024-01-01T12:38:49Z') = $toMillis('20240101123849', '[Y0000][M00][D00][H00][m00][s00]')`
    let iso = parse_datetime("2024-01-01T12:38:49Z", None).unwrap();
    r.tm(
        "20240101123849",
        Some("[Y0000][M00][D00][H00][m00][s00]"),
        iso.unwrap(),
    );
    // `$toMillis('13:45', '[H]:[m]') ~> $fromMillis()`: today's date, seconds defaulted to zero.
    r.tm_iso("13:45", Some("[H]:[m]"), "2024-06-15T13:45:00.000Z");
    r.0.finish();
}

#[test]
fn spec_examples_and_edges() {
    let mut r = Run(Checks::default());
    // F&O 3.1 §9.8.5: 2002-12-31 (a Tuesday) at 15:58:45.762.
    let d = 1_041_292_800_000;
    let t = d + 57_525_762;
    r.fm(d, Some("[Y0001]-[M01]-[D01]"), None, "2002-12-31");
    r.fm(d, Some("[M]-[D]-[Y]"), None, "12-31-2002");
    r.fm(d, Some("[D]-[M]-[Y]"), None, "31-12-2002");
    r.fm(d, Some("[D1] [MI] [Y]"), None, "31 XII 2002");
    r.fm(d, Some("[D1o] [MNn], [Y]"), None, "31st December, 2002");
    r.fm(d, Some("[D01] [MN,*-3] [Y0001]"), None, "31 DEC 2002");
    r.fm(d, Some("[MNn] [D], [Y]"), None, "December 31, 2002");
    r.fm(d, Some("[D] [MNn], [Y]"), None, "31 December, 2002");
    r.fm(d, Some("[[[Y0001]-[M01]-[D01]]]"), None, "[2002-12-31]");
    r.fm(d, Some("[YWw]"), None, "Two Thousand and Two");
    r.fm(
        d,
        Some("[FNn], [D1o] [MNn]"),
        None,
        "Tuesday, 31st December",
    );
    r.fm(t, Some("[h]:[m01] [PN]"), None, "3:58 PM");
    r.fm(t, Some("[h]:[m01]:[s01] [Pn]"), None, "3:58:45 pm");
    r.fm(t, Some("[H01]:[m01]"), None, "15:58");
    r.fm(t, Some("[H01]:[m01]:[s01].[f001]"), None, "15:58:45.762");
    r.fm(
        t,
        Some("[H01]:[m01]:[s01] [z]"),
        Some("+0200"),
        "17:58:45 GMT+02:00",
    );
    r.fm(
        t,
        Some("[h].[m01][Pn] on [FNn], [D1o] [MNn]"),
        None,
        "3.58pm on Tuesday, 31st December",
    );
    r.fm(
        t,
        Some("[M01]/[D01]/[Y0001] at [H01]:[m01]:[s01]"),
        None,
        "12/31/2002 at 15:58:45",
    );
    // Fractional seconds are a decimal fraction.
    r.fm(t, Some("[f1]"), None, "762");
    r.fm(t, Some("[f01]"), None, "76");
    r.fm(d + 500, Some("[f1]"), None, "5");
    r.fm(d + 7, Some("[f001]"), None, "007");
    // Offsets and extremes.
    r.fm(0, None, Some("-0530"), "1969-12-31T18:30:00.000-05:30");
    r.fm(0, Some("[Z0]"), Some("-0030"), "-0:30");
    r.fm(-1, None, None, "1969-12-31T23:59:59.999Z");
    r.fm(
        -62_135_596_800_001,
        Some("[Y0001]-[M01]-[D01]"),
        None,
        "0000-12-31",
    );
    r.fm_err(0, None, Some("EST"), "D3134");
    r.fm_err(0, Some("[HN]"), None, "D3133");
    r.fm(0, Some("[Y,2]"), None, "70");
    r.fm(0, Some(""), None, "");
    r.fm(0, Some("]"), None, "]");
    assert!(format_datetime(i64::MAX, None, Some("+1400")).is_ok());
    assert!(format_datetime(i64::MIN, Some("[Yw] [W] [w] [X] [x] [d]"), None).is_ok());
    // Round trips through a picture.
    let pic = Some("[FNn], [D1o] [MNn] [Y] [H01]:[m01]:[s01].[f001] [Z]");
    let text = format_datetime(t, pic, Some("-0800")).unwrap();
    r.tm(&text, pic, t);
    r.tm("31 DEC 2002", Some("[D01] [MN,*-3] [Y0001]"), d);
    r.tm(
        "2002-12-31T15:58:45.762Z",
        Some("[Y]-[M]-[D]T[H]:[m]:[s].[f][Z01:01t]"),
        t,
    );
    r.tm("1,984", Some("[Y9,999,*]"), 441_763_200_000);
    // Defaults: missing leading parts come from `now`, trailing ones are minimal.
    r.tm("15", Some("[D]"), 1_718_409_600_000);
    r.tm("7:05 pm", Some("[h]:[m] [P]"), 1_718_478_300_000);
    r.tm_none("", Some("[Y]"));
    r.tm_none("2018", Some("[Y]x"));
    r.tm_none("99999999999999999999", Some("[Y]"));
    // ISO 8601 without a picture.
    r.tm("2018-02-01T09:42:13+05:30", None, 1_517_458_333_000);
    r.tm("2018-02", None, 1_517_443_200_000);
    r.tm("2018-01-01T24:00:00Z", None, 1_514_851_200_000);
    r.tm_err("2018-02-30", None, "D3110");
    r.tm_err("2018-13-01", None, "D3110");
    r.tm_err("2018-01-01T25:00:00", None, "D3110");
    r.tm_err("2018-01-01Z", None, "D3110");
    r.tm_err("", None, "D3110");
    r.tm_err("２０１８", None, "D3110");
    r.0.finish();
    // Without a clock, parse_datetime takes missing leading parts from the epoch.
    assert_eq!(
        parse_datetime("13:45", Some("[H]:[m]")).unwrap(),
        Some(49_500_000)
    );
}
